"""Fixtures of the sandbox tests."""

from datetime import UTC, datetime

import pytest
import time_machine

from drsorch.aws import client_for
from drsorch.sandbox.services import sandbox_configure

START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock():
    """Stop the clock at START for every sandbox test, before any other fixture creates
    simulated servers (whose snapshots would otherwise lie in the future); move it with
    clock.shift(seconds)."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def ec2_client(sandbox_target):
    """A boto3 EC2 client of the sandbox target."""
    return client_for(sandbox_target, "ec2")


@pytest.fixture
def launch_seconds():
    """Launches take 20 s (±30% per server), whatever the environment says."""
    sandbox_configure(launch_seconds=20)
    return 20


def start(drs_client, servers, **kwargs):
    """StartRecovery of inventory servers; returns the job."""
    return drs_client.start_recovery(sourceServers=[{"sourceServerID": s.drs_id} for s in servers], **kwargs)["job"]


def job(drs_client, job_id):
    """The job as DescribeJobs shows it now."""
    return drs_client.describe_jobs(filters={"jobIDs": [job_id]})["items"][0]
