"""Errors the simulated DRS answers, as botocore raises them."""

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from drsorch.aws import client_for
from drsorch.sandbox.drs.common import MAX_ACTIVE_JOBS
from drsorch.sandbox.models import SandboxJob
from drsorch.sandbox.services import sandbox_configure, sandbox_servers_create, sandbox_set_region_initialized
from drsorch.sandbox.transport import attach
from tests.sandbox.conftest import start

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def many_servers(target, count):
    servers = sandbox_servers_create(
        account_id=target.account_id,
        region=target.region,
        specs=[{"hostname": f"bulk-{n:03d}"} for n in range(count)],
        snapshots=0,
    )
    return [{"sourceServerID": s.source_server_id} for s in servers]


def test_busy_server_is_a_conflict(drs_client, sandbox_servers, clock, launch_seconds):
    start(drs_client, sandbox_servers[:2], isDrill=True)
    with pytest.raises(drs_client.exceptions.ConflictException) as caught:
        start(drs_client, sandbox_servers[1:], isDrill=True)
    # DRS's own words, which never say which server is busy.
    assert caught.value.response["Error"]["Message"] == (
        "One or more of the Source Servers included in API call are currently being processed by a Job"
    )
    assert "resourceId" not in caught.value.response
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    clock.shift(120)
    start(drs_client, sandbox_servers[1:], isDrill=True)  # free again once the job completed


def test_more_than_100_servers_in_one_job_exceeds_the_quota(drs_client, sandbox_target):
    servers = many_servers(sandbox_target, 101)
    with pytest.raises(drs_client.exceptions.ServiceQuotaExceededException, match="at most 100"):
        drs_client.start_recovery(sourceServers=servers, isDrill=True)
    assert not SandboxJob.objects.exists()
    drs_client.start_recovery(sourceServers=servers[:100], isDrill=True)


def test_more_than_20_active_jobs_exceeds_the_quota(drs_client, sandbox_target, clock, launch_seconds):
    servers = many_servers(sandbox_target, MAX_ACTIVE_JOBS + 1)
    for server in servers[:MAX_ACTIVE_JOBS]:
        drs_client.start_recovery(sourceServers=[server], isDrill=True)
    with pytest.raises(drs_client.exceptions.ServiceQuotaExceededException, match="20 jobs"):
        drs_client.start_recovery(sourceServers=[servers[-1]], isDrill=True)
    clock.shift(120)
    drs_client.start_recovery(sourceServers=[servers[-1]], isDrill=True)


def test_more_than_500_servers_in_active_jobs_exceeds_the_quota(drs_client, sandbox_target, clock, launch_seconds):
    servers = many_servers(sandbox_target, 501)
    for first in range(0, 500, 100):
        drs_client.start_recovery(sourceServers=servers[first : first + 100], isDrill=True)
    with pytest.raises(drs_client.exceptions.ServiceQuotaExceededException, match="500"):
        drs_client.start_recovery(sourceServers=servers[500:], isDrill=True)


def test_unknown_server_is_not_found(drs_client, sandbox_servers):
    with pytest.raises(drs_client.exceptions.ResourceNotFoundException, match="s-00000000000000000"):
        drs_client.start_recovery(sourceServers=[{"sourceServerID": "s-00000000000000000"}])
    with pytest.raises(drs_client.exceptions.ResourceNotFoundException):
        drs_client.get_launch_configuration(sourceServerID="s-00000000000000000")
    with pytest.raises(drs_client.exceptions.ResourceNotFoundException):
        drs_client.describe_job_log_items(jobID="drsjob-00000000000000000")


def test_badly_formed_ids_are_invalid(drs_client, sandbox_servers):
    with pytest.raises(drs_client.exceptions.ValidationException, match="not a valid source server ID"):
        drs_client.start_recovery(sourceServers=[{"sourceServerID": "x-!!!!!!!!!!!!!!!!!"}])
    with pytest.raises(drs_client.exceptions.ValidationException):
        drs_client.describe_jobs(filters={"jobIDs": ["drsjob-?????????????????"]})
    with pytest.raises(drs_client.exceptions.ValidationException):
        drs_client.describe_jobs(filters={"fromDate": "yesterday, at about noon"})
    with pytest.raises(drs_client.exceptions.ValidationException):
        drs_client.describe_source_servers(nextToken="not-a-token")


def test_empty_and_duplicate_lists_are_invalid(sandbox_target, sandbox_servers):
    # botocore refuses an empty list before sending; a client without parameter validation
    # shows what the service itself answers.
    raw = attach(
        boto3.client(
            "drs",
            region_name="us-east-1",
            endpoint_url="https://drs.sandbox.invalid",
            aws_access_key_id="x",
            aws_secret_access_key="y",
            config=Config(parameter_validation=False, retries={"total_max_attempts": 1}),
        ),
        account_id=sandbox_target.account_id,
        region=sandbox_target.region,
    )
    with pytest.raises(raw.exceptions.ValidationException, match="at least one"):
        raw.start_recovery(sourceServers=[])
    with pytest.raises(raw.exceptions.ValidationException, match="at least 1"):
        raw.terminate_recovery_instances(recoveryInstanceIDs=[])
    twice = [{"sourceServerID": sandbox_servers[0].drs_id}] * 2
    with pytest.raises(raw.exceptions.ValidationException, match="twice"):
        raw.start_recovery(sourceServers=twice)


def test_uninitialized_region(sandbox_target, drs_client, sandbox_servers):
    sandbox_set_region_initialized(
        account_id=sandbox_target.account_id, region=sandbox_target.region, initialized=False
    )
    with pytest.raises(drs_client.exceptions.UninitializedAccountException):
        drs_client.describe_source_servers()
    with pytest.raises(drs_client.exceptions.UninitializedAccountException):
        start(drs_client, sandbox_servers)
    other_region = sandbox_target.__class__(kind="sandbox", name="other", account_id="123456789012", region="eu-west-1")
    assert client_for(other_region, "drs").describe_source_servers()["items"] == []
    sandbox_set_region_initialized(account_id=sandbox_target.account_id, region=sandbox_target.region, initialized=True)
    assert len(drs_client.describe_source_servers()["items"]) == 3


def test_unknown_operations_answer_an_error(drs_client, ec2_client, sandbox_servers):
    with pytest.raises(drs_client.exceptions.ValidationException, match="does not simulate") as caught:
        drs_client.describe_launch_configuration_templates()
    assert caught.value.response["reason"] == "unknownOperation"
    with pytest.raises(ClientError) as caught:
        ec2_client.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
    assert caught.value.response["Error"]["Code"] == "InvalidAction"


def test_ec2_unknown_and_malformed_instances(ec2_client, sandbox_servers):
    with pytest.raises(ClientError) as caught:
        ec2_client.describe_instances(InstanceIds=["i-0123456789abcdef0"])
    assert caught.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    with pytest.raises(ClientError) as caught:
        ec2_client.describe_instances(InstanceIds=["not-an-instance"])
    assert caught.value.response["Error"]["Code"] == "InvalidInstanceID.Malformed"


def test_sandbox_offers_only_drs_and_ec2(sandbox_target):
    with pytest.raises(ValueError, match="simulates only drs, ec2"):
        client_for(sandbox_target, "s3")


@pytest.mark.parametrize("rate", [0.3, 0.29, 1.0])
def test_throttling_hits_exactly_the_configured_share(drs_client, sandbox_servers, rate):
    sandbox_configure(throttle_rate=rate)
    throttled = 0
    for _ in range(100):
        try:
            drs_client.describe_source_servers()
        except drs_client.exceptions.ThrottlingException as error:
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 429
            throttled += 1
    assert throttled == round(100 * rate)


def test_throttling_is_spread_and_seen_by_ec2_too(drs_client, ec2_client, sandbox_servers):
    sandbox_configure(throttle_rate=0.5)
    outcomes = []
    drs_call, ec2_call = (drs_client, "describe_jobs"), (ec2_client, "describe_instances")
    for client, call in [ec2_call, drs_call, drs_call, ec2_call]:
        try:
            getattr(client, call)()
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
    assert outcomes == ["ok", "ThrottlingException", "ok", "RequestLimitExceeded"]
    sandbox_configure(throttle_rate=0)
    assert drs_client.describe_jobs()["items"] == []
