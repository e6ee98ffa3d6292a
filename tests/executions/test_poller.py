"""The poller chain (executions/poller.py): hand-over, one poller at a time, adaptive pace,
pick-up after a restart or a worker dying mid-tick, and short tasks so a cluster stops fast.

Pollers run in this process against the sandbox through the real boto3 client; django-q2's
broker is the ORM, so a hand-over is a real queued task, run here by `run_queued_pollers`.
Time is frozen (`clock`) and every poller's `sleep` moves it."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from django_q.models import OrmQ

from drsorch.sandbox.services import sandbox_configure
from executions import poller, tasks
from executions.choices import WaveStatus
from executions.models import PollerLease, WaveRun
from executions.services import execution_approve, execution_start

from .conftest import launch_counts

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


@pytest.fixture
def sleeps(clock):
    """A fake `sleep` that moves the frozen clock and records every pause."""
    recorded = []

    def sleep(seconds):
        recorded.append(seconds)
        clock.shift(seconds)

    sleep.recorded = recorded
    return sleep


def queued_pollers():
    """The poller tasks waiting in the broker, oldest first, as (OrmQ row, task)."""
    return [(row, row.task) for row in OrmQ.objects.order_by("id") if row.task.get("func") == poller.POLLER_TASK]


def run_queued_pollers(clock, sleep, *, until, max_tasks=200, pick_up_seconds=0.5):
    """Run queued poller tasks one after another, as a worker would (each picked up
    `pick_up_seconds` after the previous one returned), until `until()` holds."""
    results = []
    for _ in range(max_tasks):
        if until():
            return results
        queued = queued_pollers()
        assert queued, f"the chain broke: no poller queued after {results[-3:]}"
        row, task = queued[0]
        row.delete()
        clock.shift(pick_up_seconds)
        results.append(tasks.poll_executions(*task["args"], sleep=sleep, **task["kwargs"]))
    raise AssertionError(f"still not done after {max_tasks} poller tasks: {results[-3:]}")


def start(make_plan, name="Poller", waves=None, **fields):
    plan = make_plan(name, waves or [("Database", ["db-01"], {}), ("Web", ["web-01"], {})], **fields)
    return execution_start(plan=plan, mode="DRILL", requested_by=None)


def test_a_poller_ticks_while_due_then_hands_over_to_exactly_one_successor(clock, sleeps, make_plan):
    sandbox_configure(launch_seconds=60)
    start(make_plan)
    OrmQ.objects.all().delete()  # the start's own advance task

    result = tasks.poll_executions(sleep=sleeps)

    # Ticks at 0 s and 2 s (the fast pace), then hands over before its 3 s window ends.
    assert result["claimed"] and result["ticks"] == 2 and result["stopped"] == "window ended"
    assert sum(sleeps.recorded) <= poller.POLLER_WINDOW_SECONDS
    queued = queued_pollers()
    assert len(queued) == 1
    successor = queued[0][1]["args"][0]
    assert successor == result["handed_over_to"]
    # The lease is the successor's before it even starts, so no other poller slips in.
    assert PollerLease.objects.get().owner == successor
    assert tasks.poll_executions(sleep=sleeps)["claimed"] is False


def test_a_successor_keeps_its_predecessors_pace(clock, sleeps, make_plan):
    sandbox_configure(launch_seconds=60)
    start(make_plan)
    OrmQ.objects.all().delete()
    tasks.poll_executions(sleep=sleeps)
    ((row, task),) = queued_pollers()
    last_tick = PollerLease.objects.get().last_tick_at

    sleeps.recorded.clear()
    tasks.poll_executions(*task["args"], sleep=sleeps)

    # Its first tick comes one fast interval after the predecessor's last, never sooner.
    ticks_at = PollerLease.objects.get().last_tick_at
    assert ticks_at - last_tick >= timedelta(seconds=poller.fast_interval_seconds())


def test_a_poller_that_finds_the_lease_held_exits_at_once(clock, sleeps, make_plan):
    start(make_plan)
    assert poller.poller_lease_claim(token="poller:alive")

    result = tasks.poll_executions(sleep=sleeps)
    stale_successor = tasks.poll_executions("poller:handed-long-ago", sleep=sleeps)

    assert result == {
        "token": result["token"],
        "claimed": False,
        "ticks": 0,
        "handed_over_to": None,
        "stopped": "lease held by another poller",
    }
    assert stale_successor["claimed"] is False and stale_successor["ticks"] == 0
    assert sleeps.recorded == []
    assert PollerLease.objects.get().owner == "poller:alive"


def test_two_pollers_never_tick_together(clock, make_plan):
    sandbox_configure(launch_seconds=60)
    start(make_plan)
    others = []

    def sleep_while_another_poller_tries(seconds):
        # Another worker's poller starts while this one pauses between two ticks.
        others.append(tasks.poll_executions(sleep=lambda s: clock.shift(s)))
        clock.shift(seconds)

    first = tasks.poll_executions(sleep=sleep_while_another_poller_tries)

    assert first["ticks"] == 2
    assert others and all(not other["claimed"] and other["ticks"] == 0 for other in others)


def test_the_pace_is_fast_while_jobs_launch_slow_at_a_gate_and_none_when_idle(clock, make_plan):
    assert poller.poller_interval() is None
    execution = start(make_plan, waves=[("Database", ["db-01"], {}), ("Web", ["web-01"], {"approval_required": True})])
    assert poller.poller_interval() == poller.fast_interval_seconds()  # PENDING: about to launch

    sandbox_configure(launch_seconds=0)
    poller.poller_ensure_running()
    run_queued_pollers(
        clock,
        lambda s: clock.shift(s),
        until=lambda: WaveRun.objects.filter(execution=execution, status=WaveStatus.WAITING_APPROVAL).exists(),
    )
    # Only a person can move it now: the slow pace.
    assert poller.poller_interval() == settings.DRSORCH_POLL_SECONDS == 15

    execution_approve(execution=execution, user=None)
    assert poller.poller_interval() == poller.fast_interval_seconds()  # a gate just approved


def test_a_waves_wait_is_polled_slowly_but_ends_on_time(clock, make_plan):
    sandbox_configure(launch_seconds=0)
    execution = start(make_plan, waves=[("Database", ["db-01"], {"wait_after_minutes": 1}), ("Web", ["web-01"], {})])
    poller.poller_ensure_running()
    run_queued_pollers(
        clock,
        lambda s: clock.shift(s),
        until=lambda: WaveRun.objects.filter(execution=execution, status=WaveStatus.WAITING).exists(),
    )
    wait_until = WaveRun.objects.get(execution=execution, index=0).wait_until

    assert poller.poller_interval() == 15
    clock.move_to(wait_until - timedelta(seconds=5))
    assert poller.poller_interval() == 5  # cut short at the wait's end
    clock.move_to(wait_until - timedelta(seconds=1))
    assert poller.poller_interval() == poller.fast_interval_seconds()  # never faster than the fast pace


def test_the_chain_drives_a_drill_to_its_end_and_goes_idle(clock, sleeps, make_plan, monkeypatch):
    sandbox_configure(launch_seconds=10)
    execution = start(make_plan)
    OrmQ.objects.all().delete()
    poller.poller_ensure_running()
    ticked_at, real_tick = [], poller.engine.tick

    def tick(**kwargs):
        ticked_at.append(timezone.now())
        return real_tick(**kwargs)

    monkeypatch.setattr(poller.engine, "tick", tick)

    run_queued_pollers(clock, sleeps, until=lambda: not queued_pollers() and PollerLease.objects.get().owner == "")

    execution.refresh_from_db()
    assert execution.status == "SUCCEEDED"
    assert launch_counts() == {"db-01": 1, "web-01": 1}
    # Across every hand-over, ticks come exactly one fast interval apart: DRS is asked at most
    # once per 2 s, and never left waiting longer.
    gaps = {(later - earlier).total_seconds() for earlier, later in zip(ticked_at, ticked_at[1:], strict=False)}
    assert len(ticked_at) >= 5 and gaps == {poller.fast_interval_seconds()}


def test_a_human_action_restarts_a_broken_chain_at_once(clock, make_plan):
    execution = start(make_plan)
    OrmQ.objects.all().delete()

    tasks.advance_execution(str(execution.pk))
    assert len(queued_pollers()) == 1

    # While a poller holds the lease, an action enqueues no second one.
    OrmQ.objects.all().delete()
    poller.poller_lease_claim(token="poller:alive")
    tasks.advance_execution(str(execution.pk))
    assert queued_pollers() == []


def test_a_persons_tick_counts_as_the_pollers_so_drs_is_not_asked_again_within_the_interval(clock, sleeps, make_plan):
    sandbox_configure(launch_seconds=60)
    execution = start(make_plan)
    OrmQ.objects.all().delete()
    tasks.advance_execution(str(execution.pk))  # the start's immediate tick: polls and launches
    person_ticked_at = PollerLease.objects.get().last_tick_at
    assert person_ticked_at is not None
    ((row, task),) = queued_pollers()
    row.delete()

    tasks.poll_executions(*task["args"], sleep=sleeps, **task["kwargs"])

    # The chain's first tick waits a whole fast interval after the person's, not 0 s.
    assert sleeps.recorded and sleeps.recorded[0] > 0
    first_poll = PollerLease.objects.get().last_tick_at
    assert first_poll - person_ticked_at >= timedelta(seconds=poller.fast_interval_seconds())


def test_a_starting_worker_enqueues_a_poller_that_waits_for_a_dead_workers_lease(clock, sleeps, make_plan):
    sandbox_configure(launch_seconds=60)
    start(make_plan)
    OrmQ.objects.all().delete()
    poller.poller_lease_claim(token="poller:of-the-worker-that-died")

    poller.poller_start_on_worker_spawn(sender="django_q", proc_name="Process-1")
    ((row, task),) = queued_pollers()
    row.delete()
    result = tasks.poll_executions(*task["args"], sleep=sleeps, **task["kwargs"])

    # It took the lease as soon as it lapsed and ticked, instead of waiting for the schedule.
    assert result["claimed"] and result["ticks"] >= 1
    assert sum(sleeps.recorded) <= poller.POLLER_LEASE_SECONDS + 1 + poller.POLLER_WINDOW_SECONDS


def test_a_starting_worker_leaves_a_live_chain_alone(clock, make_plan):
    start(make_plan)
    poller.poller_lease_claim(token="poller:alive")

    def sleep(seconds):
        clock.shift(seconds)
        poller.poller_lease_renew(token="poller:alive")  # the live poller renews while we wait

    result = tasks.poll_executions(wait_for_lease=True, sleep=sleep)

    assert result["claimed"] is False and PollerLease.objects.get().owner == "poller:alive"


def test_a_worker_killed_mid_tick_loses_nothing(clock, sleeps, make_plan, sandbox_crash):
    sandbox_configure(launch_seconds=10)
    execution = start(make_plan)
    OrmQ.objects.all().delete()
    sandbox_configure(crash_after_start_recovery=True)

    # The worker dies right after StartRecovery, mid-tick: leases, intent and all stay as they are.
    with pytest.raises(sandbox_crash):
        tasks.poll_executions(sleep=sleeps)
    assert PollerLease.objects.get().expires_at > timezone.now()

    # The cluster restarts: its worker's poller waits for the dead lease, then the chain carries on.
    poller.poller_start_on_worker_spawn(sender="django_q", proc_name="Process-1")
    run_queued_pollers(clock, sleeps, until=lambda: not queued_pollers() and PollerLease.objects.get().owner == "")

    execution.refresh_from_db()
    assert execution.status == "SUCCEEDED"
    assert launch_counts() == {"db-01": 1, "web-01": 1}


def test_a_poller_task_is_short_even_at_the_slow_pace_so_a_stopping_cluster_is_not_held(clock, sleeps, make_plan):
    sandbox_configure(launch_seconds=0)
    execution = start(make_plan, waves=[("Database", ["db-01"], {}), ("Web", ["web-01"], {"approval_required": True})])
    poller.poller_ensure_running()
    run_queued_pollers(
        clock,
        sleeps,
        until=lambda: WaveRun.objects.filter(execution=execution, status=WaveStatus.WAITING_APPROVAL).exists(),
    )
    OrmQ.objects.all().delete()
    poller.poller_lease_release(token=PollerLease.objects.get().owner)

    sleeps.recorded.clear()
    result = tasks.poll_executions(sleep=sleeps)

    # A django-q2 cluster told to stop waits for its running tasks: a poller returns within its
    # window (at most one tick more) at any pace, handing over to a successor queued for the restart.
    assert result["stopped"] == "window ended" and sum(sleeps.recorded) <= poller.POLLER_WINDOW_SECONDS
    assert len(queued_pollers()) == 1


def test_q_cluster_timeout_and_retry_fit_the_poller():
    timeout, retry = settings.Q_CLUSTER["timeout"], settings.Q_CLUSTER["retry"]
    # A task is killed only well after a poller's window and a slow tick, and the ORM broker
    # hands a task to another worker only after it would have been killed.
    assert poller.POLLER_WINDOW_SECONDS + poller.POLLER_LEASE_SECONDS < timeout < retry
    assert tasks.launch_budget_seconds() == tasks.LAUNCH_SHARE_OF_POLL * poller.fast_interval_seconds()
