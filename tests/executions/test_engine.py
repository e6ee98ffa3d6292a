"""The engine through the sandbox and the real boto3 client: outcomes, gates, faults, quotas."""

import threading
from datetime import timedelta

import pytest
from botocore.exceptions import ConnectionError as BotoConnectionError
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from drsorch.aws import client_for
from drsorch.drs import gateway
from drsorch.sandbox.services import sandbox_configure
from executions import engine
from executions.choices import EventKind, JobState, LaunchStatus
from executions.engine import account, launching
from executions.engine.rows import TickRows
from executions.engine.ticks import advance
from executions.exceptions import ExecutionConflict, PlanAlreadyRunning
from executions.models import DrsJob, ExecutionEvent
from executions.services import (
    execution_approve,
    execution_cancel,
    execution_cleanup,
    execution_retry,
    execution_start,
)
from executions.tasks import launch_budget_seconds
from plans.demo import sandbox_seed
from plans.models import RecoveryPlan

from .conftest import finish, launch_counts

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)

THREE_TIERS = [("Database", ["db-01", "db-02"], {}), ("Application", ["app-01"], {}), ("Web", ["web-01"], {})]


def waves(execution):
    return [(w.name, w.status) for w in execution.wave_runs.order_by("index")]


def launches(execution):
    return {launch.hostname: launch for launch in execution.server_launches.all()}


def test_demo_drill_succeeds_wave_by_wave_and_launches_each_server_once(clock, drive):
    sandbox_seed()
    plan = RecoveryPlan.objects.get(name="Demo 3-tier application")
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))

    assert execution.status == "SUCCEEDED"
    assert waves(execution) == [("Database", "SUCCEEDED"), ("Application", "SUCCEEDED"), ("Web", "SUCCEEDED")]
    runs = list(execution.wave_runs.order_by("index"))
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert earlier.finished_at <= later.started_at
    assert set(launch_counts().values()) == {1}
    for launch in execution.server_launches.all():
        assert launch.status == "LAUNCHED" and launch.recovery_instance_id.startswith("i-") and launch.launched_at
    assert execution.started_at and execution.finished_at and execution.rto_met is True


def test_job_log_becomes_events_without_duplicates_and_phases(clock, drive, make_plan):
    plan = make_plan("Logs", [("Database", ["db-01", "db-02"], {})])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    for _ in range(3):  # reading the logs again adds nothing
        engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    drs_events = list(ExecutionEvent.objects.filter(execution=execution, kind=EventKind.DRS))
    keys = [event.dedupe_key for event in drs_events]
    assert len(keys) == len(set(keys)) > 0
    names = [event.message.split(": ", 1)[1].split(" ")[0] for event in drs_events]
    assert names[0] == "JOB_START" and names[-1] == "JOB_END"
    assert names.index("SNAPSHOT_START") < names.index("CONVERSION_START") < names.index("LAUNCH_START")


def test_phase_follows_the_job_log_while_launching(clock, make_plan):
    sandbox_configure(launch_seconds=100)
    plan = make_plan("Phases", [("Database", ["db-01"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    seen = []
    for _ in range(16):  # 100 s ±30% per server, and the job's end after it
        engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
        seen.append(execution.server_launches.get().phase)
        clock.shift(11)
    assert "SNAPSHOT" in seen or "CONVERSION" in seen
    assert seen[-1] == "READY"


def test_thirty_percent_throttling_still_succeeds_without_duplicates(clock, drive, make_plan):
    plan = make_plan("Throttled", THREE_TIERS)
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    sandbox_configure(throttle_rate=0.3)
    calls_before = gateway.calls_made()
    execution = drive(execution, step=3)
    assert execution.status == "SUCCEEDED"
    assert set(launch_counts().values()) == {1}
    # The sandbox throttles exactly 3 calls in 10, so at least this many were refused.
    assert (gateway.calls_made() - calls_before) * 0.3 >= 5


def test_failed_optional_server_gives_partial(clock, drive, make_plan):
    plan = make_plan("Optional", [("Database", ["db-01"], {}), ("Web", ["web-01", "web-02"], {"optional": ["web-02"]})])
    sandbox_configure(fail_launch=["web-02"])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    assert execution.status == "PARTIAL"
    assert waves(execution) == [("Database", "SUCCEEDED"), ("Web", "PARTIAL")]
    assert launches(execution)["web-02"].status == "FAILED"


def test_failed_critical_server_fails_and_later_waves_never_launch(clock, drive, make_plan):
    plan = make_plan("Critical", THREE_TIERS)
    sandbox_configure(fail_launch=["db-02"])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    assert execution.status == "FAILED"
    assert waves(execution) == [("Database", "FAILED"), ("Application", "SKIPPED"), ("Web", "SKIPPED")]
    failed = launches(execution)["db-02"]
    assert failed.status == "FAILED" and "LAUNCH_FAILED" in failed.error
    assert launch_counts()["app-01"] == 0 and launch_counts()["web-01"] == 0


def test_independent_branch_finishes_when_another_fails(clock, drive, make_plan):
    plan = make_plan(
        "Branches",
        [
            ("Database", ["db-01"], {}),
            ("Application", ["app-01"], {"depends_on": [0]}),
            ("Reporting", ["rep-01"], {"depends_on": []}),
        ],
    )
    sandbox_configure(fail_launch=["db-01"])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    assert waves(execution) == [("Database", "FAILED"), ("Application", "SKIPPED"), ("Reporting", "SUCCEEDED")]
    assert execution.status == "FAILED"


def test_gate_waits_for_approval(clock, drive, make_plan, make_user):
    plan = make_plan("Gated", [("Database", ["db-01"], {}), ("Web", ["web-01"], {"approval_required": True})])
    execution = drive(
        execution_start(plan=plan, mode="DRILL", requested_by=None), until=lambda e: e.status == "WAITING_APPROVAL"
    )
    for _ in range(5):
        clock.shift(30)
        engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    execution.refresh_from_db()
    assert execution.status == "WAITING_APPROVAL" and launch_counts()["web-01"] == 0

    operator = make_user("olga", role="Operator")
    execution_approve(execution=execution, user=operator)
    execution = drive(execution)
    assert execution.status == "SUCCEEDED"
    web = execution.wave_runs.get(name="Web")
    assert web.approved_by == operator
    assert ExecutionEvent.objects.filter(execution=execution, kind=EventKind.ACTION, actor=operator).exists()


def test_approve_without_waiting_gate_is_a_conflict(clock, make_plan):
    plan = make_plan("No gate", [("Database", ["db-01"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    with pytest.raises(ExecutionConflict, match="No wave of this execution is waiting for approval"):
        execution_approve(execution=execution, user=None)


def test_auto_approve_opens_gates(clock, drive, make_plan):
    plan = make_plan("Auto", [("Database", ["db-01"], {"approval_required": True})])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None, auto_approve=True))
    assert execution.status == "SUCCEEDED"
    assert execution.wave_runs.get().approved_at is not None


def test_wait_holds_dependents(clock, drive, make_plan):
    plan = make_plan("Wait", [("Database", ["db-01"], {"wait_after_minutes": 5}), ("Web", ["web-01"], {})])
    execution = drive(
        execution_start(plan=plan, mode="DRILL", requested_by=None),
        until=lambda e: e.wave_runs.filter(status="WAITING").exists(),
    )
    database = execution.wave_runs.get(name="Database")
    assert launch_counts()["web-01"] == 0
    execution = drive(execution)
    web = execution.wave_runs.get(name="Web")
    database.refresh_from_db()
    assert (web.started_at - database.wait_until).total_seconds() >= 0
    assert execution.status == "SUCCEEDED"


def test_cancel_stops_further_waves(clock, drive, make_plan):
    plan = make_plan("Cancel", THREE_TIERS)
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    # the Database job is in DRS now
    engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    execution_cancel(execution=execution, user=None)
    execution = drive(execution)
    assert execution.status == "CANCELLED"
    # The Database job was already in DRS: its servers launched, so that wave stands.
    assert waves(execution) == [("Database", "SUCCEEDED"), ("Application", "CANCELLED"), ("Web", "CANCELLED")]
    assert launch_counts()["db-01"] == 1 and launch_counts()["app-01"] == 0 and launch_counts()["web-01"] == 0
    with pytest.raises(ExecutionConflict):
        execution_cancel(execution=execution, user=None)


def test_cleanup_terminates_only_this_executions_instances(clock, drive, make_plan):
    first = drive(
        execution_start(plan=make_plan("First", [("Web", ["web-01", "web-02"], {})]), mode="DRILL", requested_by=None)
    )
    second = drive(
        execution_start(plan=make_plan("Second", [("Web", ["web-03"], {})]), mode="DRILL", requested_by=None)
    )
    execution_cleanup(execution=first, user=None)
    drive(first, until=lambda e: e.cleaned_up_at is not None)

    assert {launch.status for launch in first.server_launches.all()} == {"TERMINATED"}
    drs_client = client_for(first.server_launches.first().target, "drs")
    states = {i["recoveryInstanceID"]: i["ec2InstanceState"] for i in drs_client.describe_recovery_instances()["items"]}
    assert {states[launch.recovery_instance_id] for launch in first.server_launches.all()} == {"TERMINATED"}
    other = second.server_launches.get()
    assert states[other.recovery_instance_id] == "RUNNING" and other.status == "LAUNCHED"
    with pytest.raises(ExecutionConflict, match="no running recovery instances"):
        execution_cleanup(execution=first, user=None)


def test_cleanup_refuses_a_recovery_and_a_running_drill(clock, drive, make_plan):
    recovery = drive(
        execution_start(plan=make_plan("Real", [("Web", ["web-01"], {})]), mode="RECOVERY", requested_by=None)
    )
    with pytest.raises(ExecutionConflict, match="production"):
        execution_cleanup(execution=recovery, user=None)
    running = execution_start(plan=make_plan("Running", [("Web", ["web-02"], {})]), mode="DRILL", requested_by=None)
    with pytest.raises(ExecutionConflict, match="still running"):
        execution_cleanup(execution=running, user=None)


def test_recovery_waits_for_post_launch_actions(clock, drive, make_plan):
    plan = make_plan(
        "Post-launch", [("Application", ["app-01"], {})], server_options={"app-01": {"post_launch_actions": True}}
    )
    execution = drive(execution_start(plan=plan, mode="RECOVERY", requested_by=None))
    assert execution.status == "SUCCEEDED"
    launch = execution.server_launches.get()
    assert launch.post_launch_status == "SUCCEEDED"
    events = list(
        ExecutionEvent.objects.filter(
            execution=execution, source_server_id=launch.source_server_id, kind=EventKind.STATUS
        )
    )
    assert any("LAUNCHED" in e.message for e in events)


def test_retry_relaunches_only_failed_servers(clock, drive, make_plan):
    plan = make_plan("Retry", [("Database", ["db-01", "db-02"], {}), ("Web", ["web-01"], {})])
    sandbox_configure(fail_launch=["db-02"])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    assert execution.status == "FAILED"
    sandbox_configure(fail_launch=[])
    execution_retry(execution=execution, user=None)
    execution = drive(execution)
    assert execution.status == "SUCCEEDED"
    assert launch_counts() == {"db-01": 1, "db-02": 2, "web-01": 1}
    with pytest.raises(ExecutionConflict):
        execution_retry(execution=execution, user=None)


def test_wave_timeout_reads_drs_once_more_then_times_out(clock, drive, make_plan):
    sandbox_configure(launch_seconds=600)
    plan = make_plan("Slow", [("Database", ["db-01"], {"timeout_minutes": 1}), ("Web", ["web-01"], {})])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None), step=20)
    assert execution.status == "TIMED_OUT"
    assert waves(execution) == [("Database", "TIMED_OUT"), ("Web", "SKIPPED")]
    assert "Timed out after 1 min" in launches(execution)["db-01"].error


def test_second_start_of_a_running_plan_is_refused_and_idempotency_key_returns_first(clock, make_plan):
    plan = make_plan("Once", [("Database", ["db-01"], {})])
    first = execution_start(plan=plan, mode="DRILL", requested_by=None, idempotency_key="k-1")
    assert execution_start(plan=plan, mode="DRILL", requested_by=None, idempotency_key="k-1") == first
    with pytest.raises(PlanAlreadyRunning, match=str(first.pk)):
        execution_start(plan=plan, mode="DRILL", requested_by=None)


def test_crash_after_start_recovery_is_adopted_by_launch_token(clock, drive, make_plan, sandbox_crash):
    plan = make_plan("Crash", [("Database", ["db-01", "db-02"], {}), ("Web", ["web-01"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    sandbox_configure(crash_after_start_recovery=True)
    with pytest.raises(sandbox_crash):
        engine.tick(
            execution_ids=[execution.pk], owner="worker-that-dies", launch_budget_seconds=launch_budget_seconds()
        )
    intent = DrsJob.objects.get(execution=execution)
    assert intent.state == JobState.INTENDED and intent.job_id is None

    # A killed process keeps its lease until it expires; the next advancer adopts the job.
    clock.shift(engine.LEASE_SECONDS + 1)
    execution = drive(execution)
    assert execution.status == "SUCCEEDED"
    assert DrsJob.objects.get(pk=intent.pk).job_id is not None
    assert launch_counts() == {"db-01": 1, "db-02": 1, "web-01": 1}


def test_lost_answer_keeps_the_intent_and_adopts_the_job(clock, drive, make_plan, monkeypatch):
    real_start = gateway.start_recovery

    def start_then_lose_answer(**kwargs):
        real_start(**kwargs)
        raise BotoConnectionError(error="connection reset while reading the answer")

    plan = make_plan("Lost answer", [("Database", ["db-01"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    monkeypatch.setattr(gateway, "start_recovery", start_then_lose_answer)
    engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    monkeypatch.setattr(gateway, "start_recovery", real_start)
    assert DrsJob.objects.get().state == JobState.INTENDED
    execution = drive(execution)
    assert execution.status == "SUCCEEDED" and launch_counts() == {"db-01": 1}


def test_two_advancers_claim_an_execution_once(clock, make_plan):
    plan = make_plan("Claimed", [("Database", ["db-01"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    assert engine.claim_executions(owner="a") and not engine.claim_executions(owner="b")
    engine.release_executions([execution], owner="a")
    assert engine.claim_executions(owner="b")


def test_servers_claimed_by_an_intent_are_not_launched_again(clock, make_plan):
    """Even if two ticks held the same execution (a lease bug), the conditional claim of the
    servers lets only one of them record an intent and call DRS."""
    plan = make_plan("Double", [("Database", ["db-01", "db-02"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    engine.claim_executions(owner="a")
    first = TickRows([execution], owner="a")
    second = TickRows([execution], owner="a")  # loaded before the first launched
    advance(first)
    advance(second)
    assert launch_counts() == {"db-01": 1, "db-02": 1}
    assert DrsJob.objects.count() == 1


def test_quota_of_active_jobs_queues_instead_of_failing(clock, drive, make_plan, monkeypatch):
    monkeypatch.setattr(launching, "MAX_SERVERS_PER_JOB", 2)
    monkeypatch.setattr(launching, "MAX_ACTIVE_JOBS_PER_TARGET", 2)
    hosts = [f"web-{n:02d}" for n in range(1, 7)]
    plan = make_plan("Quota", [("Web", hosts, {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    phases = [launch.phase for launch in execution.server_launches.all()]
    assert DrsJob.objects.filter(execution=execution).count() == 2 and phases.count("QUEUED") == 2
    execution = drive(execution)
    assert execution.status == "SUCCEEDED" and set(launch_counts().values()) == {1}
    assert DrsJob.objects.filter(execution=execution).count() == 3


def test_drs_quota_error_is_retried_not_failed(clock, drive, make_plan, sandbox_target, monkeypatch):
    """Jobs drsorch cannot see (older than the lookback of the account's jobs) fill DRS's
    20-job quota; StartRecovery's quota error makes our launch wait for room."""
    monkeypatch.setattr(account, "ACTIVE_JOB_LOOKBACK", timedelta(0))
    plan = make_plan("Crowded", [("Web", ["web-01"], {})])
    others = make_plan("Others", [("Other", [f"o-{n:02d}" for n in range(20)], {})])
    drs_client = client_for(sandbox_target, "drs")
    for launch_server in others.waves.get().resolved_servers():
        drs_client.start_recovery(sourceServers=[{"sourceServerID": launch_server.drs_id}], isDrill=True)
    clock.shift(1)  # the outside jobs are older than the (zero) lookback now
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    assert DrsJob.objects.get(execution=execution).state == JobState.ABANDONED
    assert execution.server_launches.get().status == LaunchStatus.NOT_STARTED
    execution = drive(execution)
    assert execution.status == "SUCCEEDED" and launch_counts()["web-01"] == 1


def max_queries_per_tick(clock, make_plan, servers_per_wave):
    sandbox_configure(launch_seconds=0)  # every wave takes the same ticks: counts comparable exactly
    plan = make_plan(
        f"Size {servers_per_wave}",
        [
            ("Database", [f"db{servers_per_wave}-{n:02d}" for n in range(servers_per_wave)], {}),
            ("Web", [f"web{servers_per_wave}-{n:02d}" for n in range(servers_per_wave)], {}),
        ],
    )
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    counts = []
    while not execution.is_terminal and len(counts) < 40:
        with CaptureQueriesContext(connection) as queries:
            engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
        counts.append(len(queries))
        clock.shift(5)
        execution.refresh_from_db()
    assert execution.status == "SUCCEEDED"
    return max(counts)


def test_queries_per_tick_do_not_grow_with_servers(clock, make_plan):
    small = max_queries_per_tick(clock, make_plan, 5)
    large = max_queries_per_tick(clock, make_plan, 50)
    # 27: the launch attempts are one upsert in the ticks where launches change; the tick's
    # metrics (drsorch.metrics.flush) are one more, whatever the number of series.
    assert small == large <= 27


def race(execution_ids, workers=2, rounds=6):
    """Run `workers` threads that tick the same executions at once, `rounds` times."""
    barrier = threading.Barrier(workers)
    errors = []

    def work(name):
        try:
            for _ in range(rounds):
                barrier.wait()
                engine.tick(execution_ids=execution_ids, owner=name, launch_budget_seconds=launch_budget_seconds())
        except Exception as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(f"worker-{n}",)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_two_workers_at_once_launch_nothing_twice(make_plan):
    """Real threads, real database (a WAL SQLite file here, PostgreSQL in make test-e2e)."""
    sandbox_configure(launch_seconds=0)
    plans = [
        make_plan(f"Race {n}", [("Database", [f"db{n}-01", f"db{n}-02"], {}), ("Web", [f"web{n}-01"], {})])
        for n in range(3)
    ]
    executions = [execution_start(plan=plan, mode="DRILL", requested_by=None) for plan in plans]
    race([e.pk for e in executions])
    assert finish(executions) == {"SUCCEEDED"}
    assert set(launch_counts().values()) == {1}
    assert DrsJob.objects.count() == 6


def test_a_tick_that_outlived_its_lease_writes_nothing(clock, make_plan):
    plan = make_plan("Slow tick", [("Database", ["db-01"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    (claimed,) = engine.claim_executions(owner="slow")
    state = TickRows([claimed], owner="slow")
    clock.shift(engine.LEASE_SECONDS + 1)
    assert engine.claim_executions(owner="fast")  # the lease expired: another worker took over
    state.set_status(state.executions[execution.pk], "RUNNING")
    state.save()
    execution.refresh_from_db()
    assert execution.status == "PENDING" and execution.lease_owner == "fast"
    assert not ExecutionEvent.objects.filter(execution=execution, actor_name="drsorch").exists()


def test_retry_keeps_launched_servers_of_a_recovery(clock, drive, make_plan):
    plan = make_plan("Keep", [("Database", ["db-01", "db-02"], {})])
    sandbox_configure(fail_launch=["db-02"])
    execution = drive(execution_start(plan=plan, mode="RECOVERY", requested_by=None))
    kept = launches(execution)["db-01"]
    sandbox_configure(fail_launch=[])
    execution_retry(execution=execution, user=None)
    execution = drive(execution)
    assert execution.status == "SUCCEEDED"
    assert launches(execution)["db-01"].recovery_instance_id == kept.recovery_instance_id
    assert launch_counts() == {"db-01": 1, "db-02": 2}


def test_only_who_may_start_a_recovery_may_retry_one(clock, drive, make_plan, make_user):
    """A RECOVERY's retry launches production instances again: an Operator, who may retry a
    drill but not start a recovery, is refused and nothing is relaunched; a Commander may."""
    from django.core.exceptions import PermissionDenied

    plan = make_plan("Policy", [("Database", ["db-01", "db-02"], {})])
    sandbox_configure(fail_launch=["db-02"])
    execution = drive(execution_start(plan=plan, mode="RECOVERY", requested_by=None))
    sandbox_configure(fail_launch=[])
    with pytest.raises(PermissionDenied, match="Retrying a RECOVERY launches production instances again"):
        execution_retry(execution=execution, user=make_user(username="op", role="Operator"))
    execution.refresh_from_db()
    assert execution.status == "FAILED" and launch_counts() == {"db-01": 1, "db-02": 1}
    execution_retry(execution=execution, user=make_user(username="cmd", role="Commander"))
    assert drive(execution).status == "SUCCEEDED" and launch_counts() == {"db-01": 1, "db-02": 2}


def test_quota_room_is_used_in_the_tick_that_sees_a_job_complete(clock, make_plan, monkeypatch):
    monkeypatch.setattr(launching, "MAX_SERVERS_PER_JOB", 2)
    monkeypatch.setattr(launching, "MAX_ACTIVE_JOBS_PER_TARGET", 1)
    plan = make_plan("One at a time", [("Web", ["web-01", "web-02", "web-03", "web-04"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    assert DrsJob.objects.filter(execution=execution).count() == 1
    clock.shift(30)  # 20 s launches ±30%: the first job has completed in DRS
    engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    assert DrsJob.objects.filter(execution=execution).count() == 2


def test_a_burst_of_launches_is_spread_over_ticks(clock, drive, make_plan, monkeypatch, settings):
    """A tick spends at most a share of the poll interval starting jobs (always at least one);
    the rest start in the next ticks, each server still exactly once."""
    settings.DRSORCH_POLL_SECONDS = 0
    monkeypatch.setattr(launching, "MAX_SERVERS_PER_JOB", 1)
    monkeypatch.setattr(launching, "STARTS_PER_TARGET_AT_ONCE", 1)
    plan = make_plan("Burst", [("Web", ["web-01", "web-02", "web-03"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    assert DrsJob.objects.filter(execution=execution).count() == 1
    assert sorted(launch.phase for launch in execution.server_launches.all()) == ["QUEUED", "QUEUED", "STARTING"]
    engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    assert DrsJob.objects.filter(execution=execution).count() == 2
    execution = drive(execution)
    assert execution.status == "SUCCEEDED" and launch_counts() == {"web-01": 1, "web-02": 1, "web-03": 1}


def test_one_round_starts_several_jobs_of_one_target_and_the_budget_stops_the_next(
    clock, drive, make_plan, monkeypatch, settings
):
    """Executions reaching a wave together on one account start in one round of DRS's latency
    (STARTS_PER_TARGET_AT_ONCE calls in flight), not one round each; what the round leaves
    waits for the next tick once the budget is spent, and no server is launched twice."""
    settings.DRSORCH_POLL_SECONDS = 0
    monkeypatch.setattr(launching, "MAX_SERVERS_PER_JOB", 1)
    monkeypatch.setattr(launching, "STARTS_PER_TARGET_AT_ONCE", 4)
    hosts = [f"web-{n:02d}" for n in range(1, 7)]
    plan = make_plan("Round", [("Web", hosts, {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    result = engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    assert result.jobs_started == 4
    assert sorted(launch.phase for launch in execution.server_launches.all()) == ["QUEUED"] * 2 + ["STARTING"] * 4
    assert engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds()).jobs_started == 2
    execution = drive(execution)
    assert execution.status == "SUCCEEDED" and launch_counts() == dict.fromkeys(hosts, 1)


@pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)
def test_a_job_log_read_again_sends_only_its_new_items_to_the_database(clock, make_plan, monkeypatch):
    """A running job's log is read every few seconds and each read returns every item so far:
    items whose events were committed are not built and inserted again (the unique constraint
    stays the guard), and every DRS event is still recorded exactly once."""
    from executions.engine import rows as rows_module

    sent = []
    insert = rows_module.insert_rows_ignoring_duplicates

    def counted(model, objects):
        sent.extend(e.dedupe_key for e in objects if e.dedupe_key)
        return insert(model, objects)

    monkeypatch.setattr(rows_module, "insert_rows_ignoring_duplicates", counted)
    sandbox_configure(launch_seconds=60)
    execution = execution_start(
        plan=make_plan("Logs", [("Database", ["db-01", "db-02"], {})]), mode="DRILL", requested_by=None
    )
    for _ in range(12):
        engine.tick(execution_ids=[execution.pk], launch_budget_seconds=None)
        clock.shift(11)  # past LOG_REFRESH_SECONDS: the running job's log is read again each tick
    execution.refresh_from_db()
    assert execution.status == "SUCCEEDED"
    recorded = list(
        ExecutionEvent.objects.filter(execution=execution, kind=EventKind.DRS).values_list("dedupe_key", flat=True)
    )
    assert len(recorded) == len(set(recorded)) > 4
    assert sorted(sent) == sorted(recorded)  # each sent once, none re-sent by a later read
