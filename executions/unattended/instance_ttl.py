"""The time-to-live of drill instances: the worker cleans up a drill's recovery instances
`drill_instance_ttl_minutes` (a plan setting) after the drill ended.

Every minute, for each ended DRILL of a plan with a time-to-live whose recovery instances
still run (launched, not being cleaned up, the drill not cleaned up):

- expires_at = finished_at + the plan's TTL (read now: changing the TTL moves the expiry of
  drills already ended, and a TTL set on a plan applies to its older drills at once);
- from expires_at - warning_lead(ttl) (10 minutes before, or half the TTL when that is
  shorter), `drill_instances.expiring` is sent once (executions.notable, dedupe key
  "drill_instances.expiring:<execution id>") and the execution's audit log says
  "Instances will be cleaned up at HH:MM UTC by the time-to-live". The event row's dedupe
  key makes it once-only even with two workers; the notification goes in the same
  transaction. A run that finds the expiry already passed without a warning (the worker was
  down) still warns first, in the same minute, so subscribers always hear of it;
- from expires_at, the clean-up is started through execution_cleanup, the service people
  use, by the system actor `ttl`; the worker's engine then terminates the instances.

The time-to-live asks for the clean-up of a drill once: if DRS refuses it (the instances stay,
the execution page says why), a person cleans up again once the cause is fixed, rather than
the worker retrying every minute. A RECOVERY's instances are production: they are never
selected, and `_clean_up` refuses one outright.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef

from executions.choices import EXECUTION_TERMINAL, EventKind, ExecutionMode, LaunchPhase, LaunchStatus
from executions.exceptions import ExecutionError
from executions.models import Execution, ExecutionEvent, ServerLaunch
from executions.notable import DRILL_INSTANCES_EXPIRING, NotableEvent, notable_events_send
from executions.services import TTL_ACTOR, execution_cleanup

logger = logging.getLogger(__name__)

WARNING_LEAD_MAX = timedelta(minutes=10)
# The audit-log entry of the warning, once per execution (ExecutionEvent's unique dedupe key).
EXPIRING_EVENT_KEY = "drill_instances.expiring"


def warning_lead(ttl_minutes: int) -> timedelta:
    """How long before the expiry `drill_instances.expiring` is sent: 10 minutes, or half the
    time-to-live when that is shorter (a 1-minute TTL warns 30 seconds before)."""
    return min(WARNING_LEAD_MAX, timedelta(minutes=ttl_minutes) / 2)


def drill_instances_expiry(*, execution: Execution) -> datetime | None:
    """When the time-to-live cleans up `execution`'s instances: for an ended drill of a plan
    with a TTL; None otherwise (no TTL, a RECOVERY, still running)."""
    ttl = execution.plan.drill_instance_ttl_minutes
    if execution.mode != ExecutionMode.DRILL or not ttl or execution.finished_at is None or not execution.is_terminal:
        return None
    return execution.finished_at + timedelta(minutes=ttl)


def drill_instances_expiry_shown(*, execution: Execution, instances_running: bool) -> datetime | None:
    """The expiry the execution page announces: while the drill's instances still run
    (`instances_running`: launched, not being cleaned up), it is not cleaned up and the
    time-to-live has not asked for its clean-up yet."""
    if not instances_running or execution.cleaned_up_at:
        return None
    expires_at = drill_instances_expiry(execution=execution)
    if expires_at is None or _ttl_asked(execution.pk).exists():
        return None
    return expires_at


def _ttl_asked(execution_id):
    """The clean-up the time-to-live asked for (an ACTION of the `ttl` actor)."""
    return ExecutionEvent.objects.filter(execution=execution_id, kind=EventKind.ACTION, actor_name=TTL_ACTOR)


def _running_instances():
    return ServerLaunch.objects.filter(
        execution=OuterRef("pk"), status=LaunchStatus.LAUNCHED
    ).exclude(phase=LaunchPhase.TERMINATING)


def drills_with_expiring_instances():
    """Ended drills of plans with a TTL whose instances still run and that the TTL has not
    asked to clean up yet (no ACTION of the `ttl` actor in their audit log)."""
    ttl_asked = _ttl_asked(OuterRef("pk"))
    return (
        Execution.objects.filter(
            mode=ExecutionMode.DRILL,
            status__in=EXECUTION_TERMINAL,
            finished_at__isnull=False,
            cleaned_up_at__isnull=True,
            plan__drill_instance_ttl_minutes__isnull=False,
        )
        .filter(Exists(_running_instances()))
        .exclude(Exists(ttl_asked))
        .select_related("plan")
        .order_by("finished_at")
    )


@dataclass
class InstanceTtlResult:
    """What one run did: the executions warned and cleaned up (ids), and those that failed."""

    warned: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"warned": self.warned, "cleaned": self.cleaned, "failed": self.failed}


def drill_instances_expire(*, now: datetime) -> InstanceTtlResult:
    """Warn about, and clean up, the drill instances whose time-to-live has come. One drill
    that fails is logged and does not stop the others."""
    result = InstanceTtlResult()
    for execution in drills_with_expiring_instances():
        try:
            expires_at = drill_instances_expiry(execution=execution)
            if expires_at is None or now < expires_at - warning_lead(execution.plan.drill_instance_ttl_minutes):
                continue
            if drill_instances_warn(execution=execution, expires_at=expires_at, now=now):
                result.warned.append(str(execution.pk))
            if now >= expires_at:
                _clean_up(execution)
                result.cleaned.append(str(execution.pk))
        except ExecutionError as exc:
            # The engine holds it right now, or nothing is left to clean: next minute tells.
            logger.info("Time-to-live clean-up of execution %s waits: %s", execution.pk, exc.message)
        except Exception:
            logger.exception("Time-to-live of execution %s failed; tried again next minute", execution.pk)
            result.failed.append(str(execution.pk))
    return result


def drill_instances_warn(*, execution: Execution, expires_at: datetime, now: datetime) -> bool:
    """Record in the audit log, and send `drill_instances.expiring`, that the time-to-live will
    clean up the drill's instances at `expires_at`: once per execution. False when it was
    already sent."""
    if ExecutionEvent.objects.filter(execution=execution, dedupe_key=EXPIRING_EVENT_KEY).exists():
        return False
    count = ServerLaunch.objects.filter(execution=execution, status=LaunchStatus.LAUNCHED).count()
    ttl = execution.plan.drill_instance_ttl_minutes
    stamp = expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        with transaction.atomic():
            ExecutionEvent.objects.create(
                execution=execution,
                created_at=now,
                kind=EventKind.ENGINE,
                actor_name=TTL_ACTOR,
                message=f"Instances will be cleaned up at {expires_at:%H:%M} UTC by the time-to-live "
                f"({ttl} min after the drill ended): {count} recovery instance(s).",
                data={"expires_at": stamp, "instances": count, "ttl_minutes": ttl},
                dedupe_key=EXPIRING_EVENT_KEY,
            )
            notable_events_send(
                [
                    NotableEvent(
                        event=DRILL_INSTANCES_EXPIRING,
                        plan_id=execution.plan_id,
                        execution_id=execution.pk,
                        details={
                            "execution_id": str(execution.pk),
                            "expires_at": stamp,
                            "instance_count": count,
                            "ttl_minutes": ttl,
                        },
                        dedupe_key=f"drill_instances.expiring:{execution.pk}",
                    )
                ]
            )
    except IntegrityError:  # another worker warned between the check and the insert
        return False
    return True


def _clean_up(execution: Execution) -> None:
    if execution.mode != ExecutionMode.DRILL:
        # Never reached through drills_with_expiring_instances; a RECOVERY's instances are
        # production, so this refuses whatever the caller.
        raise RuntimeError(f"The time-to-live never cleans up a {execution.mode}: execution {execution.pk}.")
    ttl = execution.plan.drill_instance_ttl_minutes
    execution_cleanup(
        execution=execution,
        user=None,
        system_actor=TTL_ACTOR,
        why=f"the plan's drill instance time-to-live ({ttl} min after the drill ended) has passed",
    )
    logger.info("Time-to-live: clean-up of drill %s started", execution.pk)
