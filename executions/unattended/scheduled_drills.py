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
  claimed, so a plan drilled every minute gets one row per slot the worker saw, not a
  backlog (older slots are only looked at again when their claim was left behind, below).

A taken slot becomes a DRILL requested by `schedule` (requested_by None,
requested_by_username "schedule"), with gates approved automatically only when the plan's
`auto_approve` says so. Nobody is there to accept readiness *warnings* (replication lag,
DISCONNECTED, DRS unreachable for a check): a scheduled drill accepts them (accept_risks),
and they are recorded on the execution as its accepted risks, as for a person. Readiness
*errors*, the plan already running (never two at once) or a server held by another
execution make the slot SKIPPED with the reason.

Claims, crashes and races (healthchecks' way: nothing slow inside a transaction):

1. The claim: the slot's run row is inserted STARTING with `claimed_until` = now +
   CLAIM_SECONDS, in a short transaction of its own. The unique (plan, scheduled_for)
   decides a race between two workers: the second insert fails and that worker does nothing.
2. The start: execution_start is called with **no transaction open**. It reads readiness
   from DRS (a few calls, 100-400 ms each) and refreshes the inventory; inside a transaction
   that would hold SQLite's write lock all along, and the engine's poller and every other
   writer would wait for it.
3. The record: a conditional UPDATE of the row WHERE outcome = STARTING sets STARTED with the
   execution, or SKIPPED with the reason of a refusal.

A worker that stops at any line leaves at worst a STARTING row. Each run first sweeps the
STARTING rows whose claim expired (of any slot: with `* * * * *` the crashed slot is no longer
the latest a minute later) and takes each over with a conditional UPDATE of `claimed_until`
(one worker wins it). The take-over looks for the execution started with the slot's
idempotency key ("schedule:<plan>:<slot>"): found, the crash was between the start and the
record, and the row becomes STARTED with it; otherwise, within the grace, the slot is
started again (the key makes a double start impossible: a second start returns the first
execution); past it, or when the plan was changed since, it is SKIPPED with the reason. An
exception (not a refusal) while starting expires the claim at once, so the next minute's
sweep tries again. CLAIM_SECONDS (5 min) is longer than any execution_start.

Each run also deletes the SKIPPED rows of slots older than KEEP_SKIPPED (30 days; one DELETE):
a plan drilled every minute records ~1,440 slots a day, most of them "already running".
STARTED rows are kept: they point at the executions.

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
from executions.models import Execution, ScheduledDrillRun
from executions.services import SCHEDULE_ACTOR, execution_start
from plans.models import RecoveryPlan
from plans.schedules import last_drill_time

logger = logging.getLogger(__name__)

# How late a slot may still be started. The task runs every minute, so a slot is normally
# taken within a minute or two; ten minutes covers a busy or restarting worker, and a daily or
# weekly drill ten minutes late is still the drill that was asked for.
SLOT_GRACE = timedelta(minutes=10)
_GRACE_MINUTES = int(SLOT_GRACE.total_seconds() // 60)
# How long a worker's claim of a slot lasts: far longer than any execution_start (a few DRS
# calls), so a live worker never loses its slot; a stopped one's is taken over after it.
CLAIM_SECONDS = 300
# SKIPPED rows of older slots are deleted; STARTED ones are kept (they point at executions).
KEEP_SKIPPED = timedelta(days=30)

MISSED_REASON = (
    f"missed: the worker was not running at that time (or could not start it within "
    f"{_GRACE_MINUTES} minutes: see the worker's log)"
)
STOPPED_REASON = (
    f"missed: the worker stopped while starting it and the slot is past its grace "
    f"({_GRACE_MINUTES} minutes: see the worker's log)"
)
CHANGED_REASON = "not started: the worker stopped while starting it and the plan was changed since"


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
    """Prune old SKIPPED rows, take over the claims of stopped workers, then start (or skip,
    with the reason) the due slot of every scheduled plan. One plan that fails is logged and
    does not stop the others; its slot is tried again next minute."""
    result = ScheduledDrillsResult()
    try:
        scheduled_drill_runs_prune(now=now)
    except Exception:
        logger.exception("Pruning the old skipped scheduled runs failed; tried again next minute")
    stale = (
        ScheduledDrillRun.objects.filter(outcome=ScheduledRunOutcome.STARTING, claimed_until__lt=now)
        .select_related("plan")
        .order_by("scheduled_for", "pk")
    )
    for run in stale:
        try:
            taken = scheduled_drill_take_over(run=run, now=now)
        except Exception:
            logger.exception(
                "Taking over slot %s of plan %s failed; tried again next minute", run.scheduled_for, run.plan.name
            )
            result.failed.append(run.plan.name)
            continue
        if taken is not None:
            result.runs.append(taken)
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


def scheduled_drill_runs_prune(*, now: datetime) -> int:
    """Delete the SKIPPED runs of slots older than KEEP_SKIPPED (one DELETE); the number gone."""
    deleted, _ = ScheduledDrillRun.objects.filter(
        outcome=ScheduledRunOutcome.SKIPPED, scheduled_for__lt=now - KEEP_SKIPPED
    ).delete()
    return deleted


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


def scheduled_drill_idempotency_key(*, plan_id: int, slot: datetime) -> str:
    """The idempotency key of the slot's execution: one execution per slot, whoever starts it."""
    return f"schedule:{plan_id}:{slot:%Y-%m-%dT%H:%MZ}"


def scheduled_drill_start(*, plan: RecoveryPlan, slot: datetime, now: datetime) -> ScheduledDrillRun | None:
    """Take `slot` of `plan`'s schedule: claim it, start its DRILL with no transaction open,
    and record STARTED or why it is skipped. None when another worker took the slot first
    (its row exists: the database said so)."""
    late = now - slot > SLOT_GRACE
    try:
        with transaction.atomic():
            run = ScheduledDrillRun.objects.create(
                plan=plan,
                scheduled_for=slot,
                outcome=ScheduledRunOutcome.SKIPPED if late else ScheduledRunOutcome.STARTING,
                reason=MISSED_REASON if late else "",
                claimed_until=None if late else now + timedelta(seconds=CLAIM_SECONDS),
                created_at=now,
            )
    except IntegrityError:
        logger.info("Slot %s of plan %s was taken by another worker", slot, plan.name)
        return None
    if late:
        logger.info("Scheduled drill of plan %s (slot %s) skipped: %s", plan.name, slot, MISSED_REASON)
        return run
    return _start_and_record(run=run, plan=plan, now=now)


def scheduled_drill_take_over(*, run: ScheduledDrillRun, now: datetime) -> ScheduledDrillRun | None:
    """Take over `run`, left STARTING by a worker whose claim expired, and settle it: STARTED
    with the execution its key started, else start it again within the grace, else SKIPPED.
    None when another worker took it over or settled it first."""
    taken = ScheduledDrillRun.objects.filter(
        pk=run.pk, outcome=ScheduledRunOutcome.STARTING, claimed_until__lt=now
    ).update(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
    if taken != 1:
        return None
    plan, slot = run.plan, run.scheduled_for
    logger.warning("Taking over slot %s of plan %s: the worker starting it stopped", slot, plan.name)
    execution = Execution.objects.filter(
        requested_by_username=SCHEDULE_ACTOR,
        idempotency_key=scheduled_drill_idempotency_key(plan_id=plan.pk, slot=slot),
    ).first()
    if execution is not None:
        # The crash came after the start and before the record.
        return scheduled_drill_record(run=run, outcome=ScheduledRunOutcome.STARTED, execution=execution)
    if now - slot > SLOT_GRACE:
        return scheduled_drill_record(run=run, outcome=ScheduledRunOutcome.SKIPPED, reason=STOPPED_REASON)
    if not plan.drill_schedule or plan.updated_at > slot:
        # The slot was due under the plan as it was; a change since (the schedule removed or
        # edited) is not overruled by a retry.
        return scheduled_drill_record(run=run, outcome=ScheduledRunOutcome.SKIPPED, reason=CHANGED_REASON)
    return _start_and_record(run=run, plan=plan, now=now)


def scheduled_drill_record(
    *, run: ScheduledDrillRun, outcome: str, execution: Execution | None = None, reason: str = ""
) -> ScheduledDrillRun | None:
    """Record what became of the slot `run` claimed: a conditional UPDATE of a STARTING row,
    so the first worker to settle it wins. None when another one already had."""
    recorded = ScheduledDrillRun.objects.filter(pk=run.pk, outcome=ScheduledRunOutcome.STARTING).update(
        outcome=outcome, execution=execution, reason=reason, claimed_until=None
    )
    if recorded != 1:
        logger.info("Slot %s of plan %s was settled by another worker", run.scheduled_for, run.plan.name)
        return None
    run.outcome, run.execution, run.reason, run.claimed_until = outcome, execution, reason, None
    if outcome == ScheduledRunOutcome.STARTED:
        logger.info(
            "Scheduled drill of plan %s (slot %s) started: execution %s", run.plan.name, run.scheduled_for, execution.pk
        )
    else:
        logger.info("Scheduled drill of plan %s (slot %s) skipped: %s", run.plan.name, run.scheduled_for, reason)
    return run


def _start_and_record(*, run: ScheduledDrillRun, plan: RecoveryPlan, now: datetime) -> ScheduledDrillRun | None:
    slot = run.scheduled_for
    skipped = ScheduledRunOutcome.SKIPPED
    try:
        # No transaction open: readiness reads DRS, and nothing here may hold the write lock.
        execution = execution_start(
            plan=plan,
            mode=ExecutionMode.DRILL,
            requested_by=None,
            system_actor=SCHEDULE_ACTOR,
            auto_approve=plan.auto_approve,
            accept_risks=True,
            idempotency_key=scheduled_drill_idempotency_key(plan_id=plan.pk, slot=slot),
            comment=scheduled_drill_comment(plan=plan, slot=slot),
        )
    except PlanAlreadyRunning as exc:
        running = exc.execution
        reason = f"already running: execution {running.pk} ({running.mode}, {running.status})"
        return scheduled_drill_record(run=run, outcome=skipped, reason=reason)
    except PlanNotReady as exc:
        errors = "; ".join(check.message for check in exc.report.errors)
        return scheduled_drill_record(run=run, outcome=skipped, reason=f"readiness errors: {errors}")
    except ServerBusy as exc:
        return scheduled_drill_record(run=run, outcome=skipped, reason=f"server busy: {exc.message}")
    except ExecutionError as exc:
        return scheduled_drill_record(run=run, outcome=skipped, reason=f"not started: {exc.message}")
    except Exception:
        # Not a refusal (a bug, the database, the queue): expire our claim so that the next
        # minute's sweep takes the slot over at once (the key finds an execution made anyway).
        ScheduledDrillRun.objects.filter(pk=run.pk, outcome=ScheduledRunOutcome.STARTING).update(claimed_until=now)
        raise
    return scheduled_drill_record(run=run, outcome=ScheduledRunOutcome.STARTED, execution=execution)
