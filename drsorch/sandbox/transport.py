"""Answer a boto3 client's requests in-process, from the simulated DRS and EC2.

`attach(client, account_id=..., region=...)` registers a `before-send` handler on the
client's event system. botocore emits `before-send` with the fully prepared HTTP request
just before it would open a connection; a handler that returns a response short-circuits
the send, so the network is never reached and botocore parses the answer exactly as it
parses AWS's: status codes, the `x-amzn-ErrorType` header, modeled exceptions and all.
"""

import dataclasses
import json
import logging
import math
import time
import uuid
from decimal import Decimal
from typing import NamedTuple
from urllib.parse import urlsplit

from botocore.awsrequest import AWSResponse, HeadersDict
from django.db import connections, transaction

from . import ec2, sns, ssm
from .drs import OPERATIONS, WITHOUT_ACCOUNT_CHECK
from .drs.common import SERVICE_CODE, Scope
from .drs.tags import resource_arn_from_path
from .models import SandboxRegion, SandboxSettings
from .protocol import SandboxError, validation_error
from .routers import SANDBOX_DB

logger = logging.getLogger(__name__)

SUPPORTED_SERVICES = ("drs", "ec2", "sns", "ssm")


class _RawBody:
    """The minimal urllib3-like body AWSResponse reads from."""

    def __init__(self, data):
        self._data = data

    def stream(self, **kwargs):
        yield self._data


def _response(request, status, headers, body):
    return AWSResponse(request.url, status, HeadersDict(headers), _RawBody(body))


class CallState(NamedTuple):
    """What every call reads before answering: the switches of `sandbox configure` that shape
    any answer, and whether DRS was never initialized in the caller's account and region."""

    throttle_rate: float
    uninitialized: bool
    omit_instance_ids: bool = False
    no_job_tags: bool = False
    deny: tuple = ()
    latency_ms: int = 0


# The settings columns read by every call, in CallState's order after `uninitialized`.
CALL_SWITCHES = ("omit_instance_ids", "no_job_tags", "deny", "latency_ms")


def _call_state_sql():
    settings_table, regions_table = SandboxSettings._meta.db_table, SandboxRegion._meta.db_table
    switches = "".join(f", s.{SandboxSettings._meta.get_field(name).column}" for name in CALL_SWITCHES)
    return (
        f"SELECT s.throttle_rate, EXISTS (SELECT 1 FROM {regions_table} r WHERE r.account_id = %s"
        f" AND r.region = %s AND r.uninitialized){switches} FROM {settings_table} s WHERE s.id = %s"
    )


CALL_STATE_SQL = _call_state_sql()


def _operations(value):
    # A JSON column comes back as text from SQLite and already decoded from PostgreSQL.
    if isinstance(value, str | bytes):
        value = json.loads(value)
    return tuple(value or ())


def call_state(account_id, region):
    """The CallState of a call in this account and region.

    Every call needs it: one hand-written query reads it in a tenth of the time the ORM takes
    to build and run two, which showed on every call the engine makes.
    """
    with connections[SANDBOX_DB].cursor() as cursor:
        cursor.execute(CALL_STATE_SQL, [account_id, region, SandboxSettings.PK])
        row = cursor.fetchone()
    if row is None:  # first call ever: create the settings row with its defaults
        config = SandboxSettings.load()
        return CallState(config.throttle_rate, region_uninitialized(account_id, region),
                         *(getattr(config, name) for name in CALL_SWITCHES[:2]), tuple(config.deny),
                         config.latency_ms)
    throttle_rate, uninitialized, omit_instance_ids, no_job_tags, deny, latency_ms = row
    return CallState(throttle_rate, bool(uninitialized), bool(omit_instance_ids), bool(no_job_tags),
                     _operations(deny), int(latency_ms or 0))


def wait_latency(state):
    """Take as long as `sandbox configure --latency-ms` says a call takes (a real sleep: it is
    there to make benchmarks feel real DRS's latency)."""
    if state.latency_ms > 0:
        time.sleep(state.latency_ms / 1000)


def access_denied(scope, operation, resource):
    """AccessDeniedException as AWS words it, for the role drsorch would assume."""
    return SandboxError(
        "AccessDeniedException",
        f"User: arn:aws:sts::{scope.account_id}:assumed-role/drsorch/drsorch is not authorized to perform: "
        f"{SERVICE_CODE}:{operation} on resource: {resource}",
    )


def _denied_resource(scope, body):
    """The ARN an IAM denial names: the resource the request is about, else `*`."""
    if body.get("resourceArn"):
        return body["resourceArn"]
    prefix = f"arn:aws:drs:{scope.region}:{scope.account_id}"
    if isinstance(body.get("sourceServerID"), str):
        return f"{prefix}:source-server/{body['sourceServerID']}"
    if isinstance(body.get("resourceId"), str) and body["resourceId"].startswith("s-"):
        return f"{prefix}:source-server/{body['resourceId']}"
    if isinstance(body.get("jobID"), str):
        return f"{prefix}:job/{body['jobID']}"
    return "*"


def count_call_and_throttle(throttle_rate):
    """Count this call and say whether it is throttled (`throttle_rate` as call_state read it).

    Call n (counted since throttling was last configured) is throttled when
    floor(n * rate) > floor((n - 1) * rate): exactly `rate` of any run of calls, spread
    evenly, and the same whichever process makes the call, since the counter is a row.
    """
    if throttle_rate <= 0:
        return False
    with transaction.atomic(using="sandbox"):
        row = SandboxSettings.objects.select_for_update().get(pk=SandboxSettings.PK)
        row.call_count += 1
        row.save(update_fields=["call_count"])
    rate = Decimal(str(row.throttle_rate))  # exact decimal: 0.29 * 100 must give 29, not 28.999...
    return math.floor(row.call_count * rate) > math.floor((row.call_count - 1) * rate)


def region_uninitialized(account_id, region):
    """True when DRS was never initialized in this account and region."""
    return SandboxRegion.objects.filter(account_id=account_id, region=region, uninitialized=True).exists()


class SandboxTransport:
    """The `before-send` handler of one sandbox client (one service, account and region)."""

    def __init__(self, *, service_name, account_id, region):
        if service_name not in SUPPORTED_SERVICES:
            raise ValueError(
                f"The sandbox simulates only {', '.join(SUPPORTED_SERVICES)}; it cannot answer {service_name!r}."
            )
        self.service_name = service_name
        self.scope = Scope(account_id=account_id, region=region)

    def __call__(self, request, event_name="", **kwargs):
        operation = event_name.rsplit(".", 1)[-1]
        if self.service_name == "drs":
            return self._drs(request, operation)
        if self.service_name == "sns":
            return self._sns(request, operation)
        if self.service_name == "ssm":
            return self._ssm(request, operation)
        return self._ec2(request, operation)

    # --- DRS: rest-json ---------------------------------------------------------------------

    def _drs(self, request, operation):
        try:
            status, payload = self._drs_answer(request, operation)
        except SandboxError as error:
            return self._drs_error(request, error)
        except Exception as exc:
            logger.exception("The sandbox failed to answer DRS %s", operation)
            return self._drs_error(request, SandboxError("InternalServerException", f"Sandbox error: {exc}"))
        body = b"" if payload is None else json.dumps(payload).encode()
        return _response(request, status, self._drs_headers(), body)

    def _drs_answer(self, request, operation):
        state = call_state(self.scope.account_id, self.scope.region)
        wait_latency(state)
        if count_call_and_throttle(state.throttle_rate):
            raise SandboxError("ThrottlingException", "Rate exceeded", serviceCode=SERVICE_CODE)
        body = self._drs_body(request)
        if operation in WITHOUT_ACCOUNT_CHECK:
            body["resourceArn"] = resource_arn_from_path(urlsplit(request.url).path)
        if operation in state.deny:  # IAM decides before DRS looks at the request
            raise access_denied(self.scope, operation, _denied_resource(self.scope, body))
        handler = OPERATIONS.get(operation)
        if handler is None:
            raise validation_error(
                f"The drsorch sandbox does not simulate the DRS operation {operation}.", reason="unknownOperation"
            )
        if operation not in WITHOUT_ACCOUNT_CHECK and state.uninitialized:
            raise SandboxError(
                "UninitializedAccountException",
                f"Elastic Disaster Recovery is not initialized in account {self.scope.account_id} "
                f"region {self.scope.region}.",
            )
        scope = dataclasses.replace(self.scope, omit_instance_ids=state.omit_instance_ids,
                                    no_job_tags=state.no_job_tags)
        return handler(scope, body)

    @staticmethod
    def _drs_body(request):
        raw = request.body or b"{}"
        try:
            body = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        except (ValueError, UnicodeDecodeError):
            raise validation_error("The request body is not valid JSON.", reason="cannotParse")
        if not isinstance(body, dict):
            raise validation_error("The request body must be a JSON object.", reason="cannotParse")
        return body

    @staticmethod
    def _drs_headers(error_code=None):
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": str(uuid.uuid4())}
        if error_code:
            headers["x-amzn-ErrorType"] = error_code
        return headers

    def _drs_error(self, request, error):
        headers = self._drs_headers(error.code)
        if error.code == "ThrottlingException":
            headers["Retry-After"] = "1"
        body = json.dumps({"message": error.message, **error.fields}).encode()
        return _response(request, error.status, headers, body)

    # --- EC2: query protocol, XML answers ------------------------------------------------------

    def _ec2(self, request, operation):
        try:
            state = call_state(self.scope.account_id, self.scope.region)
            wait_latency(state)
            if count_call_and_throttle(state.throttle_rate):
                raise SandboxError("RequestLimitExceeded", "Request limit exceeded.", status=503)
            handler = ec2.OPERATIONS.get(operation)
            if handler is None:
                raise SandboxError(
                    "InvalidAction", f"The drsorch sandbox does not simulate the EC2 action {operation}.", status=400
                )
            status, document = handler(self.scope, ec2.parse_form(request.body))
        except SandboxError as error:
            status, document = error.status, ec2.error_document(error.code, error.message)
        except Exception as exc:
            logger.exception("The sandbox failed to answer EC2 %s", operation)
            status, document = 500, ec2.error_document("InternalError", f"Sandbox error: {exc}")
        return _response(request, status, {"Content-Type": "text/xml;charset=UTF-8"}, ec2.to_bytes(document))


    # --- SNS: query protocol, XML answers -------------------------------------------------------

    def _sns(self, request, operation):
        try:
            state = call_state(self.scope.account_id, self.scope.region)
            wait_latency(state)
            if count_call_and_throttle(state.throttle_rate):
                raise SandboxError("Throttling", "Rate exceeded", status=400)
            params = ec2.parse_form(request.body)
            if operation in state.deny:  # IAM decides before SNS looks at the request
                raise sns.authorization_error(self.scope, operation, params.get("TopicArn") or "*")
            handler = sns.OPERATIONS.get(operation)
            if handler is None:
                raise SandboxError(
                    "InvalidAction", f"The drsorch sandbox does not simulate the SNS action {operation}.", status=400
                )
            status, document = handler(self.scope, params)
        except SandboxError as error:
            status, document = error.status, sns.error_document(error.code, error.message)
        except Exception as exc:
            logger.exception("The sandbox failed to answer SNS %s", operation)
            status, document = 500, sns.error_document("InternalError", f"Sandbox error: {exc}", sender=False)
        return _response(request, status, {"Content-Type": "text/xml", "x-amzn-RequestId": str(uuid.uuid4())},
                         ec2.to_bytes(document))


    # --- SSM: json protocol (X-Amz-Target: AmazonSSM.<Operation>) -------------------------------

    def _ssm(self, request, operation):
        try:
            state = call_state(self.scope.account_id, self.scope.region)
            wait_latency(state)
            if count_call_and_throttle(state.throttle_rate):
                raise ssm.ssm_error("ThrottlingException", "Rate exceeded")
            body = self._drs_body(request)
            if operation in state.deny:  # IAM decides before SSM looks at the request
                raise ssm.access_denied(self.scope, operation, body)
            handler = ssm.OPERATIONS.get(operation)
            if handler is None:
                raise ssm.ssm_error(
                    "InvalidAction", f"The drsorch sandbox does not simulate the SSM operation {operation}."
                )
            status, payload = handler(self.scope, body)
        except SandboxError as error:
            status, payload = error.status, {"__type": error.code}
            if error.message:
                payload["Message"] = error.message
        except Exception as exc:
            logger.exception("The sandbox failed to answer SSM %s", operation)
            status, payload = 500, {"__type": "InternalServerError", "Message": f"Sandbox error: {exc}"}
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": str(uuid.uuid4())}
        return _response(request, status, headers, json.dumps(payload).encode())


def attach(client, *, account_id, region):
    """Make `client` (a boto3 drs, ec2, sns or ssm client) talk to the sandbox instead of AWS."""
    handler = SandboxTransport(service_name=client.meta.service_model.service_name, account_id=account_id,
                               region=region)
    client.meta.events.register("before-send", handler)
    return client
