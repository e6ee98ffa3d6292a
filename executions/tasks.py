"""django-q2 tasks of the engine: the poller chain and the immediate advance.

The poller's logic lives in executions/poller.py; these are the thin entry points django-q2
calls (by these dotted names, from the broker and from drsorch/schedules.py)."""

import logging
import time

from django.utils import timezone

from . import engine
from .poller import (
    LAUNCH_SHARE_OF_POLL,
    POLLER_WINDOW_SECONDS,
    launch_budget_seconds,
    poller_ensure_running,
    poller_note_tick,
    poller_run,
)
from .unattended.instance_ttl import drill_instances_expire
from .unattended.overdue import plans_overdue_notify
from .unattended.readiness_watch import plans_readiness_watch
from .unattended.scheduled_drills import scheduled_drills_run

logger = logging.getLogger(__name__)

__all__ = [
    "LAUNCH_SHARE_OF_POLL",
    "POLLER_WINDOW_SECONDS",
    "advance_execution",
    "launch_budget_seconds",
    "poll_executions",
    "watch_plans",
    "run_unattended",
]


def poll_executions(token=None, *, wait_for_lease=False, window_seconds=POLLER_WINDOW_SECONDS, sleep=time.sleep):
    """One link of the poller chain: tick while ticks are due for a few seconds, then hand
    over to a successor. Enqueued by its predecessor (with the lease's `token`), by the minute
    schedule and human actions (restarting a broken chain) and by a starting worker
    (`wait_for_lease`); without the lease it returns at once."""
    run = poller_run(token=token, window_seconds=window_seconds, wait_for_lease=wait_for_lease, sleep=sleep)
    return run.as_dict()


def advance_execution(execution_id):
    """Enqueued by start, approve, retry, cancel and cleanup: one tick of that execution now,
    then make sure a poller follows it (a broken chain restarts here, not at the next minute)."""
    result = engine.tick(execution_ids=[execution_id], launch_budget_seconds=launch_budget_seconds())
    if result.claimed:
        poller_note_tick()
    if result.remaining:
        poller_ensure_running()
    return {"claimed": result.claimed, "jobs_started": result.jobs_started}


def watch_plans():
    """The readiness watch and the drill-age notice (scheduled every
    DRSORCH_READINESS_WATCH_MINUTES, "drsorch: readiness watch"): evaluate every plan's
    readiness, notifying readiness.degraded / readiness.recovered on a change, then send
    drill.overdue for OVERDUE plans not yet told about today."""
    now = timezone.now()
    result = plans_readiness_watch(now=now).as_dict()
    result["overdue_notified"] = plans_overdue_notify(now=now)
    return result


def run_unattended():
    """Scheduled every minute ("drsorch: unattended drills"): start the plans' scheduled
    drills (or record why a slot is skipped), then warn about and clean up the drill instances
    whose time-to-live has come. Each plan and each drill fails alone (logged); a failure of
    one part does not stop the other. Started executions are advanced by the poller chain,
    which their start enqueues."""
    now = timezone.now()
    result = {}
    try:
        result["scheduled_drills"] = scheduled_drills_run(now=now).as_dict()
    except Exception:
        logger.exception("Scheduled drills failed")
    try:
        result["instance_ttl"] = drill_instances_expire(now=timezone.now()).as_dict()
    except Exception:
        logger.exception("Drill instance time-to-live failed")
    return result
