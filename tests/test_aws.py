"""drsorch.aws.client_for: AWS clients with assumed roles (moto, no network) and sandbox clients."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from moto import mock_aws
from moto.sts.models import sts_backends

from drsorch import aws
from drsorch.aws import client_for
from plans.models import Target

ROLE_ACCOUNT = "210987654321"
ROLE_ARN = f"arn:aws:iam::{ROLE_ACCOUNT}:role/drsorch"
START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_sessions(monkeypatch, tmp_path):
    # Keep the developer's own AWS profile out of the tests.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    aws.clear_session_cache()
    yield
    aws.clear_session_cache()


@pytest.fixture
def aws_target():
    return Target.objects.create(
        name="Production",
        kind="aws",
        account_id=ROLE_ACCOUNT,
        region="eu-west-1",
        role_arn=ROLE_ARN,
        external_id="drsorch-ext-1",
    )


def assumed_roles():
    return sts_backends[ROLE_ACCOUNT]["aws"].assumed_roles


def credentials_of(client):
    return client._request_signer._credentials


@mock_aws
def test_role_is_assumed_with_the_external_id(aws_target):
    client = client_for(aws_target, "drs")
    frozen = credentials_of(client).get_frozen_credentials()
    (role,) = assumed_roles()
    assert role.role_arn == ROLE_ARN
    assert role.external_id == "drsorch-ext-1"
    assert frozen.access_key == role.access_key_id
    assert frozen.token == role.session_token
    assert client.meta.region_name == "eu-west-1"


@mock_aws
def test_credentials_are_refreshed_before_they_expire(aws_target):
    with time_machine.travel(START, tick=False) as traveller:
        client = client_for(aws_target, "drs")
        first = credentials_of(client).get_frozen_credentials().access_key
        traveller.shift(timedelta(minutes=30))
        assert credentials_of(client).get_frozen_credentials().access_key == first
        assert len(assumed_roles()) == 1
        traveller.shift(timedelta(minutes=31))  # 61 minutes: the 1-hour credentials have expired
        second = credentials_of(client).get_frozen_credentials().access_key
    assert second != first
    assert len(assumed_roles()) == 2
    assert assumed_roles()[-1].access_key_id == second


@mock_aws
def test_the_assumed_role_session_is_cached_per_target_and_role(aws_target):
    first = client_for(aws_target, "drs")
    second = client_for(aws_target, "ec2")
    assert credentials_of(first) is credentials_of(second)
    credentials_of(first).get_frozen_credentials()
    credentials_of(second).get_frozen_credentials()
    assert len(assumed_roles()) == 1


@mock_aws
def test_without_a_role_the_normal_credential_chain_is_used(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIACHAINEXAMPLE0000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "chain-secret")
    target = Target.objects.create(name="Direct", kind="aws", account_id="111122223333", region="us-west-2")
    client = client_for(target, "drs")
    assert credentials_of(client).get_frozen_credentials().access_key == "AKIACHAINEXAMPLE0000"
    assert assumed_roles() == []


def test_aws_clients_retry_adaptively_with_timeouts(aws_target):
    config = client_for(aws_target, "drs").meta.config
    # retries={"max_attempts": 5} means five retries: botocore stores it as six attempts in all.
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 6}
    assert (config.connect_timeout, config.read_timeout) == (5, 30)


def test_sandbox_clients_make_a_single_attempt_against_an_unreachable_endpoint():
    target = Target.objects.create(name="Sandbox", kind="sandbox", account_id="123456789012", region="us-east-1")
    client = client_for(target, "drs")
    assert client.meta.config.retries["total_max_attempts"] == 1
    assert client.meta.endpoint_url == "https://drs.sandbox.invalid"
    assert client.meta.region_name == "us-east-1"
    assert client_for(target, "ec2").meta.endpoint_url == "https://ec2.sandbox.invalid"
    with pytest.raises(ValueError, match="sandbox"):
        client_for(target, "sts")


@pytest.mark.django_db(databases=["default", "sandbox"])
def test_every_call_is_counted_per_service_and_page(sandbox_target):
    from drsorch.sandbox.services import sandbox_servers_create

    sandbox_servers_create(
        account_id=sandbox_target.account_id,
        region=sandbox_target.region,
        specs=[{"hostname": f"app-{n:02}"} for n in range(5)],
        snapshots=0,
    )
    drs_before, ec2_before = aws.aws_calls_made("drs"), aws.aws_calls_made("ec2")
    pages = (
        client_for(sandbox_target, "drs")
        .get_paginator("describe_source_servers")
        .paginate(filters={}, PaginationConfig={"PageSize": 2})
    )
    assert sum(len(page["items"]) for page in pages) == 5
    client_for(sandbox_target, "ec2").describe_instances()
    assert aws.aws_calls_made("drs") - drs_before == 3  # three pages of two
    assert aws.aws_calls_made("ec2") - ec2_before == 1
