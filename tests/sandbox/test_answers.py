"""Switches that change how DRS answers: --omit-instance-ids, --no-job-tags, --deny, --latency-ms."""

import pytest
from django.core.exceptions import ValidationError

from drsorch.sandbox import transport
from drsorch.sandbox.services import sandbox_config, sandbox_configure
from tests.sandbox.conftest import job, start

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def test_omit_instance_ids_leaves_them_out_of_jobs_only(drs_client, sandbox_servers, clock, launch_seconds):
    sandbox_configure(omit_instance_ids=True)
    started = start(drs_client, sandbox_servers[:2], isDrill=True)
    clock.shift(60)
    record = job(drs_client, started["jobID"])
    assert [s["launchStatus"] for s in record["participatingServers"]] == ["LAUNCHED", "LAUNCHED"]
    assert all("recoveryInstanceID" not in s for s in record["participatingServers"])
    launch_starts = [
        i for i in drs_client.describe_job_log_items(jobID=started["jobID"])["items"] if i["event"] == "LAUNCH_START"
    ]
    from_log = {i["eventData"]["sourceServerID"]: i["eventData"]["targetInstanceID"] for i in launch_starts}
    instances = drs_client.describe_recovery_instances()["items"]
    assert {i["sourceServerID"]: i["recoveryInstanceID"] for i in instances} == from_log
    assert {i["jobID"] for i in instances} == {started["jobID"]}
    sandbox_configure(omit_instance_ids=False)
    record = job(drs_client, started["jobID"])
    assert {s["sourceServerID"]: s["recoveryInstanceID"] for s in record["participatingServers"]} == from_log


def test_no_job_tags_leaves_tags_out_of_describe_jobs(drs_client, sandbox_servers, clock, launch_seconds):
    sandbox_configure(no_job_tags=True)
    started = start(drs_client, sandbox_servers[:1], isDrill=True, tags={"drsorch:launch-token": "t-1"})
    assert all("tags" not in item for item in drs_client.describe_jobs()["items"])
    assert "tags" not in job(drs_client, started["jobID"])
    # The tags are on the job all the same: ListTagsForResource reads them.
    assert drs_client.list_tags_for_resource(resourceArn=started["arn"])["tags"] == {"drsorch:launch-token": "t-1"}
    sandbox_configure(clear=True)
    assert job(drs_client, started["jobID"])["tags"] == {"drsorch:launch-token": "t-1"}


def test_denied_operations_answer_access_denied_as_aws_words_it(drs_client, sandbox_servers):
    db = sandbox_servers[0]
    sandbox_configure(deny=["StartRecovery", "ListTagsForResource", "GetLaunchConfiguration"])
    with pytest.raises(drs_client.exceptions.AccessDeniedException) as caught:
        start(drs_client, [db], isDrill=True)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert caught.value.response["Error"]["Message"] == (
        "User: arn:aws:sts::123456789012:assumed-role/drsorch/drsorch is not authorized to perform: "
        "drs:StartRecovery on resource: *"
    )
    arn = drs_client.describe_source_servers()["items"][0]["arn"]
    with pytest.raises(drs_client.exceptions.AccessDeniedException, match=f"ListTagsForResource on resource: {arn}$"):
        drs_client.list_tags_for_resource(resourceArn=arn)
    with pytest.raises(
        drs_client.exceptions.AccessDeniedException,
        match=f"GetLaunchConfiguration on resource: arn:aws:drs:us-east-1:123456789012:source-server/{db.drs_id}$",
    ):
        drs_client.get_launch_configuration(sourceServerID=db.drs_id)
    assert drs_client.describe_jobs()["items"] == []  # nothing was started; other operations answer
    sandbox_configure(deny=[])
    start(drs_client, [db], isDrill=True)


def test_deny_takes_only_drs_operation_names(sandbox_servers):
    with pytest.raises(ValidationError) as caught:
        sandbox_configure(deny=["StartRecovery", "start_recovery", "RunInstances"])
    message = caught.value.message_dict["deny"][0]
    assert "start_recovery" in message and "RunInstances" in message and "StartRecovery," not in message
    # Every operation of botocore's model is accepted, not only those the sandbox simulates.
    sandbox_configure(deny=["CreateRecoveryPlan", "DescribeJobs"])
    assert sandbox_config()["deny"] == ["CreateRecoveryPlan", "DescribeJobs"]


@pytest.fixture
def slept(monkeypatch):
    """The sleeps the transport takes (really taken: the latency is real)."""
    seen = []
    real_sleep = transport.time.sleep

    def sleep(seconds):
        seen.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(transport.time, "sleep", sleep)
    return seen


def test_latency_applies_to_every_drs_and_ec2_call(drs_client, ec2_client, sandbox_servers, slept):
    drs_client.describe_jobs()
    assert slept == []  # off by default: no sleep at all
    sandbox_configure(latency_ms=3)
    drs_client.describe_jobs()
    ec2_client.describe_instances()
    sandbox_configure(throttle_rate=1)
    with pytest.raises(drs_client.exceptions.ThrottlingException):
        drs_client.describe_source_servers()  # an error answer takes as long
    assert slept == [0.003, 0.003, 0.003]


@pytest.mark.parametrize("bad", [-1, 60001, 1.5, True])
def test_latency_out_of_range_is_invalid(bad):
    with pytest.raises(ValidationError) as caught:
        sandbox_configure(latency_ms=bad)
    assert "latency_ms" in caught.value.message_dict
