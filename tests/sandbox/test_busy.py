"""`sandbox configure --busy`: a DRS job drsorch did not start holds servers; StartRecovery on
any server of an active job answers DRS's ConflictException, which names no server."""

import pytest
from django.core.exceptions import ValidationError

from drsorch.sandbox.drs.common import BUSY_SERVER_MESSAGE, MAX_ACTIVE_JOBS
from drsorch.sandbox.services import sandbox_configure, sandbox_servers_create, sandbox_status
from tests.sandbox.conftest import job, start

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

DRS_CONFLICT = "One or more of the Source Servers included in API call are currently being processed by a Job"


def assert_drs_conflict(caught):
    response = caught.value.response
    assert response["Error"]["Message"] == DRS_CONFLICT
    assert "resourceId" not in response and "resourceType" not in response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_the_conflict_message_is_drs_own():
    assert BUSY_SERVER_MESSAGE == DRS_CONFLICT


def test_busy_servers_are_held_by_an_outside_drill(drs_client, sandbox_servers, clock, launch_seconds):
    db, app, web = sandbox_servers
    sandbox_configure(busy=["db-01", app.drs_id], busy_seconds=60)
    (outside,) = drs_client.describe_jobs()["items"]
    assert (outside["type"], outside["initiatedBy"], outside["status"]) == ("LAUNCH", "START_DRILL", "STARTED")
    assert outside["tags"] == {}  # drsorch did not start it: none of its tags
    assert [s["sourceServerID"] for s in outside["participatingServers"]] == [db.drs_id, app.drs_id]
    assert sandbox_status()["jobs"][0]["is_drill"] is True

    with pytest.raises(drs_client.exceptions.ConflictException) as caught:
        start(drs_client, [web, db], isDrill=True)
    assert_drs_conflict(caught)
    start(drs_client, [web], isDrill=True)  # a server it does not hold is free

    clock.shift(59)
    assert job(drs_client, outside["jobID"])["status"] == "STARTED"
    clock.shift(1)
    record = job(drs_client, outside["jobID"])
    assert record["status"] == "COMPLETED" and "endDateTime" in record
    assert {s["launchStatus"] for s in record["participatingServers"]} == {"LAUNCHED"}
    start(drs_client, [db, app], isDrill=True)  # free once the outside job ended


def test_busy_seconds_default_to_120(drs_client, sandbox_servers, clock):
    sandbox_configure(busy=["web-01"])
    (outside,) = drs_client.describe_jobs()["items"]
    clock.shift(119)
    assert job(drs_client, outside["jobID"])["status"] == "STARTED"
    clock.shift(1)
    assert job(drs_client, outside["jobID"])["status"] == "COMPLETED"


def test_a_drsorch_job_and_a_terminate_job_answer_the_same_conflict(drs_client, sandbox_servers, clock, launch_seconds):
    db = sandbox_servers[0]
    start(drs_client, [db], isDrill=True)
    with pytest.raises(drs_client.exceptions.ConflictException) as caught:
        start(drs_client, [db], isDrill=True)
    assert_drs_conflict(caught)
    clock.shift(60)
    instance_ids = [i["recoveryInstanceID"] for i in drs_client.describe_recovery_instances()["items"]]
    drs_client.terminate_recovery_instances(recoveryInstanceIDs=instance_ids)
    with pytest.raises(drs_client.exceptions.ConflictException) as caught:
        start(drs_client, [db], isDrill=True)
    assert_drs_conflict(caught)


def test_the_outside_job_counts_against_the_active_jobs_quota(drs_client, sandbox_target, clock, launch_seconds):
    servers = sandbox_servers_create(
        account_id=sandbox_target.account_id,
        region=sandbox_target.region,
        specs=[{"hostname": f"bulk-{n:03d}"} for n in range(MAX_ACTIVE_JOBS + 1)],
        snapshots=0,
    )
    sandbox_configure(busy=["bulk-000"], busy_seconds=600)
    for server in servers[1:MAX_ACTIVE_JOBS]:
        drs_client.start_recovery(sourceServers=[{"sourceServerID": server.source_server_id}], isDrill=True)
    with pytest.raises(drs_client.exceptions.ServiceQuotaExceededException, match="20 jobs"):
        drs_client.start_recovery(sourceServers=[{"sourceServerID": servers[-1].source_server_id}], isDrill=True)


def test_busy_names_must_be_known_and_free(drs_client, sandbox_servers, launch_seconds):
    with pytest.raises(ValidationError) as caught:
        sandbox_configure(busy=["db-01", "ghost-01"])
    assert "ghost-01" in caught.value.message_dict["busy"][0]
    start(drs_client, sandbox_servers[:1], isDrill=True)
    with pytest.raises(ValidationError) as caught:
        sandbox_configure(busy=["db-01"], latency_ms=5)
    assert "db-01" in caught.value.message_dict["busy"][0]
    assert DRS_CONFLICT in caught.value.message_dict["busy"][0]
    assert len(drs_client.describe_jobs()["items"]) == 1  # nothing was started, nothing changed
    assert {s["hostname"]: s["launch_count"] for s in sandbox_status()["servers"]}["db-01"] == 1
    from drsorch.sandbox.services import sandbox_config

    assert sandbox_config()["busy"] == [] and sandbox_config()["latency_ms"] == 0


def test_busy_seconds_out_of_range_is_invalid(sandbox_servers):
    for bad in (0, -1, 90000):
        with pytest.raises(ValidationError) as caught:
            sandbox_configure(busy=["db-01"], busy_seconds=bad)
        assert "busy_seconds" in caught.value.message_dict
