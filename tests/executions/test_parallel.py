"""DRS calls for different targets run at once, through the real boto3 client and the sandbox;
the database work of a tick stays in the tick's own thread."""

import threading
import time
from datetime import timedelta

import pytest
from django.db.backends import utils as db_utils
from django.test import override_settings
from django.utils import timezone

from drsorch.drs import gateway
from drsorch.drs.concurrency import per_target
from drsorch.sandbox.services import sandbox_configure, sandbox_servers_create, sandbox_set_region_initialized
from drsorch.sandbox.transport import SandboxTransport
from executions import engine
from executions.models import DrsJob
from executions.services import execution_start
from plans.models import SourceServer, Target
from plans.services import WaveSpec, plan_save, protection_group_save, source_servers_sync

from .conftest import launch_counts

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)

LATENCY_MS = 150


def two_targets_with_a_drill_each():
    """Targets A and B (two sandbox accounts), a one-wave plan of two servers on each, both
    drills started; returns the targets and the executions."""
    targets, executions = [], []
    for n, name in enumerate("AB"):
        target = Target.objects.create(
            name=f"Target {name}", kind="sandbox", account_id=f"{210000000000 + n}", region="us-east-1"
        )
        hosts = [f"{name.lower()}-db-01", f"{name.lower()}-db-02"]
        sandbox_servers_create(
            account_id=target.account_id, region=target.region, specs=[{"hostname": host} for host in hosts]
        )
        source_servers_sync(target=target)
        group = protection_group_save(
            name=f"{name} servers", target=target, servers=list(SourceServer.objects.filter(target=target))
        )
        plan = plan_save(name=f"Plan {name}", waves=[WaveSpec(name="All", protection_groups=[group])])
        targets.append(target)
        executions.append(execution_start(plan=plan, mode="DRILL", requested_by=None))
    return targets, executions


def two_wave_drill_on_one_target(account_id):
    """A drill of a plan of two one-server waves (db-01, then app-01) on one sandbox target."""
    target = Target.objects.create(name="One", kind="sandbox", account_id=account_id, region="us-east-1")
    sandbox_servers_create(
        account_id=target.account_id, region=target.region, specs=[{"hostname": host} for host in ("db-01", "app-01")]
    )
    source_servers_sync(target=target)
    waves = [
        WaveSpec(
            name=host,
            protection_groups=[
                protection_group_save(
                    name=host, target=target, servers=list(SourceServer.objects.filter(hostname=host))
                )
            ],
        )
        for host in ("db-01", "app-01")
    ]
    execution = execution_start(plan=plan_save(name="Two waves", waves=waves), mode="DRILL", requested_by=None)
    return execution


@pytest.fixture
def answered_calls(monkeypatch):
    """Every simulated DRS call as (account, operation, thread, start, end), in perf_counter seconds."""
    calls = []
    lock = threading.Lock()
    answer = SandboxTransport.__call__

    def recorded(self, request, event_name="", **kwargs):
        started = time.perf_counter()
        try:
            return answer(self, request, event_name=event_name, **kwargs)
        finally:
            with lock:
                calls.append(
                    (
                        self.scope.account_id,
                        event_name.rsplit(".", 1)[-1],
                        threading.current_thread().name,
                        started,
                        time.perf_counter(),
                    )
                )

    monkeypatch.setattr(SandboxTransport, "__call__", recorded)
    return calls


@pytest.fixture
def queries_by_thread(monkeypatch):
    """Every SQL statement run, as (database alias, thread name)."""
    seen = []
    run = db_utils.CursorWrapper._execute_with_wrappers

    def recorded(self, sql, params, many, executor):
        seen.append((self.db.alias, threading.current_thread().name))
        return run(self, sql, params, many, executor)

    monkeypatch.setattr(db_utils.CursorWrapper, "_execute_with_wrappers", recorded)
    return seen


def overlap(calls, operation, account_a, account_b):
    """True when a call of `operation` to account A ran while one to account B did."""
    a = [(start, end) for account, op, _, start, end in calls if op == operation and account == account_a]
    b = [(start, end) for account, op, _, start, end in calls if op == operation and account == account_b]
    return any(sa < eb and sb < ea for sa, ea in a for sb, eb in b)


def test_start_recovery_and_polls_of_two_targets_overlap_and_the_database_stays_in_the_tick_thread(
    clock, answered_calls, queries_by_thread
):
    (a, b), executions = two_targets_with_a_drill_each()
    sandbox_configure(launch_seconds=30, latency_ms=LATENCY_MS)
    main = threading.current_thread().name
    queries_by_thread.clear()
    result = engine.tick(execution_ids=[e.pk for e in executions], launch_budget_seconds=None)
    assert result.jobs_started == 2
    # The DRS calls of both targets were made in pool threads, at the same time.
    assert overlap(answered_calls, "StartRecovery", a.account_id, b.account_id)
    assert overlap(answered_calls, "DescribeJobs", a.account_id, b.account_id)  # the account listings
    assert {thread for *_, thread, _, _ in answered_calls} - {main}
    # ... and counted as the tick's (per target: the listing and StartRecovery; the logs are
    # chosen before the launches, so the new job's log is first read by the next tick).
    assert result.drs_calls == 4
    # Every query of the product's database ran in the tick's thread; pool threads only
    # touched the sandbox's own database (the simulated DRS answering them).
    assert {thread for alias, thread in queries_by_thread if alias == "default"} == {main}
    assert {thread for alias, thread in queries_by_thread if alias == "sandbox"} - {main}
    answered_calls.clear()
    for _ in range(3):
        # Beyond the simulated launch time and its jitter (30 s ± 30%): both targets' servers
        # are LAUNCHED by the same tick, which reads their recovery instances at once.
        clock.shift(45)
        engine.tick(execution_ids=[e.pk for e in executions], launch_budget_seconds=None)
    assert overlap(answered_calls, "DescribeJobs", a.account_id, b.account_id)  # the polls
    assert overlap(answered_calls, "DescribeRecoveryInstances", a.account_id, b.account_id)
    assert overlap(answered_calls, "DescribeJobLogItems", a.account_id, b.account_id)
    for execution in executions:
        execution.refresh_from_db()
    assert {e.status for e in executions} == {"SUCCEEDED"}
    assert set(launch_counts().values()) == {1}


def test_a_target_drs_does_not_answer_leaves_the_other_targets_results_alone(clock, answered_calls):
    (a, b), executions = two_targets_with_a_drill_each()
    sandbox_configure(launch_seconds=30)
    ids = [e.pk for e in executions]
    assert engine.tick(execution_ids=ids, launch_budget_seconds=None).jobs_started == 2
    # B's region stops answering (every call refused) while both jobs run.
    sandbox_set_region_initialized(account_id=b.account_id, region=b.region, initialized=False)
    answered_calls.clear()
    for _ in range(3):
        clock.shift(30)
        engine.tick(execution_ids=ids, launch_budget_seconds=None)
    assert {account for account, *_ in answered_calls} == {a.account_id, b.account_id}
    first, second = executions
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "SUCCEEDED" and not first.drs_trouble
    assert second.status == "RUNNING"
    assert "not initialized" in second.drs_trouble[str(b.pk)]["error"]
    assert DrsJob.objects.get(execution=second).state == "ACTIVE"


def test_a_throttled_target_does_not_hold_back_the_other_target():
    """per_target gives each target its own outcome: B's error stays B's."""
    (a, b), _ = two_targets_with_a_drill_each()
    sandbox_set_region_initialized(account_id=b.account_id, region=b.region, initialized=False)
    with override_settings(DRSORCH_DRS_CONCURRENCY=2):
        outcomes = per_target(
            {target.pk: (lambda target=target: gateway.source_servers(target=target)) for target in (a, b)}
        )
    assert len(outcomes[a.pk].get()) == 2
    assert outcomes[b.pk].value is None and outcomes[b.pk].error is None  # uninitialized: "no servers"
    sandbox_set_region_initialized(account_id=b.account_id, region=b.region, initialized=True)
    sandbox_configure(throttle_rate=0.5)  # every second call throttled, whichever thread makes it
    since = timezone.now() - timedelta(hours=1)
    outcomes = per_target(
        {target.pk: (lambda target=target: list(gateway.jobs_since(target=target, since=since))) for target in (a, b)}
    )
    errors = [outcome.error for outcome in outcomes.values() if outcome.error is not None]
    answers = [outcome.value for outcome in outcomes.values() if outcome.error is None]
    assert len(errors) == 1 and "Throttling" in type(errors[0]).__name__
    assert answers == [[]]


def test_calls_run_in_the_callers_thread_when_concurrency_is_one(answered_calls):
    (a, b), executions = two_targets_with_a_drill_each()
    sandbox_configure(launch_seconds=0, latency_ms=20)
    with override_settings(DRSORCH_DRS_CONCURRENCY=1):
        engine.tick(execution_ids=[e.pk for e in executions], launch_budget_seconds=None)
    assert {thread for *_, thread, _, _ in answered_calls} == {threading.current_thread().name}
    assert not overlap(answered_calls, "StartRecovery", a.account_id, b.account_id)


def test_every_tick_asks_drs_for_a_targets_jobs_once_even_when_it_launches_the_next_wave(clock, answered_calls):
    """DRS rate-limits DescribeJobs per account: the poll of a target whose waves are still to
    launch lists the account's recent jobs, and the launcher uses that listing for its quota
    room and busy servers instead of asking again."""
    execution = two_wave_drill_on_one_target("230000000000")
    sandbox_configure(launch_seconds=30)
    per_tick = []
    for _ in range(8):
        answered_calls.clear()
        result = engine.tick(execution_ids=[execution.pk], launch_budget_seconds=None)
        per_tick.append(([op for _, op, *_ in answered_calls], result.jobs_started))
        clock.shift(30)
    execution.refresh_from_db()
    assert execution.status == "SUCCEEDED"
    assert [started for _, started in per_tick if started] == [1, 1]  # both waves launched
    second_launch = [ops for ops, started in per_tick if started][1]
    assert second_launch.count("StartRecovery") == 1
    assert all(ops.count("DescribeJobs") <= 1 for ops, _ in per_tick), per_tick


def test_a_later_listing_starts_at_the_oldest_job_the_last_one_showed_active(clock, monkeypatch):
    """Hours of completed jobs (and their servers) are not listed again on every tick: the next
    listing of an account starts at the oldest job its last listing showed active, less a slack."""
    from executions.engine import account

    asked = []
    jobs_since = gateway.jobs_since

    def recorded(*, target, since):
        asked.append(since)
        return jobs_since(target=target, since=since)

    monkeypatch.setattr(gateway, "jobs_since", recorded)
    execution = two_wave_drill_on_one_target("240000000000")
    sandbox_configure(launch_seconds=30)
    first_tick = timezone.now()
    for _ in range(8):
        engine.tick(execution_ids=[execution.pk], launch_budget_seconds=None)
        clock.shift(30)
    execution.refresh_from_db()
    assert execution.status == "SUCCEEDED"
    assert set(launch_counts().values()) == {1}
    assert asked[0] == first_tick - account.ACTIVE_JOB_LOOKBACK
    # Later listings start at the first wave's job (active when listed), less the slack.
    first_job = DrsJob.objects.filter(execution=execution).order_by("drs_created_at").first()
    assert asked[-1] >= first_job.drs_created_at - account.LISTING_SLACK
    assert asked[-1] > first_tick - timedelta(hours=1)
