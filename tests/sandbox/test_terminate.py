"""Terminating recovery instances (drill clean-up) in the simulated DRS."""

import pytest

from tests.sandbox.conftest import job, start

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


@pytest.fixture
def launched(drs_client, sandbox_servers, clock, launch_seconds):
    start(drs_client, sandbox_servers, isDrill=True)
    clock.shift(60)
    return [i["recoveryInstanceID"] for i in drs_client.describe_recovery_instances()["items"]]


def states(drs_client):
    return {i["recoveryInstanceID"]: i["ec2InstanceState"] for i in drs_client.describe_recovery_instances()["items"]}


def test_terminate_answers_a_terminate_job_and_instances_end_terminated(drs_client, ec2_client, launched, clock):
    terminate = drs_client.terminate_recovery_instances(recoveryInstanceIDs=launched)["job"]
    assert terminate["type"] == "TERMINATE"
    assert terminate["initiatedBy"] == "TERMINATE_RECOVERY_INSTANCES"
    assert terminate["status"] == "PENDING"
    assert sorted(s["recoveryInstanceID"] for s in terminate["participatingServers"]) == sorted(launched)

    clock.shift(2)
    assert set(states(drs_client).values()) == {"SHUTTING-DOWN"}
    assert job(drs_client, terminate["jobID"])["status"] == "STARTED"

    clock.shift(60)
    assert set(states(drs_client).values()) == {"TERMINATED"}
    record = job(drs_client, terminate["jobID"])
    assert record["status"] == "COMPLETED"
    assert {s["launchStatus"] for s in record["participatingServers"]} == {"TERMINATED"}
    events = [i["event"] for i in drs_client.describe_job_log_items(jobID=terminate["jobID"])["items"]]
    assert events[0] == "JOB_START" and events[-1] == "JOB_END" and events.count("CLEANUP_END") == 3

    reservations = ec2_client.describe_instances(InstanceIds=launched)["Reservations"]
    assert {r["Instances"][0]["State"]["Name"] for r in reservations} == {"terminated"}
    assert ec2_client.describe_instance_status(InstanceIds=launched)["InstanceStatuses"] == []
    assert "recoveryInstanceId" not in drs_client.describe_source_servers()["items"][0]


def test_terminating_twice_is_a_conflict(drs_client, launched, clock):
    drs_client.terminate_recovery_instances(recoveryInstanceIDs=launched[:1])
    clock.shift(60)
    with pytest.raises(drs_client.exceptions.ConflictException, match="already terminated"):
        drs_client.terminate_recovery_instances(recoveryInstanceIDs=launched[:1])


def test_unknown_instances_are_invalid(drs_client, launched):
    with pytest.raises(drs_client.exceptions.ValidationException, match="i-0000000000000000f"):
        drs_client.terminate_recovery_instances(recoveryInstanceIDs=[launched[0], "i-0000000000000000f"])


def test_a_server_being_terminated_is_busy(drs_client, launched, sandbox_servers):
    drs_client.terminate_recovery_instances(recoveryInstanceIDs=launched)
    with pytest.raises(drs_client.exceptions.ConflictException):
        start(drs_client, sandbox_servers[:1], isDrill=True)
