"""django-q2 tasks of the engine: the minute poller and the immediate advance."""

import logging
import time

from django.conf import settings

from . import engine

logger = logging.getLogger(__name__)

POLL_WINDOW_SECONDS = 50
# The share of a poll interval a tick may spend starting DRS jobs (at least one a tick).
LAUNCH_SHARE_OF_POLL = 0.4


def launch_budget_seconds():
    """How long one tick may spend starting DRS jobs: a burst of launches must not stretch a
    tick over the next poll, since every other execution waits for the tick to end."""
    return LAUNCH_SHARE_OF_POLL * settings.DRSORCH_POLL_SECONDS


def poll_executions(*, window_seconds=POLL_WINDOW_SECONDS, interval=None, sleep=time.sleep):
    """Scheduled every minute: tick every DRSORCH_POLL_SECONDS for up to ~50 s while any
    execution needs work, so progress is seen within one poll interval, not one minute."""
    interval = settings.DRSORCH_POLL_SECONDS if interval is None else interval
    deadline = time.monotonic() + window_seconds
    ticks = 0
    while True:
        result = engine.tick(launch_budget_seconds=launch_budget_seconds())
        ticks += 1
        if not result.remaining or time.monotonic() + interval > deadline:
            return {"ticks": ticks, "remaining": result.remaining}
        sleep(interval)


def advance_execution(execution_id):
    """Enqueued by start, approve, retry, cancel and cleanup: one tick of that execution now."""
    result = engine.tick(execution_ids=[execution_id], launch_budget_seconds=launch_budget_seconds())
    return {"claimed": result.claimed, "jobs_started": result.jobs_started}
