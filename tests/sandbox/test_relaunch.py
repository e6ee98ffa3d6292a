"""Post-launch actions that fail (--fail-post-launch), and DRS replacing a server's recovery
instance when the server is launched again (CLEANUP_START/CLEANUP_END)."""

import pytest
from botocore.exceptions import ClientError
from django.utils import timezone

from drsorch.sandbox.services import sandbox_configure, sandbox_server_update, sandbox_status
from tests.sandbox.conftest import job, start

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

OPTIONAL_CHECK = {
    "actionId": "0b5d2b4e-4d1c-4b8e-9a55-5f0c2b1d7e11",
    "actionCode": "AWS-RunShellScript",
    "type": "SSM_COMMAND",
    "name": "Optional smoke test",
    "active": True,
    "order": 2,
    "actionVersion": "$DEFAULT",
    "optional": True,
    "category": "VALIDATION",
}


def runs(record, server):
    (item,) = [s for s in record["participatingServers"] if s["sourceServerID"] == server.drs_id]
    return item.get("launchActionsStatus", {}).get("runs", [])


def test_failing_post_launch_actions_end_failed_and_the_job_waits_for_them(
    drs_client, sandbox_servers, clock, launch_seconds
):
    app = sandbox_servers[1]
    sandbox_configure(fail_post_launch=["app-01"])
    started = start(drs_client, [app], isDrill=True)
    from drsorch.sandbox.models import SandboxJob, SandboxJobServer

    app_row = SandboxJobServer.objects.get(job__job_id=started["jobID"], source_server__source_server_id=app.drs_id)
    clock.move_to(app_row.launch_end)  # launched; its actions run until actions_end
    record = job(drs_client, started["jobID"])
    assert {r["status"] for r in runs(record, app)} == {"IN_PROGRESS"}
    assert record["status"] == "STARTED"
    clock.move_to(app_row.actions_end)
    record = job(drs_client, started["jobID"])
    assert record["status"] == "COMPLETED"
    app_runs = runs(record, app)
    assert len(app_runs) == 2 and {r["status"] for r in app_runs} == {"FAILED"}
    assert all("failureReason" in r and r["failureReason"] for r in app_runs)
    assert {r["action"]["optional"] for r in app_runs} == {True, False}  # DRS's flag is carried
    launched = [s["launchStatus"] for s in record["participatingServers"]]
    assert launched == ["LAUNCHED"]  # the launch itself succeeded
    # The job ended when the failed runs did, not before.
    assert SandboxJob.objects.get(job_id=started["jobID"]).ends_at == app_row.actions_end


def test_a_server_with_only_optional_actions_can_fail_them(drs_client, sandbox_servers, clock, launch_seconds):
    web = sandbox_servers[2]
    sandbox_server_update(source_server_id=web.drs_id, post_launch_actions=[OPTIONAL_CHECK])
    sandbox_configure(fail_post_launch=[web.drs_id])
    started = start(drs_client, [web], isDrill=True)
    clock.shift(120)
    (run,) = runs(job(drs_client, started["jobID"]), web)
    assert run["status"] == "FAILED" and run["action"]["optional"] is True and run["failureReason"]


def test_actions_succeed_unless_configured_to_fail(drs_client, sandbox_servers, clock, launch_seconds):
    app = sandbox_servers[1]
    started = start(drs_client, [app], isDrill=True)
    clock.shift(120)
    assert {r["status"] for r in runs(job(drs_client, started["jobID"]), app)} == {"SUCCEEDED"}


def test_relaunch_replaces_the_earlier_instance(drs_client, ec2_client, sandbox_servers, clock, launch_seconds):
    db, _, web = sandbox_servers
    first = start(drs_client, [db, web], isDrill=True)
    clock.shift(60)
    old = {i["sourceServerID"]: i["recoveryInstanceID"] for i in drs_client.describe_recovery_instances()["items"]}
    second = start(drs_client, [db], isDrill=True)
    assert first["jobID"] != second["jobID"]
    clock.shift(1)
    assert old[db.drs_id] in [i["recoveryInstanceID"] for i in drs_client.describe_recovery_instances()["items"]]
    clock.shift(60)
    assert job(drs_client, second["jobID"])["status"] == "COMPLETED"

    instances = drs_client.describe_recovery_instances()["items"]
    by_server = {}
    for instance in instances:
        by_server.setdefault(instance["sourceServerID"], []).append(instance)
    (new,) = by_server[db.drs_id]  # DRS keeps one recovery instance per source server
    assert new["recoveryInstanceID"] != old[db.drs_id] and new["jobID"] == second["jobID"]
    assert [i["recoveryInstanceID"] for i in by_server[web.drs_id]] == [old[web.drs_id]]  # not launched again
    (reservation,) = ec2_client.describe_instances(InstanceIds=[old[db.drs_id]])["Reservations"]
    assert reservation["Instances"][0]["State"]["Name"] == "terminated"

    items = drs_client.describe_job_log_items(jobID=second["jobID"])["items"]
    names = [i["event"] for i in items]
    assert (
        names.index("CONVERSION_END")
        < names.index("CLEANUP_START")
        < names.index("CLEANUP_END")
        < names.index("LAUNCH_START")
    )
    cleanup = [i for i in items if i["event"].startswith("CLEANUP")]
    assert [i["eventData"] for i in cleanup] == [{"sourceServerID": db.drs_id, "targetInstanceID": old[db.drs_id]}] * 2
    launch_start = next(i for i in items if i["event"] == "LAUNCH_START")
    assert launch_start["eventData"]["targetInstanceID"] == new["recoveryInstanceID"]
    first_log = [i["event"] for i in drs_client.describe_job_log_items(jobID=first["jobID"])["items"]]
    assert "CLEANUP_START" not in first_log  # a first launch replaces nothing

    # The replaced instance is gone from DRS: terminating it is answered as for any unknown ID.
    with pytest.raises(drs_client.exceptions.ValidationException, match=old[db.drs_id]):
        drs_client.terminate_recovery_instances(recoveryInstanceIDs=[old[db.drs_id]])
    servers = {s["sourceServerID"]: s for s in drs_client.describe_source_servers()["items"]}
    assert servers[db.drs_id]["recoveryInstanceId"] == new["recoveryInstanceID"]
    assert {s["hostname"]: s["launch_count"] for s in sandbox_status()["servers"]}["db-01"] == 2


def test_the_old_instance_terminates_at_the_new_launch_start(
    drs_client, ec2_client, sandbox_servers, clock, launch_seconds
):
    db = sandbox_servers[0]
    start(drs_client, [db], isDrill=True)
    clock.shift(60)
    (old,) = drs_client.describe_recovery_instances()["items"]
    second = start(drs_client, [db], isDrill=True)
    from drsorch.sandbox.models import SandboxJobServer

    steps = SandboxJobServer.objects.get(job__job_id=second["jobID"])
    clock.move_to(steps.launch_start - (steps.launch_start - steps.conversion_end) / 4)
    (listed,) = drs_client.describe_recovery_instances()["items"]  # being cleaned up, still in DRS
    assert listed["recoveryInstanceID"] == old["recoveryInstanceID"] and listed["ec2InstanceState"] == "SHUTTING-DOWN"
    with pytest.raises(drs_client.exceptions.ConflictException):
        drs_client.terminate_recovery_instances(recoveryInstanceIDs=[old["recoveryInstanceID"]])
    clock.move_to(steps.launch_start)
    assert timezone.now() == steps.launch_start
    assert drs_client.describe_recovery_instances()["items"] == []  # gone; the new one is not up yet
    state = ec2_client.describe_instances(InstanceIds=[old["recoveryInstanceID"]])["Reservations"][0]
    assert state["Instances"][0]["State"]["Name"] == "terminated"


def test_a_terminated_instance_is_not_cleaned_up_again(drs_client, sandbox_servers, clock, launch_seconds):
    db = sandbox_servers[0]
    start(drs_client, [db], isDrill=True)
    clock.shift(60)
    (old,) = drs_client.describe_recovery_instances()["items"]
    drs_client.terminate_recovery_instances(recoveryInstanceIDs=[old["recoveryInstanceID"]])
    clock.shift(60)
    second = start(drs_client, [db], isDrill=True)
    clock.shift(60)
    events = [i["event"] for i in drs_client.describe_job_log_items(jobID=second["jobID"])["items"]]
    assert "CLEANUP_START" not in events
    with pytest.raises(ClientError):  # terminated by the clean-up: answered as today
        drs_client.terminate_recovery_instances(recoveryInstanceIDs=[old["recoveryInstanceID"]])


def test_start_recovery_queries_do_not_grow_with_replaced_instances(
    drs_client, make_sandbox_servers, clock, launch_seconds
):
    few = make_sandbox_servers("a-01")
    many = make_sandbox_servers(*[f"b-{n:02d}" for n in range(30)])
    start(drs_client, few, isDrill=True)
    start(drs_client, many, isDrill=True)
    clock.shift(60)
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connections["sandbox"]) as one:
        start(drs_client, few, isDrill=True)
    with CaptureQueriesContext(connections["sandbox"]) as thirty:
        start(drs_client, many, isDrill=True)
    assert len(thirty) == len(one)
    assert len(drs_client.describe_recovery_instances()["items"]) == 31  # the replaced ones are gone
