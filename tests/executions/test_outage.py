"""The engine against DRS as it really behaves (issue 10): busy servers, denied permissions, an
unreachable target, jobs without tags, outside jobs in the quota, post-launch actions. Through
the real boto3 client and the sandbox's switches, on a frozen clock."""

from datetime import timedelta

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from drsorch import aws
from drsorch.drs import errors as drs_errors
from drsorch.sandbox.services import sandbox_configure, sandbox_status
from executions import engine
from executions.choices import EventKind, JobState
from executions.engine import account, launching
from executions.models import DrsJob, ExecutionEvent
from executions.services import execution_cancel, execution_retry, execution_start
from executions.tasks import launch_budget_seconds
from plans.models import Target

from .conftest import launch_counts

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)


def tick(execution):
    engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    execution.refresh_from_db()
    return execution


def launches(execution):
    return {launch.hostname: launch for launch in execution.server_launches.all()}


def outside_job_id():
    (job,) = [job for job in sandbox_status()["jobs"] if not job["tags"]]
    return job["job_id"]


# --- 1. busy servers ------------------------------------------------------------------------------


def test_a_server_busy_in_an_outside_job_waits_and_the_rest_of_its_wave_launches_at_once(clock, drive, make_plan):
    plan = make_plan("Busy", [("Web", ["web-01", "web-02", "web-03"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    sandbox_configure(busy=["web-02"], busy_seconds=90)
    holder = outside_job_id()

    execution = tick(execution)
    now = launches(execution)
    assert now["web-01"].job_id and now["web-03"].job_id  # launched in this very tick
    assert now["web-02"].job_id is None and now["web-02"].phase == "HELD"
    assert holder in now["web-02"].error
    assert ExecutionEvent.objects.filter(execution=execution, message__contains=holder).exists()

    execution = drive(execution)
    assert execution.status == "SUCCEEDED"
    assert launch_counts() == {"web-01": 1, "web-02": 2, "web-03": 1}  # web-02: the outside job, then ours
    ours = [job for job in sandbox_status()["jobs"] if job["tags"]]
    assert sorted(len(job["source_server_ids"]) for job in ours) == [1, 2]


def test_a_conflict_with_a_job_older_than_the_lookback_splits_the_batch(clock, drive, make_plan, monkeypatch):
    """The account's listing does not show the holder: the batch is split until the free
    servers go, in the same tick; the held one is tried again each tick until it is free."""
    plan = make_plan("Split", [("Web", ["web-01", "web-02", "web-03", "web-04"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    sandbox_configure(busy=["web-03"], busy_seconds=60)
    clock.shift(1)
    monkeypatch.setattr(account, "ACTIVE_JOB_LOOKBACK", timedelta(0))

    execution = tick(execution)
    now = launches(execution)
    assert all(now[h].job_id for h in ("web-01", "web-02", "web-04"))
    assert now["web-03"].phase == "HELD" and "not found" in now["web-03"].error
    execution = drive(execution)
    assert execution.status == "SUCCEEDED"
    assert launch_counts() == {"web-01": 1, "web-02": 1, "web-03": 2, "web-04": 1}


# --- 2. fail fast, bounded waits -----------------------------------------------------------------


def test_a_denied_start_recovery_fails_the_wave_at_once_naming_the_permission(clock, make_plan):
    plan = make_plan("Denied", [("Web", ["web-01", "web-02"], {}), ("App", ["app-01"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    sandbox_configure(deny=["StartRecovery"])
    execution = tick(execution)
    execution = tick(execution)
    assert execution.status == "FAILED"
    assert [w.status for w in execution.wave_runs.order_by("index")] == ["FAILED", "SKIPPED"]
    for launch in execution.server_launches.filter(wave_run__index=0):
        assert launch.status == "FAILED" and "drs:StartRecovery" in launch.error
    assert launch_counts() == {"web-01": 0, "web-02": 0, "app-01": 0}


def unreachable(target, monkeypatch):
    """Make `target` a real AWS target without any credentials: every DRS call fails before
    it is sent (NoCredentialsError), as when the role or the network to AWS is gone."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    Target.objects.filter(pk=target.pk).update(kind="aws")
    aws.clear_session_cache()


@pytest.fixture
def restore_clients():
    yield
    aws.clear_session_cache()


def test_an_unreachable_target_fails_its_drill_within_minutes_naming_the_cause(
    clock, drive, make_plan, sandbox_target, monkeypatch, restore_clients
):
    plan = make_plan("Cut off", [("Web", ["web-01"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    unreachable(sandbox_target, monkeypatch)
    execution = tick(execution)
    assert execution.status == "RUNNING" and "credentials" in launches(execution)["web-01"].error
    execution = drive(execution, step=15)
    assert execution.status == "FAILED"
    assert (execution.finished_at - execution.started_at).total_seconds() <= 180
    launch = launches(execution)["web-01"]
    assert "could not be reached" in launch.error and "NoCredentialsError" in launch.error


def test_an_intent_on_an_unreachable_target_becomes_outcome_unknown_and_retry_is_allowed(
    clock, drive, make_plan, sandbox_target, sandbox_crash, monkeypatch, restore_clients
):
    plan = make_plan("Unknown", [("Web", ["web-01"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    sandbox_configure(crash_after_start_recovery=True)
    with pytest.raises(sandbox_crash):
        engine.tick(execution_ids=[execution.pk], owner="dies", launch_budget_seconds=launch_budget_seconds())
    unreachable(sandbox_target, monkeypatch)
    clock.shift(engine.LEASE_SECONDS + 1)
    execution = drive(execution, step=15)
    assert execution.status == "FAILED"
    intent = DrsJob.objects.get(execution=execution)
    assert intent.state == JobState.UNKNOWN and "outcome unknown" in intent.error
    launch = launches(execution)["web-01"]
    assert launch.status == "FAILED" and "not relaunched automatically" in launch.error
    assert launch_counts() == {"web-01": 1}  # the engine launched nothing again on its own

    Target.objects.filter(pk=sandbox_target.pk).update(kind="sandbox")
    aws.clear_session_cache()
    execution_retry(execution=execution, user=None)  # not refused: nothing is open any more
    assert drive(execution).status == "SUCCEEDED"


def test_cancel_ends_promptly_when_the_target_is_unreachable(
    clock, drive, make_plan, sandbox_target, monkeypatch, restore_clients
):
    sandbox_configure(launch_seconds=600)
    plan = make_plan("Cancel cut off", [("Web", ["web-01"], {}), ("App", ["app-01"], {})])
    execution = tick(execution_start(plan=plan, mode="DRILL", requested_by=None))
    assert DrsJob.objects.get(execution=execution).state == JobState.ACTIVE
    unreachable(sandbox_target, monkeypatch)
    execution_cancel(execution=execution, user=None)
    execution = drive(execution, step=15, max_ticks=20)
    assert execution.status == "CANCELLED"
    assert DrsJob.objects.get(execution=execution).state == JobState.UNKNOWN
    assert "outcome unknown" in launches(execution)["web-01"].error


def test_errors_are_classified_once():
    denied = ClientError(
        {
            "Error": {
                "Code": "AccessDeniedException",
                "Message": "User: x is not authorized to perform: drs:TagResource on resource: *",
            },
            "ResponseMetadata": {"HTTPStatusCode": 403},
        },
        "StartRecovery",
    )
    assert drs_errors.classify(denied) == drs_errors.ErrorKind.FINAL
    assert "drs:TagResource" in drs_errors.explain(denied, operation="StartRecovery")
    assume = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "AssumeRole")
    throttled = ClientError(
        {
            "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
            "ResponseMetadata": {"HTTPStatusCode": 429},
        },
        "DescribeJobs",
    )
    internal = ClientError(
        {"Error": {"Code": "InternalServerException", "Message": "oops"}, "ResponseMetadata": {"HTTPStatusCode": 500}},
        "StartRecovery",
    )
    assert drs_errors.classify(assume) == drs_errors.ErrorKind.UNREACHABLE
    assert drs_errors.classify(throttled) == drs_errors.ErrorKind.RETRY and drs_errors.unsent(throttled)
    assert drs_errors.classify(internal) == drs_errors.ErrorKind.RETRY and not drs_errors.unsent(internal)
    for exc in (EndpointConnectionError(endpoint_url="https://drs"), NoCredentialsError()):
        assert drs_errors.classify(exc) == drs_errors.ErrorKind.UNREACHABLE and drs_errors.unsent(exc)


# --- 3. tags ----------------------------------------------------------------------------------------


def test_a_crash_without_job_tags_is_adopted_through_list_tags_for_resource(clock, drive, make_plan, sandbox_crash):
    plan = make_plan("No tags", [("Database", ["db-01", "db-02"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    sandbox_configure(crash_after_start_recovery=True, no_job_tags=True)
    with pytest.raises(sandbox_crash):
        engine.tick(execution_ids=[execution.pk], owner="dies", launch_budget_seconds=launch_budget_seconds())
    clock.shift(engine.LEASE_SECONDS + 1)
    execution = drive(execution)
    assert execution.status == "SUCCEEDED"
    assert DrsJob.objects.get(execution=execution).state == JobState.COMPLETED
    assert launch_counts() == {"db-01": 1, "db-02": 1}


def test_a_denied_tag_resource_fails_the_launch_and_keeps_the_tags(clock, make_plan, monkeypatch):
    from drsorch.drs import gateway

    def tags_denied(**kwargs):
        assert kwargs["tags"]  # the engine never sends a launch without its launch token
        raise ClientError(
            {
                "Error": {
                    "Code": "AccessDeniedException",
                    "Message": "User: arn:aws:sts::1:assumed-role"
                    "/drsorch/x is not authorized to perform: drs:TagResource on resource: *",
                },
                "ResponseMetadata": {"HTTPStatusCode": 403},
            },
            "StartRecovery",
        )

    monkeypatch.setattr(gateway, "start_recovery", tags_denied)
    plan = make_plan("Tagless", [("Web", ["web-01"], {})])
    execution = tick(tick(execution_start(plan=plan, mode="DRILL", requested_by=None)))
    assert execution.status == "FAILED" and "drs:TagResource" in launches(execution)["web-01"].error


# --- 4. quota -----------------------------------------------------------------------------------------


def test_outside_jobs_count_against_the_job_budget(clock, drive, make_plan, monkeypatch):
    monkeypatch.setattr(launching, "MAX_ACTIVE_JOBS_PER_TARGET", 2)
    plan = make_plan("Budget", [("Web", ["web-01"], {}), ("Busy", ["o-01", "o-02"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    sandbox_configure(busy=["o-01"], busy_seconds=60)
    sandbox_configure(busy=["o-02"], busy_seconds=60)
    execution = tick(execution)
    web = launches(execution)["web-01"]
    assert web.job_id is None and web.phase == "QUEUED"  # two outside jobs fill a budget of two
    assert not DrsJob.objects.filter(execution=execution).exists()  # not even asked: DRS would refuse
    execution = drive(execution)
    assert execution.status == "SUCCEEDED" and launch_counts()["web-01"] == 1


# --- 5. post-launch actions -----------------------------------------------------------------------

OPTIONAL_CHECK = [
    {
        "actionId": "3f1f8a4e-0000-4000-8000-000000000001",
        "actionCode": "AWS-RunShellScript",
        "type": "SSM_COMMAND",
        "name": "Smoke test",
        "active": True,
        "order": 2,
        "actionVersion": "$DEFAULT",
        "optional": True,
        "category": "VALIDATION",
        "description": "An optional check.",
    }
]


def test_a_failed_optional_post_launch_action_leaves_the_recovery_succeeded(clock, drive, make_plan):
    plan = make_plan(
        "Optional", [("App", ["app-01"], {})], server_options={"app-01": {"post_launch_actions": OPTIONAL_CHECK}}
    )
    sandbox_configure(fail_post_launch=["app-01"])
    execution = drive(execution_start(plan=plan, mode="RECOVERY", requested_by=None))
    assert execution.status == "SUCCEEDED"
    launch = launches(execution)["app-01"]
    assert launch.status == "LAUNCHED" and launch.post_launch_status == "SUCCEEDED"
    assert ExecutionEvent.objects.filter(execution=execution, message__contains="optional post-launch").exists()


def test_a_failed_mandatory_post_launch_action_fails_the_recovery_naming_it(clock, drive, make_plan):
    plan = make_plan("Mandatory", [("App", ["app-01"], {})], server_options={"app-01": {"post_launch_actions": True}})
    sandbox_configure(fail_post_launch=["app-01"])
    execution = drive(execution_start(plan=plan, mode="RECOVERY", requested_by=None))
    assert execution.status == "FAILED"
    launch = launches(execution)["app-01"]
    assert launch.post_launch_status == "FAILED"
    assert "'Start application service' (AWS-RunShellScript)" in launch.error
    assert "Application health check" not in launch.error  # the optional one does not fail it


def test_a_drill_records_failed_post_launch_actions_but_succeeds(clock, drive, make_plan):
    plan = make_plan(
        "Drill actions", [("App", ["app-01"], {})], server_options={"app-01": {"post_launch_actions": True}}
    )
    sandbox_configure(fail_post_launch=["app-01"])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    assert execution.status == "SUCCEEDED"  # the launch is what a drill needs
    for _ in range(30):  # its job is still followed to its end, post-launch actions included
        clock.shift(5)
        tick(execution)
    assert execution.status == "SUCCEEDED"
    assert launches(execution)["app-01"].post_launch_status == "FAILED"
    assert ExecutionEvent.objects.filter(
        execution=execution, kind=EventKind.ENGINE, message__contains="Start application service"
    ).exists()


def test_the_execution_page_shows_drs_post_launch_actions_beside_the_phase(clock, drive, make_plan, client, make_user):
    plan = make_plan("Both layers", [("App", ["app-01"], {})], server_options={"app-01": {"post_launch_actions": True}})
    sandbox_configure(fail_post_launch=["app-01"])
    execution = drive(execution_start(plan=plan, mode="RECOVERY", requested_by=None))
    client.force_login(make_user("viewer", role="Viewer"))
    body = client.get(execution.get_absolute_url()).content.decode()
    table = body[body.index('<table class="servers">'):]
    row = table[table.index("<tbody>"):].split("</tr>")[0]
    assert "app-01" in row and "DRS post-launch actions:" in row
    assert '<span class="badge tone-bad">Failed</span>' in row
