"""The evidence a drill produces: times on DRS's clock, RTO/RPO verdicts, every launch attempt
and one wave numbering, through the real boto3 client against the sandbox."""

import pytest
from django.utils.dateparse import parse_datetime

from drsorch.sandbox.models import SandboxJob, SandboxJobServer, SandboxRecoveryInstance
from drsorch.sandbox.services import sandbox_configure
from executions import engine
from executions.api.serializers import ExecutionSerializer
from executions.choices import EventKind
from executions.models import DrsJob, ExecutionEvent, LaunchAttempt
from executions.selectors import executions_for_json
from executions.services import execution_approve, execution_cancel, execution_retry, execution_start
from executions.tasks import launch_budget_seconds

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)


def execution_json(execution):
    return ExecutionSerializer(executions_for_json().get(pk=execution.pk)).data


def servers(body):
    return {server["hostname"]: server for wave in body["waves"] for server in wave["servers"]}


def test_launched_at_is_drs_launch_time_not_when_a_5s_poll_noticed(clock, drive, make_plan):
    plan = make_plan("Clock", [("Database", ["db-01", "db-02"], {}), ("Web", ["web-01", "web-02"], {})])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None), step=5)
    assert execution.status == "SUCCEEDED"

    drs_launched = {
        i.source_server.hostname: i.launched_at for i in SandboxRecoveryInstance.objects.select_related("source_server")
    }
    drs_snapshot = {
        i.source_server.hostname: i.point_in_time
        for i in SandboxRecoveryInstance.objects.select_related("source_server")
    }
    launches = {launch.hostname: launch for launch in execution.server_launches.all()}
    assert set(launches) == set(drs_launched)
    for hostname, launch in launches.items():
        assert abs((launch.launched_at - drs_launched[hostname]).total_seconds()) < 1, hostname
        assert abs((launch.snapshot_at - drs_snapshot[hostname]).total_seconds()) < 1, hostname
    # A wave ends when DRS launched its last server, not when a poll noticed it.
    for wave in execution.wave_runs.all():
        last = max(launch.launched_at for launch in launches.values() if launch.wave_run_id == wave.pk)
        assert wave.finished_at == last
        first_job = DrsJob.objects.filter(wave_run=wave).order_by("drs_created_at").first()
        assert wave.started_at <= first_job.drs_created_at


def test_an_execution_adopted_after_a_crash_starts_no_later_than_its_first_job(clock, drive, make_plan, sandbox_crash):
    plan = make_plan("Crash clock", [("Database", ["db-01"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    sandbox_configure(crash_after_start_recovery=True)
    with pytest.raises(sandbox_crash):
        engine.tick(
            execution_ids=[execution.pk], owner="worker-that-dies", launch_budget_seconds=launch_budget_seconds()
        )
    clock.shift(engine.LEASE_SECONDS + 1)
    execution = drive(execution)

    assert execution.status == "SUCCEEDED"
    created = SandboxJob.objects.get(type="LAUNCH").created_at
    assert execution.started_at <= created
    assert execution.wave_runs.get().started_at <= created
    assert DrsJob.objects.get(execution=execution).drs_created_at == created


def test_succeeded_drill_reports_rto_and_rpo_met_on_drs_clock(clock, drive, make_plan):
    plan = make_plan(
        "Verdict",
        [("Database", ["db-01"], {}), ("Web", ["web-01"], {"optional": ["web-01"]})],
        rto_target_minutes=30,
        rpo_target_minutes=15,
    )
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    running = execution_json(execution)
    assert running["rto"] == {"target_minutes": 30, "achieved_seconds": None, "met": None}
    assert running["rpo"] == {"target_minutes": 15, "worst_seconds": None, "met": None}

    execution = drive(execution, step=5)
    body = execution_json(execution)
    db = SandboxRecoveryInstance.objects.get(source_server__hostname="db-01")
    web = SandboxRecoveryInstance.objects.get(source_server__hostname="web-01")
    # Optional servers do not count towards the achieved RTO; the worst RPO covers every server.
    # DRS gives times to the second.
    assert abs(body["rto"]["achieved_seconds"] - (db.launched_at - execution.started_at).total_seconds()) < 1
    assert body["rto"]["met"] is True
    # A fresh snapshot taken after the start loses nothing the start asked for: 0, never negative.
    worst = max(max(0.0, (execution.started_at - i.point_in_time).total_seconds()) for i in (db, web))
    assert abs(body["rpo"]["worst_seconds"] - worst) < 1 and body["rpo"]["met"] is True
    assert servers(body)["db-01"]["snapshot_at"] is not None


@pytest.mark.parametrize("ending", ["FAILED", "CANCELLED", "TIMED_OUT"])
def test_an_execution_that_did_not_succeed_never_says_rto_met(clock, drive, make_plan, client, make_user, ending):
    waves = [("Database", ["db-01", "db-02"], {"timeout_minutes": 1}), ("Web", ["web-01"], {})]
    plan = make_plan(f"Not met {ending}", waves, rto_target_minutes=60)
    if ending == "FAILED":
        sandbox_configure(fail_launch=["db-02"])
    if ending == "TIMED_OUT":
        sandbox_configure(launch_seconds=600)
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    if ending == "CANCELLED":
        execution = drive(execution, until=lambda e: e.server_launches.filter(status="LAUNCHED").exists())
        execution_cancel(execution=execution, user=None)
    execution = drive(execution, step=20)
    assert execution.status == ending

    body = execution_json(execution)
    assert body["rto"]["met"] is False and body["rpo"]["met"] is False
    assert execution.rto_met is False
    ended = ExecutionEvent.objects.filter(execution=execution, message__startswith="Execution ended").get()
    assert "min missed" in ended.message

    client.force_login(make_user("vera", role="Viewer"))
    for url in (f"/executions/{execution.pk}/", f"/executions/{execution.pk}/report/", "/executions/", "/"):
        page = client.get(url).content.decode()
        assert "RTO met" not in page and ">met<" not in page, url


def test_a_retried_server_keeps_both_attempts_and_the_report_lists_the_failure(
    clock, drive, make_plan, client, make_user
):
    plan = make_plan("Attempts", [("Database", ["db-01", "db-02"], {})])
    sandbox_configure(fail_launch=["db-02"])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    assert execution.status == "FAILED"
    sandbox_configure(fail_launch=[])
    execution_retry(execution=execution, user=None)
    execution = drive(execution)
    assert execution.status == "SUCCEEDED"

    attempts = servers(execution_json(execution))["db-02"]["attempts"]
    assert [a["launch_status"] for a in attempts] == ["FAILED", "LAUNCHED"]
    first, second = attempts
    assert first["error"] and "LAUNCH_FAILED" in first["error"]
    assert first["job_id"] != second["job_id"] and second["error"] is None
    failed_job = SandboxJob.objects.get(job_id=first["job_id"])
    failed_end = SandboxJobServer.objects.get(job=failed_job, source_server__hostname="db-02").launch_end
    assert abs((parse_datetime(first["started_at"]) - failed_job.created_at).total_seconds()) < 1
    assert abs((parse_datetime(first["ended_at"]) - failed_end).total_seconds()) < 1
    assert first["ended_at"] <= second["started_at"]
    assert len(servers(execution_json(execution))["db-01"]["attempts"]) == 1

    client.force_login(make_user("vera", role="Viewer"))
    report = client.get(f"/executions/{execution.pk}/report/").content.decode()
    assert "Failures and the retries that followed" in report
    assert first["job_id"] in report and second["job_id"] in report


def test_events_and_audit_entries_number_waves_from_one(clock, drive, make_plan, make_user):
    plan = make_plan("Numbers", [("Database", ["db-01"], {}), ("Web", ["web-01"], {"approval_required": True})])
    execution = drive(
        execution_start(plan=plan, mode="DRILL", requested_by=None), until=lambda e: e.status == "WAITING_APPROVAL"
    )
    execution_approve(execution=execution, user=make_user("olga", role="Operator"))
    execution = drive(execution)

    messages = list(ExecutionEvent.objects.filter(execution=execution).values_list("kind", "message"))
    assert (EventKind.ACTION, "Approved wave 2 'Web'.") in messages
    assert (EventKind.STATUS, "Wave 2 'Web' waits for approval.") in messages
    assert (EventKind.STATUS, "Wave 1 'Database' is launching.") in messages
    assert not any("Wave 0" in message or "wave 0" in message for _, message in messages)
    assert [w["number"] for w in execution_json(execution)["waves"]] == [1, 2]


def test_a_denied_describe_recovery_instances_keeps_the_polls_time_and_the_drill_succeeds(clock, drive, make_plan):
    plan = make_plan("No instance read", [("Database", ["db-01"], {})])
    sandbox_configure(deny=["DescribeRecoveryInstances"])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None), step=5)

    assert execution.status == "SUCCEEDED"
    launch = execution.server_launches.get()
    # Without DRS's answer the launch keeps the time the poll saw it (never earlier than DRS's).
    drs_launched = SandboxRecoveryInstance.objects.get().launched_at
    assert launch.snapshot_at is None and 0 <= (launch.launched_at - drs_launched).total_seconds() <= 5
    body = execution_json(execution)
    assert body["rpo"]["worst_seconds"] is None and body["rpo"]["met"] is None
    assert body["rto"]["met"] is True


def test_a_retry_relaunches_the_failed_server_while_the_failed_jobs_last_log_is_still_unread(clock, drive, make_plan):
    # Under `make run` with throttling, the worker had not yet read the failed job's last log
    # when the retry came (the job still ACTIVE, DRS's status COMPLETED): the retried wave
    # was judged on its loaded servers only and ended SUCCEEDED without relaunching app-02.
    plan = make_plan("Retry open job", [("Application", ["app-01", "app-02"], {}), ("Web", ["web-01"], {})])
    sandbox_configure(fail_launch=["app-02"])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    assert execution.status == "FAILED"
    # As the worker leaves it when the final log read was throttled: the job still ACTIVE, the
    # failure known only from DescribeJobs.
    DrsJob.objects.filter(execution=execution).update(state="ACTIVE", log_items_seen=0, log_read_at=None)
    LaunchAttempt.objects.filter(launch_status="FAILED").update(error="DRS reported the launch as FAILED.")
    sandbox_configure(fail_launch=[])

    execution_retry(execution=execution, user=None)
    execution = drive(execution)

    assert execution.status == "SUCCEEDED"
    body = servers(execution_json(execution))
    assert body["app-02"]["launch_status"] == "LAUNCHED"
    first, second = body["app-02"]["attempts"]
    assert (first["launch_status"], second["launch_status"]) == ("FAILED", "LAUNCHED")
    # The failed job's last log, read after the retry, still gives the first attempt DRS's words.
    assert first["error"].startswith("LAUNCH_FAILED: ") and "configured to fail" in first["error"]
    wave = execution.wave_runs.get(index=0)
    assert wave.finished_at >= parse_datetime(body["app-02"]["launched_at"])
