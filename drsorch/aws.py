"""The one place drsorch makes AWS clients: `client_for(target, service_name)`.

Every caller gets a real boto3 client. For an `aws` target it talks to AWS; for a `sandbox`
target its requests are answered in-process by the simulated DRS (drsorch.sandbox), so the
code that drives DRS is the same in both cases, down to botocore's parsing and exceptions.
"""

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import boto3
import botocore.session
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import DeferredRefreshableCredentials

from drsorch import metrics
from drsorch.drs.errors import THROTTLING_CODES
from drsorch.sandbox.transport import SUPPORTED_SERVICES, attach

logger = logging.getLogger(__name__)


class AwsTarget(Protocol):
    """What a client needs to know of a target (plans.Target has it; the core imports no app)."""

    pk: int
    name: str
    kind: str
    account_id: str
    region: str
    role_arn: str
    external_id: str

AWS_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,
)
SINGLE_ATTEMPT_CONFIG = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
# One attempt only: the engine must see every ThrottlingException the sandbox answers, to
# prove that it handles throttling itself; botocore's retries would hide them.
SANDBOX_CONFIG = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
SANDBOX_ENDPOINT = "https://{service}.sandbox.invalid"
SANDBOX_CREDENTIALS = {"aws_access_key_id": "SANDBOXACCESSKEY0000", "aws_secret_access_key": "sandbox-secret"}
ASSUMED_ROLE_SECONDS = 3600

_sessions = {}
# Calls made per thread and service, counted by a botocore event hook on every client (one
# per operation call and per page of a paginator; botocore's own retries are not counted).
_calls = threading.local()
# Pool threads add their calls to their caller's counts (counting_into): one lock for every
# increment, so two threads counting into one dict never lose a call.
_counts_lock = threading.Lock()
_sessions_lock = threading.Lock()
# Building a boto3 client loads and parses the service model (~0.3 s); clients are
# thread-safe once made, so each (target settings, service) gets one for the process.
_clients = {}
_sandbox_boto3_session = None


def client_for(target: AwsTarget, service_name: str, *, single_attempt: bool = False) -> BaseClient:
    """A boto3 client of `service_name` for `target` (a plans.Target).

    `aws` targets: boto3's normal credential chain, or, when the target has a role ARN, the
    role assumed with STS (with the external ID when set) through refreshable credentials
    renewed before they expire; adaptive retries (5 attempts), connect timeout 5 s, read
    timeout 30 s.

    `sandbox` targets: a real boto3 client for the target's region with dummy credentials
    and the endpoint https://<service>.sandbox.invalid, whose requests never reach the
    network: a `before-send` handler answers them from the simulated DRS. It makes a single
    attempt per call (`retries={"total_max_attempts": 1}`), so every ThrottlingException
    reaches the caller. Only "drs", "ec2", "sns" (Publish) and "ssm" (automations, commands,
    managed instances) are simulated; other services raise ValueError.

    `single_attempt` turns botocore's retries off for calls that must never be repeated
    blindly (StartRecovery has no client token: a retry after a lost answer launches twice).
    """
    key = (target.pk, target.kind, target.account_id, target.region, target.role_arn, target.external_id,
           service_name, single_attempt)
    client = _clients.get(key)
    if client is not None:
        return client
    # boto3 sessions are not thread-safe; clients are, once made. Clients are made under the
    # lock, so threads asking for the same one at once (DRS calls for several targets run in
    # a pool) share one session use and one client.
    with _sessions_lock:
        client = _clients.get(key)
        if client is not None:
            return client
        if target.kind == "sandbox":
            client = _sandbox_client(target, service_name)
        else:
            config = SINGLE_ATTEMPT_CONFIG if single_attempt else AWS_CONFIG
            client = _aws_session(target).client(service_name, region_name=target.region, config=config)
        # The paginators' model is loaded on a client's first get_paginator, and botocore's
        # cache of loaded files has no lock: ten pool threads paginating new clients at once
        # (a worker's first tick) would each scan botocore's data folders (~0.1 s of CPU, under
        # the GIL). Loaded here, under the lock, it is read once per process.
        client.can_paginate(next(iter(client.meta.method_to_api_mapping)))  # any operation loads them all
        client.meta.events.register(f"before-call.{client.meta.service_model.endpoint_prefix}", _count_call)
        client.meta.events.register(f"after-call.{client.meta.service_model.endpoint_prefix}", _record_outcome)
        client.meta.events.register(f"after-call-error.{client.meta.service_model.endpoint_prefix}", _record_failure)
        _clients[key] = client
    return client


def _count_call(model, **_):
    service = model.service_model.endpoint_prefix
    counts = call_counts()
    with _counts_lock:
        counts[service] = counts.get(service, 0) + 1


def call_counts() -> dict[str, int]:
    """This thread's call counts by service (the dict itself, to hand to counting_into)."""
    counts = getattr(_calls, "counts", None)
    if counts is None:
        counts = _calls.counts = {}
    return counts


@contextmanager
def counting_into(counts: dict[str, int]) -> Iterator[None]:
    """Count the calls this thread makes meanwhile into `counts` (another thread's): a pool
    thread making DRS calls for a tick counts them as the tick's."""
    previous = getattr(_calls, "counts", None)
    _calls.counts = counts
    try:
        yield
    finally:
        _calls.counts = previous


def _record_outcome(model, parsed, http_response=None, **_):
    """After a DRS call answered: count it for /metrics by operation and outcome, and the
    servers a StartRecovery submitted (from DRS's answer: what DRS accepted, not what was asked)."""
    if model.service_model.endpoint_prefix != "drs":
        return
    code = (parsed or {}).get("Error", {}).get("Code", "")
    status = getattr(http_response, "status_code", 200) or 200
    if code in THROTTLING_CODES:
        outcome = "throttled"
    elif code or status >= 300:
        outcome = "error"
    else:
        outcome = "ok"
    metrics.counter_inc("drs_calls", {"operation": model.name, "outcome": outcome})
    if model.name == "StartRecovery" and outcome == "ok":
        metrics.counter_inc("launches", None, len(parsed.get("job", {}).get("participatingServers", [])))


def _record_failure(event_name, **_):
    """After a DRS call got no answer (connection refused, timeout): an error for /metrics.

    botocore gives this event no operation model: the event's name ends with the operation."""
    _, service, operation = event_name.split(".", 2)
    if service == "drs":
        metrics.counter_inc("drs_calls", {"operation": operation, "outcome": "error"})


def aws_calls_made(service_name: str) -> int:
    """Calls of `service_name` ("drs", "ec2") made by this thread so far, for every client
    (calls made for it by pool threads included)."""
    with _counts_lock:
        return call_counts().get(service_name, 0)


def _sandbox_client(target, service_name):
    if service_name not in SUPPORTED_SERVICES:
        raise ValueError(
            f"Target '{target.name}' is a sandbox, which simulates only {', '.join(SUPPORTED_SERVICES[:-1])} and "
            f"{SUPPORTED_SERVICES[-1]}; "
            f"there is no sandbox {service_name!r} client."
        )
    client = _sandbox_session().client(
        service_name,
        region_name=target.region,
        endpoint_url=SANDBOX_ENDPOINT.format(service=service_name),
        config=SANDBOX_CONFIG,
        **SANDBOX_CREDENTIALS,
    )
    return attach(client, account_id=target.account_id, region=target.region)


def _sandbox_session():
    """One boto3 session for every sandbox client (made under _sessions_lock, like the
    clients): a session caches the service models it has loaded, so the tenth target's client
    costs milliseconds instead of another parse of the DRS and EC2 models."""
    global _sandbox_boto3_session
    if _sandbox_boto3_session is None:
        _sandbox_boto3_session = boto3.session.Session()
    return _sandbox_boto3_session


def _aws_session(target):
    if not target.role_arn:
        return boto3.session.Session(region_name=target.region)
    key = (target.pk, target.role_arn, target.external_id, target.region)
    session = _sessions.get(key)
    if session is None:
        session = _assumed_role_session(target)
        _sessions[key] = session
    return session


def _assumed_role_session(target):
    """A boto3 session whose credentials come from STS AssumeRole and renew themselves."""
    base = boto3.session.Session(region_name=target.region)
    role_arn, external_id, region = target.role_arn, target.external_id, target.region
    session_name = f"drsorch-target-{target.pk}"

    def fetch():
        sts = base.client("sts", region_name=region, config=AWS_CONFIG)
        params = {"RoleArn": role_arn, "RoleSessionName": session_name, "DurationSeconds": ASSUMED_ROLE_SECONDS}
        if external_id:
            params["ExternalId"] = external_id
        credentials = sts.assume_role(**params)["Credentials"]
        logger.info("Assumed role %s until %s", role_arn, credentials["Expiration"])
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    core = botocore.session.get_session()
    # botocore has no public setter for a session's credentials object; assigning it is how
    # boto3 users plug in refreshable credentials (botocore's own AssumeRole provider does
    # the same through its credential resolver).
    core._credentials = DeferredRefreshableCredentials(refresh_using=fetch, method="sts-assume-role")
    core.set_config_variable("region", region)
    return boto3.session.Session(botocore_session=core)


def clear_session_cache() -> None:
    """Forget cached assumed-role sessions (a target's role changed, or between tests)."""
    with _sessions_lock:
        _sessions.clear()
        _clients.clear()
