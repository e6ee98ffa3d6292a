"""A drill through the simulated DRS, as the engine sees it through boto3."""

import pytest

from drsorch.sandbox.services import sandbox_configure, sandbox_status
from tests.sandbox.conftest import START, job, start

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def statuses(record):
    return [s["launchStatus"] for s in record["participatingServers"]]


def test_drill_of_three_servers_goes_pending_started_completed(drs_client, sandbox_servers, clock, launch_seconds):
    started = start(drs_client, sandbox_servers, isDrill=True, tags={"drsorch:launch-token": "abc"})

    assert started["jobID"].startswith("drsjob-") and len(started["jobID"]) == 24
    assert started["status"] == "PENDING"
    assert started["type"] == "LAUNCH" and started["initiatedBy"] == "START_DRILL"
    assert statuses(started) == ["PENDING"] * 3

    clock.shift(5)
    record = job(drs_client, started["jobID"])
    assert record["status"] == "STARTED"
    assert statuses(record) == ["PENDING"] * 3  # snapshot and conversion still run

    clock.shift(72)
    record = job(drs_client, started["jobID"])
    assert record["status"] == "COMPLETED"
    assert statuses(record) == ["LAUNCHED"] * 3
    assert record["tags"] == {"drsorch:launch-token": "abc"}
    assert "endDateTime" in record
    instance_ids = [s["recoveryInstanceID"] for s in record["participatingServers"]]
    assert all(i.startswith("i-") and len(i) == 19 for i in instance_ids)


def test_launch_status_passes_through_in_progress(drs_client, sandbox_servers, clock, launch_seconds):
    started = start(drs_client, sandbox_servers[:1], isDrill=True)
    seen = []
    for _ in range(60):
        clock.shift(0.5)
        seen.append(statuses(job(drs_client, started["jobID"]))[0])
    ordered = list(dict.fromkeys(seen))
    assert ordered == ["PENDING", "IN_PROGRESS", "LAUNCHED"]


def test_drill_log_is_in_real_order(drs_client, sandbox_servers, clock, launch_seconds):
    started = start(drs_client, sandbox_servers, isDrill=True)
    clock.shift(120)
    items = drs_client.describe_job_log_items(jobID=started["jobID"])["items"]
    events = [i["event"] for i in items]
    assert events[0] == "JOB_START" and events[-1] == "JOB_END"
    times = [i["logDateTime"] for i in items]
    assert times == sorted(times)
    for server in sandbox_servers:
        mine = [i["event"] for i in items if i.get("eventData", {}).get("sourceServerID") == server.drs_id]
        assert mine == ["SNAPSHOT_START", "SNAPSHOT_END", "CONVERSION_START", "CONVERSION_END", "LAUNCH_START"]


def test_log_grows_with_time(drs_client, sandbox_servers, clock, launch_seconds):
    started = start(drs_client, sandbox_servers[:1], isDrill=True)
    assert drs_client.describe_job_log_items(jobID=started["jobID"])["items"] == []
    # JOB_START comes at 5% of 20 s (1.0 s); the earliest snapshot at 10% of 20 s - 30% (1.4 s).
    clock.shift(1.2)
    assert [i["event"] for i in drs_client.describe_job_log_items(jobID=started["jobID"])["items"]] == ["JOB_START"]


def test_recovery_marks_initiated_by_start_recovery(drs_client, sandbox_servers, clock, launch_seconds):
    started = start(drs_client, sandbox_servers[:1], isDrill=False)
    assert started["initiatedBy"] == "START_RECOVERY"
    clock.shift(60)
    instance = drs_client.describe_recovery_instances()["items"][0]
    assert instance["isDrill"] is False


def test_post_launch_actions_run_after_launch(drs_client, sandbox_servers, clock, launch_seconds):
    db, app, web = sandbox_servers
    started = start(drs_client, [app], isDrill=True)
    runs = []
    for _ in range(80):
        clock.shift(0.5)
        server = job(drs_client, started["jobID"])["participatingServers"][0]
        if server["launchStatus"] == "LAUNCHED":
            runs.append(tuple(r["status"] for r in server["launchActionsStatus"]["runs"]))
    assert runs[0] == ("IN_PROGRESS", "IN_PROGRESS")
    assert runs[-1] == ("SUCCEEDED", "SUCCEEDED")
    # The job ends only once the actions have run.
    assert job(drs_client, started["jobID"])["status"] == "COMPLETED"


def test_servers_without_actions_report_no_runs(drs_client, sandbox_servers, clock, launch_seconds):
    started = start(drs_client, sandbox_servers[:1], isDrill=True)
    clock.shift(60)
    assert "launchActionsStatus" not in job(drs_client, started["jobID"])["participatingServers"][0]


def test_failing_launch_is_failed_with_an_error_in_the_log(drs_client, sandbox_servers, clock, launch_seconds):
    db, app, web = sandbox_servers
    sandbox_configure(fail_launch=["web-01", app.drs_id])
    started = start(drs_client, sandbox_servers, isDrill=True)
    clock.shift(60)
    record = job(drs_client, started["jobID"])
    assert record["status"] == "COMPLETED"  # a job completes even when servers in it failed
    assert statuses(record) == ["LAUNCHED", "FAILED", "FAILED"]
    assert "recoveryInstanceID" not in record["participatingServers"][1]
    items = drs_client.describe_job_log_items(jobID=started["jobID"])["items"]
    failures = [i for i in items if i["event"] == "LAUNCH_FAILED"]
    assert {f["eventData"]["sourceServerID"] for f in failures} == {app.drs_id, web.drs_id}
    assert all("fail" in f["eventData"]["rawError"] for f in failures)
    last = {s["sourceServerID"]: s["lastLaunchResult"] for s in drs_client.describe_source_servers()["items"]}
    assert last == {db.drs_id: "SUCCEEDED", app.drs_id: "FAILED", web.drs_id: "FAILED"}


def test_launch_creates_recovery_instances_seen_by_drs_and_ec2(
    drs_client, ec2_client, sandbox_servers, clock, launch_seconds
):
    started = start(drs_client, sandbox_servers, isDrill=True)
    assert drs_client.describe_recovery_instances()["items"] == []
    clock.shift(60)
    instances = drs_client.describe_recovery_instances()["items"]
    assert {i["sourceServerID"] for i in instances} == {s.drs_id for s in sandbox_servers}
    assert {i["ec2InstanceState"] for i in instances} == {"RUNNING"}
    assert {i["jobID"] for i in instances} == {started["jobID"]}
    ids = sorted(i["recoveryInstanceID"] for i in instances)

    reservations = ec2_client.describe_instances(InstanceIds=ids)["Reservations"]
    described = sorted(r["Instances"][0]["InstanceId"] for r in reservations)
    assert described == ids
    assert {r["Instances"][0]["State"]["Name"] for r in reservations} == {"running"}
    statuses_ = ec2_client.describe_instance_status(InstanceIds=ids)["InstanceStatuses"]
    assert {s["InstanceStatus"]["Status"] for s in statuses_} == {"ok"}

    servers = {s["sourceServerID"]: s for s in drs_client.describe_source_servers()["items"]}
    for instance in instances:
        server = servers[instance["sourceServerID"]]
        assert server["recoveryInstanceId"] == instance["recoveryInstanceID"]
        assert server["lifeCycle"]["lastLaunch"]["initiated"]["jobID"] == started["jobID"]
        assert server["lifeCycle"]["lastLaunch"]["initiated"]["type"] == "DRILL"


def test_status_counts_every_launch(drs_client, sandbox_servers, clock, launch_seconds):
    first = start(drs_client, sandbox_servers[:1], isDrill=True)
    clock.shift(60)
    second = start(drs_client, sandbox_servers[:1], isDrill=True)
    clock.shift(60)
    status = sandbox_status()
    server = next(s for s in status["servers"] if s["source_server_id"] == sandbox_servers[0].drs_id)
    assert server["launch_count"] == 2
    assert len(server["recovery_instance_ids"]) == 2
    assert [j["job_id"] for j in status["jobs"]] == [first["jobID"], second["jobID"]]
    assert status["jobs"][0]["created_at"] == START.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_launch_duration_follows_the_configuration(drs_client, sandbox_servers, clock):
    sandbox_configure(launch_seconds=200)
    started = start(drs_client, sandbox_servers, isDrill=True)
    clock.shift(100)
    assert job(drs_client, started["jobID"])["status"] == "STARTED"
    clock.shift(300)
    assert job(drs_client, started["jobID"])["status"] == "COMPLETED"


def test_zero_launch_seconds_completes_at_once(drs_client, sandbox_servers, clock):
    sandbox_configure(launch_seconds=0)
    started = start(drs_client, sandbox_servers, isDrill=True)
    assert job(drs_client, started["jobID"])["status"] == "COMPLETED"
