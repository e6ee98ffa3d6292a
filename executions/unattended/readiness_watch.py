"""The readiness watch: every plan's readiness, evaluated on a schedule, with a notice when a
plan goes from ready to not ready (readiness.degraded, with what changed) and once when it is
ready again (readiness.recovered).

What it checks is what a start checks (executions.readiness.plan_readiness), with the
inventory of every target the plans use synced from DRS once per run (not once per plan):
a real outage (replication DISCONNECTED or STALLED, lag over the RPO, a server gone from
DRS) is seen, and DRS unreachable for the sync is a warning of every plan on that target
(`inventory_stale`), which degrades them: a team wants to know it cannot see its DRS.

The verdict leaves out what only says the plan or its servers are busy right now (the plan
running, a server held by another execution or by a DRS job): that is no degradation and
passes on its own. `info` notes never count. Ready = no error and no warning left.

Notices:
- The first evaluation of a plan is its baseline and notifies nothing.
- ready -> not ready: readiness.degraded, once. While the plan stays not ready nothing is
  sent again, even when its findings change (each evaluation records what changed).
- not ready -> ready after a readiness.degraded: readiness.recovered, once.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError
from django.db import IntegrityError, transaction

from drsorch.drs.errors import describe
from executions.notable import READINESS_DEGRADED, READINESS_RECOVERED, NotableEvent, notable_events_send
from executions.readiness import plan_readiness
from plans.models import PlanReadinessEvaluation, RecoveryPlan, Target
from plans.readiness import ERROR, PLAN_RUNNING, WARNING, ReadinessReport
from plans.services import source_servers_sync

logger = logging.getLogger(__name__)

# Findings that say the plan or a server is busy now, not that its protection degraded.
BUSY_CODES = frozenset({PLAN_RUNNING, "server_in_other_execution", "server_in_active_job"})
# Evaluations that changed nothing and notified nothing are kept this long (the newest
# HISTORY_KEPT of each plan are always kept): the watch writes one row per plan every run.
RETENTION = timedelta(days=30)
HISTORY_KEPT = 10

Notice = PlanReadinessEvaluation.Notice
# The event each notice sends (plans names them in its choices; executions.notable owns them).
EVENT_OF = {Notice.DEGRADED: READINESS_DEGRADED, Notice.RECOVERED: READINESS_RECOVERED}


@dataclass
class WatchResult:
    """What one run of the watch did, by plan id."""

    evaluated: list[int] = field(default_factory=list)
    degraded: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    unreachable_targets: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "evaluated": len(self.evaluated),
            "degraded": self.degraded,
            "recovered": self.recovered,
            "failed": self.failed,
            "unreachable_targets": self.unreachable_targets,
        }


def watch_findings(report: ReadinessReport) -> list[dict]:
    """The errors and then the warnings of `report` that decide the watch's verdict, as JSON."""
    kept = [c for c in report.errors + report.warnings if c.code not in BUSY_CODES]
    return [
        {
            "severity": check.severity,
            "code": check.code,
            "message": check.message,
            "source_server_id": check.server.drs_id if check.server else None,
            "hostname": check.server.hostname if check.server else None,
        }
        for check in kept
    ]


def _finding_key(finding: dict) -> tuple:
    # Messages carry numbers that move on every run (a lag of 35 min, then 65): a finding is
    # the same while its severity, check and server are; plan-wide findings by their message.
    return (finding["severity"], finding["code"], finding.get("source_server_id") or finding["message"])


def findings_changed(previous: list[dict], current: list[dict]) -> dict:
    """{"new": findings of `current` not in `previous`, "resolved": the reverse}."""
    before = {_finding_key(f) for f in previous}
    after = {_finding_key(f) for f in current}
    return {
        "new": [f for f in current if _finding_key(f) not in before],
        "resolved": [f for f in previous if _finding_key(f) not in after],
    }


def targets_sync(*, targets) -> dict[int, str]:
    """Sync the inventory of each of `targets` from DRS; returns why, by target id, for those
    DRS could not be asked (each failure is logged; the others are synced all the same)."""
    unreachable = {}
    for target in targets:
        try:
            source_servers_sync(target=target)
        except (BotoCoreError, ClientError) as exc:
            unreachable[target.pk] = describe(exc)
        except Exception as exc:
            logger.exception("The readiness watch could not sync target %s", target.name)
            unreachable[target.pk] = describe(exc)
        else:
            continue
        logger.warning("Readiness watch: DRS of target %s unreachable: %s", target.name, unreachable[target.pk])
    return unreachable


def plan_readiness_evaluate(
    *, plan: RecoveryPlan, now: datetime, unreachable: dict[int, str] | None = None
) -> PlanReadinessEvaluation | None:
    """Evaluate `plan` from the stored inventory, store the evaluation, and send the notice
    its change calls for, in one transaction. `unreachable` names the targets whose sync just
    failed (targets_sync): a warning for each of the plan's. Returns None when another worker
    stored an evaluation of the plan at the same moment (that one decided the notice)."""
    unreachable = unreachable or {}
    report = plan_readiness(plan=plan, live=False)
    targets = {server.target_id: server.target for server in report.servers}
    for target_id in sorted(set(targets) & set(unreachable)):
        report.add(
            WARNING,
            "inventory_stale",
            f"DRS could not be reached to refresh the inventory of target '{targets[target_id].name}' "
            f"({unreachable[target_id]}); the replication checks use the last synced data.",
        )
    findings = watch_findings(report)
    ready = not findings
    try:
        with transaction.atomic():
            previous = plan.readiness_evaluations.order_by("-sequence").first()
            changed = findings_changed(previous.findings, findings) if previous else {}
            notice = Notice.NONE
            if previous is not None:
                if previous.ready and not ready:
                    notice = Notice.DEGRADED
                elif ready and not previous.ready and _degraded_announced(plan):
                    notice = Notice.RECOVERED
            evaluation = PlanReadinessEvaluation.objects.create(
                plan=plan,
                sequence=(previous.sequence + 1) if previous else 1,
                evaluated_at=now,
                ready=ready,
                error_count=sum(1 for f in findings if f["severity"] == ERROR),
                warning_count=sum(1 for f in findings if f["severity"] == WARNING),
                findings=findings,
                changed=changed,
                notified=notice,
            )
            if notice:
                notable_events_send([_notice_event(evaluation)])
    except IntegrityError:
        logger.info("Plan %s was evaluated by another worker at the same time; keeping that evaluation", plan.name)
        return None
    _prune(plan=plan, evaluation=evaluation, now=now)
    return evaluation


def _degraded_announced(plan: RecoveryPlan) -> bool:
    """Whether the plan's last notice was readiness.degraded (its recovery not yet sent)."""
    last = plan.readiness_evaluations.exclude(notified=Notice.NONE).order_by("-sequence").first()
    return last is not None and last.notified == Notice.DEGRADED


def _notice_event(evaluation: PlanReadinessEvaluation) -> NotableEvent:
    details = {
        "evaluated_at": evaluation.evaluated_at.isoformat().replace("+00:00", "Z"),
        "error_count": evaluation.error_count,
        "warning_count": evaluation.warning_count,
        "findings": evaluation.findings,
        "new_findings": evaluation.changed.get("new", []),
        "resolved_findings": evaluation.changed.get("resolved", []),
    }
    return NotableEvent(
        event=EVENT_OF[evaluation.notified],
        plan_id=evaluation.plan_id,
        details=details,
        dedupe_key=f"{EVENT_OF[evaluation.notified]}:{evaluation.plan_id}:{evaluation.sequence}",
    )


def _prune(*, plan: RecoveryPlan, evaluation: PlanReadinessEvaluation, now: datetime) -> None:
    (
        plan.readiness_evaluations.filter(
            evaluated_at__lt=now - RETENTION, notified=Notice.NONE, sequence__lte=evaluation.sequence - HISTORY_KEPT
        ).delete()
    )


def plans_readiness_watch(*, now: datetime) -> WatchResult:
    """Evaluate every plan (plan_readiness_evaluate), after one inventory sync per target the
    plans use. One plan failing is logged and does not stop the others."""
    result = WatchResult()
    targets = Target.objects.filter(protection_groups__waves__isnull=False).distinct().order_by("name")
    unreachable = targets_sync(targets=list(targets))
    result.unreachable_targets = sorted(t.name for t in targets if t.pk in unreachable)
    for plan in RecoveryPlan.objects.order_by("name"):
        try:
            # A savepoint: a database error of one plan rolls back that plan only.
            with transaction.atomic():
                evaluation = plan_readiness_evaluate(plan=plan, now=now, unreachable=unreachable)
        except Exception:
            logger.exception("The readiness watch could not evaluate plan %s", plan.name)
            result.failed.append(plan.pk)
            continue
        if evaluation is None:
            continue
        result.evaluated.append(plan.pk)
        if evaluation.notified == Notice.DEGRADED:
            logger.warning("Plan %s is no longer ready: %s", plan.name, evaluation.changed.get("new"))
            result.degraded.append(plan.pk)
        elif evaluation.notified == Notice.RECOVERED:
            logger.info("Plan %s is ready again", plan.name)
            result.recovered.append(plan.pk)
    return result
