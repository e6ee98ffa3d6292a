"""Scheduled drills: the worker starts the DRILL a plan's `drill_schedule` asks for.

Every minute, for each plan with a schedule, the slot considered is the latest time of its
cron expression at or before now (UTC). It is taken when no ScheduledDrillRun row exists for
it yet and:

- it is not older than the plan's last save (`updated_at`): a slot that was due before the
  schedule (or anything else of the plan) was last changed is not run. Saving a plan at
  03:00:30 therefore lets its 03:00 slot pass; the next one runs.
- it is at most SLOT_GRACE old. A slot found later (the worker was down, or failed to start
  it in every minute of the grace) is recorded SKIPPED as missed and never run: a worker
  back after a day does not run yesterday's 03:00 drill at 14:00. Only the latest slot is
  looked at, so a plan drilled every minute gets one row per slot the worker saw, not a
  backlog.

A taken slot becomes a DRILL requested by `schedule` (requested_by None,
requested_by_username "schedule"), with gates approved automatically only when the plan's
`auto_approve` says so. Nobody is there to accept readiness *warnings* (replication lag,
DISCONNECTED, DRS unreachable for a check): a scheduled drill accepts them (accept_risks),
and they are recorded on the execution as its accepted risks, as for a person. Readiness
*errors*, the plan already running (never two at once) or a server held by another
execution make the slot SKIPPED with the reason.

Crash safety and races: the run row is inserted, and the execution created, in one
transaction. The unique (plan, scheduled_for) decides a race between two workers: the
second insert waits for the first transaction and fails, and that worker does nothing. A
crash (or an exception) anywhere rolls back both, so the slot stays free and the next
minute's run tries it again while it is within the grace; it is never lost half-way nor
started twice. The execution's idempotency key ("schedule:<plan>:<slot>") makes the
database refuse a second execution of the same slot as well. The transaction holds the
database's write lock while execution_start reads readiness from DRS (a few calls); on
SQLite other writers wait for it (busy timeout), on PostgreSQL only the run row is locked.

The advance of a started execution is enqueued by execution_start after the commit, as for
any start; the poller chain follows it from there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from executions.choices import ExecutionMode, ScheduledRunOutcome
from executions.exceptions import ExecutionError, PlanAlreadyRunning, PlanNotReady, ServerBusy
from executions.models import ScheduledDrillRun
from executions.services import SCHEDULE_ACTOR, execution_start
from plans.models import RecoveryPlan
from plans.schedules import last_drill_time

logger = logging.getLogger(__name__)

# How late a slot may still be started. The task runs every minute, so a slot is normally
# taken within a minute or two; ten minutes covers a busy or restarting worker, and a daily or
# weekly drill ten minutes late is still the drill that was asked for.
SLOT_GRACE = timedelta(minutes=10)
MISSED_REASON = (
    f"missed: the worker was not running at that time (or could not start it within "
    f"{int(SLOT_GRACE.total_seconds() // 60)} minutes: see the worker's log)"
)


@dataclass
class ScheduledDrillsResult:
    """What one run did: the runs it recorded, and the plans that failed (logged)."""

    runs: list[ScheduledDrillRun] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        started = [run for run in self.runs if run.outcome == ScheduledRunOutcome.STARTED]
        return {
            "started": [str(run.execution_id) for run in started],
            "skipped": len(self.runs) - len(started),
            "failed": self.failed,
        }


def scheduled_drills_run(*, now: datetime) -> ScheduledDrillsResult:
    """Start (or skip, with the reason) the due slot of every scheduled plan. One plan that
    fails is logged and does not stop the others; its slot is tried again next minute."""
    result = ScheduledDrillsResult()
    plans = RecoveryPlan.objects.exclude(drill_schedule__isnull=True).exclude(drill_schedule="").order_by("name")
    for plan in plans:
        try:
            slot = scheduled_drill_due_slot(plan=plan, now=now)
            if slot is None:
                continue
            run = scheduled_drill_start(plan=plan, slot=slot, now=now)
        except Exception:
            logger.exception("Scheduled drill of plan %s failed; its slot is tried again next minute", plan.name)
            result.failed.append(plan.name)
            continue
        if run is not None:
            result.runs.append(run)
    return result


def scheduled_drill_due_slot(*, plan: RecoveryPlan, now: datetime) -> datetime | None:
    """The slot of `plan`'s schedule to take now, if any: the latest at or before `now`, when
    it is not older than the plan's last save and has no run yet (late or not)."""
    slot = last_drill_time(plan, now=now)
    if slot is None or slot < plan.updated_at:
        return None
    if ScheduledDrillRun.objects.filter(plan=plan, scheduled_for=slot).exists():
        return None
    return slot


def scheduled_drill_comment(*, plan: RecoveryPlan, slot: datetime) -> str:
    """The comment of a scheduled drill: which schedule and slot started it."""
    return f"Scheduled drill (cron '{plan.drill_schedule}' slot {slot:%Y-%m-%d %H:%M} UTC)"


def scheduled_drill_start(*, plan: RecoveryPlan, slot: datetime, now: datetime) -> ScheduledDrillRun | None:
    """Take `slot` of `plan`'s schedule: start its DRILL, or record why it is skipped. None
    when another worker took the slot first (its row exists: the database said so)."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                run = ScheduledDrillRun.objects.create(
                    plan=plan, scheduled_for=slot, outcome=ScheduledRunOutcome.STARTED, created_at=now
                )
        except IntegrityError:
            logger.info("Slot %s of plan %s was taken by another worker", slot, plan.name)
            return None
        if now - slot > SLOT_GRACE:
            return _skipped(run, MISSED_REASON)
        try:
            # A savepoint: a refusal leaves the run row to be recorded as SKIPPED.
            with transaction.atomic():
                execution = execution_start(
                    plan=plan,
                    mode=ExecutionMode.DRILL,
                    requested_by=None,
                    system_actor=SCHEDULE_ACTOR,
                    auto_approve=plan.auto_approve,
                    accept_risks=True,
                    idempotency_key=f"schedule:{plan.pk}:{slot:%Y-%m-%dT%H:%MZ}",
                    comment=scheduled_drill_comment(plan=plan, slot=slot),
                )
        except PlanAlreadyRunning as exc:
            running = exc.execution
            return _skipped(run, f"already running: execution {running.pk} ({running.mode}, {running.status})")
        except PlanNotReady as exc:
            errors = "; ".join(check.message for check in exc.report.errors)
            return _skipped(run, f"readiness errors: {errors}")
        except ServerBusy as exc:
            return _skipped(run, f"server busy: {exc.message}")
        except ExecutionError as exc:
            return _skipped(run, f"not started: {exc.message}")
        run.execution = execution
        run.save(update_fields=["execution"])
    logger.info("Scheduled drill of plan %s (slot %s) started: execution %s", plan.name, slot, execution.pk)
    return run


def _skipped(run: ScheduledDrillRun, reason: str) -> ScheduledDrillRun:
    run.outcome = ScheduledRunOutcome.SKIPPED
    run.reason = reason
    run.save(update_fields=["outcome", "reason"])
    logger.info("Scheduled drill of plan %s (slot %s) skipped: %s", run.plan_id, run.scheduled_for, reason)
    return run
