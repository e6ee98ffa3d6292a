"""Constants, errors and request parsing shared by the simulated SSM operations."""

import base64
import json
import re

from ..drs.instances import instance_state, visible_instances
from ..models import SandboxSettings
from ..protocol import SandboxError, next_token, seconds
from ..simulation import unit_hash

SSM_AGENT_SECONDS = 20  # after launch, the SSM Agent has registered: Online, commands accepted
PENDING_SECONDS = 1
CANCEL_SECONDS = 2
AUTOMATION_SECONDS = (20, 40)
COMMAND_SECONDS = (10, 20)
BAD_INSTANCE_STEP_SECONDS = 3  # the first step of an automation on a missing instance fails then
BAD_INSTANCE_FAILURE = "Step fails when it is verifying the instance."
PING_SECONDS = 300  # the agent pings SSM every 5 minutes
AGENT_VERSION = "3.3.987.0"
DOCUMENT_NAME_RE = re.compile(r"^[a-zA-Z0-9_\-.:/]{3,128}$")
DOCUMENT_VERSION_RE = re.compile(r"^([$]LATEST|[$]DEFAULT|[1-9][0-9]*)$")
UUID_RE = re.compile(r"^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$")
ENDED = {"Success", "Failed", "Cancelled", "TimedOut"}
COMMAND_FILTER_KEYS = {"InvokedAfter", "InvokedBefore", "Status", "ExecutionStage", "DocumentName"}
INFORMATION_FILTER_KEYS = {"InstanceIds", "AgentVersion", "PingStatus", "PlatformTypes", "ActivationIds", "IamRole",
                           "ResourceType", "AssociationStatus"}


def ssm_error(code, message=None, *, status=400):
    """An SSM error answer (json protocol): every modeled SSM error is a 400."""
    return SandboxError(code, message or "", status=status)


def constraint_error(field, value, constraint):
    """ValidationException in AWS's wording for a member that breaks its shape's constraint."""
    return ssm_error("ValidationException",
                     f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: "
                     f"{constraint}")


def access_denied(scope, operation, body):
    """AccessDeniedException as IAM words a denial of an SSM action (`--deny OPERATION`)."""
    return ssm_error(
        "AccessDeniedException",
        f"User: arn:aws:sts::{scope.account_id}:assumed-role/drsorch/drsorch is not authorized to perform: "
        f"ssm:{operation} on resource: {_resource(scope, body)} because no identity-based policy allows the "
        f"ssm:{operation} action",
    )


def _resource(scope, body):
    name = body.get("DocumentName")
    if isinstance(name, str):
        owner = "" if name.startswith(("AWS-", "AWSSupport-", "AWSEC2-")) else scope.account_id
        return f"arn:aws:ssm:{scope.region}:{owner}:document/{name}"
    if isinstance(body.get("AutomationExecutionId"), str):
        return f"arn:aws:ssm:{scope.region}:{scope.account_id}:automation-execution/{body['AutomationExecutionId']}"
    return "*"


# --- input checks ------------------------------------------------------------------------------

def _text(body, field, *, required=False, pattern=None, maximum=None, wire=None):
    wire = wire or field[0].lower() + field[1:]
    value = body.get(field)
    if value is None:
        if required:
            raise constraint_error(wire, "null", "Member must not be null")
        return None
    if not isinstance(value, str):
        raise ssm_error("SerializationException", f"{field} must be a string.")
    if maximum is not None and len(value) > maximum:
        raise constraint_error(wire, value, f"Member must have length less than or equal to {maximum}")
    if pattern is not None and not pattern.match(value):
        raise constraint_error(wire, value, f"Member must satisfy regular expression pattern: {pattern.pattern}")
    return value


def _document_name(body):
    return _text(body, "DocumentName", required=True, pattern=DOCUMENT_NAME_RE)


def _parameters(body):
    parameters = body.get("Parameters") or {}
    if not isinstance(parameters, dict):
        raise ssm_error("SerializationException", "Parameters must be a map of lists of strings.")
    if len(parameters) > 200:
        raise constraint_error("parameters", "...", "Member must have length less than or equal to 200")
    for key, values in parameters.items():
        if not 1 <= len(key) <= 50:
            raise constraint_error("parameters", key, "Map keys must have length less than or equal to 50")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ssm_error("SerializationException", f"Parameter {key} must be a list of strings.")
    return {key: list(values) for key, values in parameters.items()}


def _execution_id(body):
    value = _text(body, "AutomationExecutionId", required=True)
    if len(value) != 36:
        raise constraint_error("automationExecutionId", value, "Member must have length greater than or equal to 36")
    return value


def _page(items, body, *, default, maximum, minimum=1):
    size = body.get("MaxResults", default)
    if isinstance(size, bool) or not isinstance(size, int):
        raise ssm_error("SerializationException", "MaxResults must be a number.")
    if size > maximum:
        raise constraint_error("maxResults", size, f"Member must have value less than or equal to {maximum}")
    if size < minimum:
        raise constraint_error("maxResults", size, f"Member must have value greater than or equal to {minimum}")
    offset = 0
    if body.get("NextToken"):
        try:
            offset = json.loads(base64.urlsafe_b64decode(body["NextToken"].encode()).decode())["offset"]
        except Exception:
            raise ssm_error("InvalidNextToken", "The specified token isn't valid.")
        if not isinstance(offset, int) or offset < 0:
            raise ssm_error("InvalidNextToken", "The specified token isn't valid.")
    window = list(items[offset:offset + size + 1])
    return window[:size], (next_token(offset + size) if len(window) > size else None)


def _paged_answer(key, page, token):
    answer = {key: page}
    if token:
        answer["NextToken"] = token
    return answer


def _epoch(moment):
    return moment.timestamp()


def _duration(bounds, *parts):
    low, high = bounds
    return low + (high - low) * unit_hash(*parts)


def _failing_documents():
    return set(SandboxSettings.load().fail_ssm)


def _running_instances(scope, now, ids):
    """{instance_id: instance} of these IDs that exist and are running at `now`."""
    instances = visible_instances(scope, now).filter(instance_id__in=ids)
    return {i.instance_id: i for i in instances if instance_state(i, now) == "RUNNING"}


def agent_registered(instance, now):
    """Whether the instance's SSM Agent has registered with SSM by `now`."""
    return now >= instance.launched_at + seconds(SSM_AGENT_SECONDS)


# --- Automation ----------------------------------------------------------------------------
