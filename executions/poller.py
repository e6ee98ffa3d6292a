"""The poller: some django-q2 task is always ticking while an execution needs work.

django-q2 schedules run at most once a minute and a task that runs long holds its worker (and
a stopping cluster) until it returns. So a poller is a *short* task (POLLER_WINDOW_SECONDS)
that ticks the engine whenever a tick is due and, before its window ends, hands over to a
successor it enqueues itself, a re-enqueue chain:

- one database row (`PollerLease`) holds the lease: a conditional UPDATE ... WHERE the lease
  is free, expired, or handed to this very task, so two pollers never tick together; the
  holder renews it every few seconds, so a worker killed mid-tick lets it lapse within
  POLLER_LEASE_SECONDS and the next poller carries on (the engine's own leases keep the
  executions safe meanwhile);
- the hand-over writes the successor's token into the lease *before* enqueuing it, so a
  successor that starts while its predecessor is still returning finds the lease its own,
  and any other poller that finds the lease held exits at once;
- the pace is adaptive (`poller_interval`): the fast interval while jobs launch, a gate was
  just approved or anything moves; the slow one when only long waits remain (a gate nobody
  approved yet, a wave's wait), shortened to the end of the wait; none when nothing needs work;
- `last_tick_at` travels with the lease, so a successor ticks when its predecessor's next
  tick was due, not at once (DRS is asked at most once per interval across the hand-over);
- something always restarts a broken chain: the minute schedule (drsorch/schedules.py), every
  human action (`advance_execution` enqueues a poller when the lease is free) and every
  worker process at start (`poller_start_on_worker_spawn`, connected to django-q2's
  `post_spawn`), which waits for a dead worker's lease to lapse.

Time is read from `django.utils.timezone.now()` (the lease is compared in the database with
it) and every wait goes through the `sleep` a caller passes, so tests move a frozen clock.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from drsorch import metrics

from . import engine
from .choices import JOB_OPEN, WAVE_ACTION_PHASES, WAVE_TERMINAL, ExecutionStatus, WaveStatus
from .models import DrsJob, PollerLease, WaveRun

logger = logging.getLogger(__name__)

POLLER_TASK = "executions.tasks.poll_executions"
LEASE_NAME = "executions"
# A poller task lasts about this long before it hands over: short, so a stopping cluster
# (which waits for its running tasks) is never held for long, and a restart finds the chain's
# successor queued in the broker.
POLLER_WINDOW_SECONDS = 3.0
# Renewed at every tick and every pause of at most the fast interval: a dead poller's lease
# lapses this soon. A tick longer than this lets a second poller tick too, which the engine's
# per-execution leases make harmless.
POLLER_LEASE_SECONDS = 15.0
# The share of a poll interval a tick may spend starting DRS jobs (at least one a tick).
LAUNCH_SHARE_OF_POLL = 0.4
# A poller whose next tick falls after its window hands over this long before the window
# ends, so its successor has the broker's pick-up delay to start before that tick is due.
HANDOVER_LEAD_SECONDS = 1.0

Sleep = Callable[[float], None]


def fast_interval_seconds() -> float:
    """Seconds between ticks while anything moves (jobs launching, a gate just approved, a
    cancel, a clean-up): DRSORCH_POLL_FAST_SECONDS, never slower than DRSORCH_POLL_SECONDS."""
    return float(min(settings.DRSORCH_POLL_FAST_SECONDS, settings.DRSORCH_POLL_SECONDS))


def slow_interval_seconds() -> float:
    """Seconds between ticks when only long waits remain: DRSORCH_POLL_SECONDS."""
    return float(settings.DRSORCH_POLL_SECONDS)


def launch_budget_seconds() -> float:
    """How long one tick may spend starting DRS jobs: a burst of launches must not stretch a
    tick over the next poll, since every other execution waits for the tick to end. Launches
    only happen at the fast pace, so it is a share of the fast interval."""
    return LAUNCH_SHARE_OF_POLL * fast_interval_seconds()


def poller_interval(*, now: datetime | None = None) -> float | None:
    """Seconds the poller waits after a tick: None when no execution needs work, the fast
    interval while anything moves, else the slow one, cut short at the end of the nearest wait.

    Three queries whatever the number of servers: the executions needing work, their open
    DRS jobs, their unfinished waves."""
    now = now or timezone.now()
    executions = list(engine.executions_needing_work().values_list("pk", "status"))
    if not executions:
        return None
    fast, slow = fast_interval_seconds(), slow_interval_seconds()
    # PENDING (just started), CANCELLING, or an ended execution with a clean-up still open.
    if any(status not in (ExecutionStatus.RUNNING, ExecutionStatus.WAITING_APPROVAL) for _, status in executions):
        return fast
    ids = [pk for pk, _ in executions]
    if DrsJob.objects.filter(execution_id__in=ids, state__in=JOB_OPEN).exists():
        return fast
    waves = WaveRun.objects.filter(execution_id__in=ids).exclude(status__in=WAVE_TERMINAL)
    waiting: dict[object, list[datetime | None]] = {}
    for execution_id, status, approved_at, wait_until in waves.values_list(
        "execution_id", "status", "approved_at", "wait_until"
    ):
        if status in (WaveStatus.LAUNCHING, *WAVE_ACTION_PHASES) or (
            status == WaveStatus.WAITING_APPROVAL and approved_at
        ):
            return fast
        if status in (WaveStatus.WAITING_APPROVAL, WaveStatus.WAITING):
            waiting.setdefault(execution_id, []).append(wait_until)
    # An execution with nothing waiting on a person or a clock is about to move on.
    if len(waiting) < len(ids):
        return fast
    wait_ends = [until for untils in waiting.values() for until in untils if until is not None]
    if wait_ends:
        slow = min(slow, (min(wait_ends) - now).total_seconds())
    return max(fast, slow)


def _lease_free(token: str, now: datetime) -> Q:
    return Q(owner="") | Q(expires_at__isnull=True) | Q(expires_at__lte=now) | Q(owner=token)


def poller_lease_claim(*, token: str) -> bool:
    """Take the poller lease for `token` if it is free, expired, or already `token`'s (handed
    over by the predecessor). The conditional UPDATE is the claim: of two racing pollers the
    database lets one win."""
    now = timezone.now()
    expires = now + timedelta(seconds=POLLER_LEASE_SECONDS)
    claimed = (
        PollerLease.objects.filter(pk=LEASE_NAME)
        .filter(_lease_free(token, now))
        .update(owner=token, expires_at=expires)
    )
    if claimed:
        return True
    if not PollerLease.objects.filter(pk=LEASE_NAME).exists():
        # The first poller ever (or after the table was emptied) creates the row; of two
        # creating it at once one insert is ignored and the UPDATE decides again.
        PollerLease.objects.bulk_create([PollerLease(name=LEASE_NAME)], ignore_conflicts=True)
        return poller_lease_claim(token=token)
    return False


def poller_lease_renew(*, token: str) -> bool:
    """Extend our lease; False if it lapsed and someone else took it (then stop polling)."""
    now = timezone.now()
    return (
        PollerLease.objects.filter(pk=LEASE_NAME, owner=token).update(
            expires_at=now + timedelta(seconds=POLLER_LEASE_SECONDS)
        )
        == 1
    )


def poller_lease_release(*, token: str) -> None:
    """Give the lease up (nothing needs work any more), keeping `last_tick_at`."""
    PollerLease.objects.filter(pk=LEASE_NAME, owner=token).update(owner="", expires_at=None)


def poller_lease_held(*, now: datetime | None = None) -> bool:
    """Whether some poller holds an unexpired lease (so starting another one is useless)."""
    now = now or timezone.now()
    return PollerLease.objects.filter(pk=LEASE_NAME).exclude(_lease_free("", now)).exists()


def poller_note_tick(*, at: datetime | None = None) -> None:
    """Count a person's immediate tick (tasks.advance_execution) as the poller's last: its
    next tick then comes a whole interval later, so the targets it just asked are not asked
    again within the interval (DRS rate-limits DescribeJobs per account). Executions the
    person's tick did not cover wait at most one more interval."""
    at = at or timezone.now()
    if not PollerLease.objects.filter(pk=LEASE_NAME).update(last_tick_at=at):
        # No poller ever ran: create the row (free) with the time; a racing creator wins.
        PollerLease.objects.bulk_create([PollerLease(name=LEASE_NAME, last_tick_at=at)], ignore_conflicts=True)


def poller_enqueue(*, token: str | None = None, wait_for_lease: bool = False) -> None:
    """Queue a poller task in django-q2 (a successor when `token` is the lease handed to it)."""
    from django_q.tasks import async_task

    kwargs = {"wait_for_lease": True} if wait_for_lease else {}
    async_task(POLLER_TASK, token, task_name=f"poller {token or 'start'} {uuid.uuid4().hex[:8]}", **kwargs)


def poller_ensure_running() -> bool:
    """Enqueue a poller unless one holds the lease; True if one was enqueued. Called after a
    human action's immediate tick, so a chain that broke restarts at once, not within a minute."""
    if poller_lease_held():
        return False
    poller_enqueue()
    return True


@dataclass
class PollerRun:
    """What one poller task did (returned as the django-q2 task's result)."""

    token: str
    claimed: bool = False
    ticks: int = 0
    handed_over_to: str | None = None
    stopped: str = ""
    intervals: list[float] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The task result django-q2 stores."""
        return {
            "token": self.token,
            "claimed": self.claimed,
            "ticks": self.ticks,
            "handed_over_to": self.handed_over_to,
            "stopped": self.stopped,
        }


def poller_run(
    *,
    token: str | None = None,
    window_seconds: float = POLLER_WINDOW_SECONDS,
    wait_for_lease: bool = False,
    sleep: Sleep = time.sleep,
) -> PollerRun:
    """One poller task: claim the lease, tick whenever a tick is due until the window ends,
    then hand over to a successor (or release the lease when nothing needs work).

    `token` is the lease its predecessor handed to it; without one the poller starts a chain
    only if the lease is free. `wait_for_lease` (a worker starting) waits for a held lease to
    lapse, up to POLLER_LEASE_SECONDS, since the holder may be the worker that just died."""
    run = PollerRun(token=token or f"poller:{uuid.uuid4().hex}")
    run.claimed = poller_lease_claim(token=run.token)
    if not run.claimed and wait_for_lease:
        run.claimed = _wait_for_lease(run.token, sleep)
    if not run.claimed:
        run.stopped = "lease held by another poller"
        return run
    window_end = timezone.now() + timedelta(seconds=window_seconds)
    while True:
        interval = poller_interval()
        if interval is None:
            poller_lease_release(token=run.token)
            metrics.poller_checked_in()
            run.stopped = "nothing needs work"
            return run
        now = timezone.now()
        last_tick = PollerLease.objects.filter(pk=LEASE_NAME).values_list("last_tick_at", flat=True).first()
        due = now if last_tick is None else last_tick + timedelta(seconds=interval)
        if due <= now:
            if not _tick(run):
                return run
            continue
        if now >= window_end or (due > window_end and now >= window_end - timedelta(seconds=HANDOVER_LEAD_SECONDS)):
            _hand_over(run)
            return run
        # Pause at most the fast interval, so a person's action (which may make work fast) is
        # seen soon even when the pace is slow; the lease is renewed on every pass.
        sleep(min((due - now).total_seconds(), (window_end - now).total_seconds(), fast_interval_seconds()))
        if not poller_lease_renew(token=run.token):
            run.stopped = "lease lost"
            return run


def _wait_for_lease(token: str, sleep: Sleep) -> bool:
    """Wait for a held lease to lapse and take it; give up as soon as its holder shows it is
    alive (renews it or hands it over), since a live chain needs no second poller."""
    seen = PollerLease.objects.filter(pk=LEASE_NAME).values_list("owner", "expires_at").first()
    deadline = timezone.now() + timedelta(seconds=POLLER_LEASE_SECONDS + 1)
    while timezone.now() < deadline:
        sleep(1.0)
        if poller_lease_claim(token=token):
            return True
        if PollerLease.objects.filter(pk=LEASE_NAME).values_list("owner", "expires_at").first() != seen:
            return False
    return False


def _tick(run: PollerRun) -> bool:
    """Tick the engine under a renewed lease; False when the lease was lost."""
    if not poller_lease_renew(token=run.token):
        run.stopped = "lease lost"
        return False
    try:
        engine.tick(launch_budget_seconds=launch_budget_seconds())
    finally:
        # Stamped when the tick ends, so the next one starts a whole interval after this one's
        # DRS calls: never two DescribeJobs of a target within the interval, however long the
        # tick took (and a tick that crashed is not retried at once).
        PollerLease.objects.filter(pk=LEASE_NAME, owner=run.token).update(last_tick_at=timezone.now())
    run.ticks += 1
    if not poller_lease_renew(token=run.token):
        run.stopped = "lease lost"
        return False
    return True


def _hand_over(run: PollerRun) -> None:
    """Write the successor's token into the lease, then enqueue it: it finds the lease its own
    even if it starts before this task returns, and no third poller can slip in between."""
    successor = f"poller:{uuid.uuid4().hex}"
    now = timezone.now()
    handed = PollerLease.objects.filter(pk=LEASE_NAME, owner=run.token).update(
        owner=successor, expires_at=now + timedelta(seconds=POLLER_LEASE_SECONDS)
    )
    if not handed:
        run.stopped = "lease lost"
        return
    try:
        poller_enqueue(token=successor)
    except Exception:
        # The broker refused: free the lease so the next human action, worker start or the
        # minute schedule restarts the chain without waiting for it to lapse.
        logger.exception("Could not enqueue the next poller; the minute schedule restarts polling.")
        poller_lease_release(token=successor)
        run.stopped = "hand-over failed"
        return
    run.handed_over_to = successor
    run.stopped = "window ended"


def poller_start_on_worker_spawn(sender=None, proc_name: str = "", **kwargs) -> None:
    """django-q2 `post_spawn` receiver: a worker process that starts (the cluster starting or
    restarting) enqueues a poller that waits for a dead predecessor's lease to lapse, so polling
    picks up at once after a restart instead of at the next minute."""
    try:
        poller_enqueue(wait_for_lease=True)
    except Exception:  # a worker must start even when the broker hiccups; the schedule follows
        logger.exception("Could not enqueue a poller at worker start")
