"""The simulated SSM subset: Automation, Run Command and the managed-instance list, as
botocore's `ssm` model (2014-11-06) shapes them.

SSM speaks the `json` protocol: `POST /` with `X-Amz-Target: AmazonSSM.<Operation>` and a JSON
body; errors are a JSON body `{"__type": code, "Message": ...}` with status 400 (500 for
InternalServerError). Datetimes are epoch seconds.

What the sandbox decides, and why (never kinder than SSM):

- Documents: the sandbox has every document. Any name matching the DocumentName pattern
  (`^[a-zA-Z0-9_\\-.:/]{3,128}$`) runs; a name that does not match answers ValidationException.
  Parameters are not checked against a document, except a malformed `InstanceId` of an
  automation (InvalidAutomationExecutionParametersException, as a document's allowedPattern
  answers at the start).
- An automation's `InstanceId` that is well-formed but names no running instance does not fail
  the call: as in SSM, the execution starts and its first step fails (Failed, with a
  FailureMessage naming the EC2 error) a few seconds later.
- ClientToken (a UUID, case-insensitive): the first call with a token starts an execution; a
  retry with the same token and the same DocumentName, DocumentVersion and Parameters answers
  the same AutomationExecutionId and starts nothing; the same token with anything different
  answers IdempotentParameterMismatch. A token is never reused for a second execution.
- SendCommand needs every instance running with its SSM Agent registered (SSM_AGENT_SECONDS
  after launch, as DescribeInstanceInformation shows): otherwise InvalidInstanceId, as SSM
  answers for an instance it cannot reach; a repeated instance answers DuplicateInstanceId.
- ListCommands with an unknown CommandId answers InvalidCommandId; ListCommandInvocations with
  an unknown CommandId answers an empty list; GetCommandInvocation answers InvocationDoesNotExist.
- Stopping an automation that has ended answers InvalidAutomationStatusUpdateException;
  cancelling a command that has ended changes nothing and succeeds.
- `sandbox configure --fail-ssm DOCUMENT ...`: automations and commands of these documents,
  started while it is set, end Failed (FailureMessage; ResponseCode 1 and an error output).

Durations (fixed at the start, jittered from the id like the DRS jobs): an automation is
Pending for PENDING_SECONDS, then InProgress, and ends 20-40 s after it started; a command
invocation is Pending for PENDING_SECONDS and ends 10-20 s after it was sent (sooner when the
document's `executionTimeout` parameter is shorter: TimedOut then). Stop and cancel take
CANCEL_SECONDS (Cancelling, then Cancelled). Nothing runs in the background: every status is
derived from stored moments and the current time.
"""

import base64
import json
import re
import uuid
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from .drs.instances import instance_state, visible_instances
from .ec2 import private_ip
from .models import SandboxAutomationExecution, SandboxCommand, SandboxCommandInvocation, SandboxSettings
from .protocol import INSTANCE_ID_RE, SandboxError, next_token, seconds
from .simulation import unit_hash

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

def automation_status(execution, now):
    """AutomationExecutionStatus at `now`."""
    if execution.stop_requested_at is not None and now >= execution.stop_requested_at:
        return "Cancelled" if now >= execution.stop_requested_at + seconds(CANCEL_SECONDS) else "Cancelling"
    if now < execution.started_at:
        return "Pending"
    if now < execution.ends_at:
        return "InProgress"
    return "Failed" if execution.failed else "Success"


def _automation_end(execution):
    if execution.stop_requested_at is not None:
        return execution.stop_requested_at + seconds(CANCEL_SECONDS)
    return execution.ends_at


def _instance_ids_parameter(parameters):
    return parameters.get("InstanceId") or []


def start_automation_execution(scope, body):
    """StartAutomationExecution: a new execution (or, for a retried ClientToken, the same one)."""
    document = _document_name(body)
    version = _text(body, "DocumentVersion", pattern=DOCUMENT_VERSION_RE) or ""
    parameters = _parameters(body)
    token = _text(body, "ClientToken", pattern=UUID_RE)
    if body.get("Targets") or body.get("TargetMaps") or body.get("TargetLocations"):
        raise ssm_error("InvalidAutomationExecutionParametersException",
                        "The drsorch sandbox simulates automations of one target only (no Targets or TargetMaps).")
    instance_ids = _instance_ids_parameter(parameters)
    for instance_id in instance_ids:
        if not INSTANCE_ID_RE.match(instance_id):
            raise ssm_error("InvalidAutomationExecutionParametersException",
                            f'Parameter "InstanceId" has value "{instance_id}" not matching "^i-[a-z0-9]{{8,17}}$".')
    token = (token or "").lower()
    if token:
        existing = scope.filter(SandboxAutomationExecution.objects.filter(client_token=token)).first()
        if existing is not None:
            return _retried(existing, document, version, parameters)
    now = timezone.now()
    execution_id = str(uuid.uuid4())
    duration = _duration(AUTOMATION_SECONDS, execution_id)
    started_at = now + seconds(PENDING_SECONDS)
    failed, message, ends_at = False, "", started_at + seconds(duration)
    running = _running_instances(scope, now, instance_ids)
    missing = [i for i in instance_ids if i not in running]
    if missing:
        failed, ends_at = True, started_at + seconds(BAD_INSTANCE_STEP_SECONDS)
        message = (f"{BAD_INSTANCE_FAILURE} Fail to execute step {_steps(parameters)[0][0]}. "
                   f"An error occurred (InvalidInstanceID.NotFound) when calling the DescribeInstances operation: "
                   f"The instance IDs '{', '.join(missing)}' do not exist or are not running.")
    elif document in _failing_documents():
        failed = True
        message = (f"Step fails when it is Executing. Fail to execute step {_steps(parameters)[1][0]}. "
                   f"Document {document} failed on {', '.join(instance_ids) or 'its target'} (the sandbox is "
                   f"configured to fail this document). Please refer to Automation Service Troubleshooting Guide "
                   f"for more diagnosis details.")
    try:
        with transaction.atomic(using="sandbox"):
            SandboxAutomationExecution.objects.create(
                execution_id=execution_id, account_id=scope.account_id, region=scope.region, document_name=document,
                document_version=version, parameters=parameters, client_token=token, created_at=now,
                started_at=started_at, ends_at=ends_at, failed=failed, failure_message=message,
            )
    except IntegrityError:
        # Another call with the same token won the race: answer as a retry of it.
        existing = scope.filter(SandboxAutomationExecution.objects.filter(client_token=token)).first()
        if existing is None:
            raise
        return _retried(existing, document, version, parameters)
    return 200, {"AutomationExecutionId": execution_id}


def _retried(existing, document, version, parameters):
    if (existing.document_name, existing.document_version, existing.parameters) != (document, version, parameters):
        raise ssm_error("IdempotentParameterMismatch",
                        "The client token has already been used with different parameters.")
    return 200, {"AutomationExecutionId": existing.execution_id}


def _steps(parameters):
    first = ("verifyInstanceState", "aws:assertAwsResourceProperty") if _instance_ids_parameter(parameters) \
        else ("prepare", "aws:sleep")
    return [first, ("runDocument", "aws:executeScript")]


def _failed_on_instance(execution):
    return execution.failed and execution.failure_message.startswith(BAD_INSTANCE_FAILURE)


def _step_records(execution, now):
    """Two plausible steps: the first checks the target (30% of the run), the second runs."""
    steps = _steps(execution.parameters)
    on_instance = _failed_on_instance(execution)
    first_end = execution.ends_at if on_instance else (
        execution.started_at + (execution.ends_at - execution.started_at) * 0.3)
    spans = [(execution.started_at, first_end, on_instance), (first_end, execution.ends_at,
                                                              execution.failed and not on_instance)]
    stop = execution.stop_requested_at
    records = []
    for index, ((name, action), (start, end, fails)) in enumerate(zip(steps, spans, strict=True)):
        record = {"StepName": name, "Action": action, "OnFailure": "Abort", "MaxAttempts": 1,
                  "StepExecutionId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{execution.execution_id}/{name}"))}
        never_runs = index == 1 and on_instance
        if stop is not None and now >= stop and stop < end and not never_runs:
            record["StepStatus"] = "Pending"
            if stop >= start:
                record.update(StepStatus="Cancelled", ExecutionStartTime=_epoch(start),
                              ExecutionEndTime=_epoch(_automation_end(execution)))
        elif now < start or never_runs:
            record["StepStatus"] = "Pending"
        elif now < end:
            record.update(StepStatus="InProgress", ExecutionStartTime=_epoch(start))
        else:
            record.update(StepStatus="Failed" if fails else "Success", ExecutionStartTime=_epoch(start),
                          ExecutionEndTime=_epoch(end))
            if fails:
                record["FailureMessage"] = execution.failure_message
            elif index == 1:
                record["Outputs"] = {"runDocument.Output": [_automation_output(execution)]}
        records.append(record)
    return records


def _automation_output(execution):
    target = ", ".join(_instance_ids_parameter(execution.parameters)) or "its target"
    return f"Document {execution.document_name} ran on {target}."


def _one_execution(scope, body):
    execution_id = _execution_id(body)
    execution = scope.filter(SandboxAutomationExecution.objects.filter(execution_id=execution_id)).first()
    if execution is None:
        raise ssm_error("AutomationExecutionNotFoundException", f"Automation Execution {execution_id} does not exist.")
    return execution


def get_automation_execution(scope, body):
    """GetAutomationExecution: the execution as it stands now."""
    execution = _one_execution(scope, body)
    now = timezone.now()
    status = automation_status(execution, now)
    record = {
        "AutomationExecutionId": execution.execution_id,
        "DocumentName": execution.document_name,
        "DocumentVersion": execution.document_version or "1",
        "ExecutionStartTime": _epoch(execution.created_at),
        "AutomationExecutionStatus": status,
        "StepExecutions": _step_records(execution, now),
        "StepExecutionsTruncated": False,
        "Mode": "Auto",
        "ExecutedBy": f"arn:aws:sts::{execution.account_id}:assumed-role/drsorch/drsorch",
    }
    if execution.parameters:  # the model's map has at least one entry
        record["Parameters"] = execution.parameters
    if status in ENDED:
        record["ExecutionEndTime"] = _epoch(_automation_end(execution))
    if status == "Success":
        record["Outputs"] = {"runDocument.Output": [_automation_output(execution)]}
    elif status == "Failed":
        record["FailureMessage"] = execution.failure_message
    elif status == "InProgress":
        current = next(s for s in record["StepExecutions"] if s["StepStatus"] == "InProgress")
        record.update(CurrentStepName=current["StepName"], CurrentAction=current["Action"])
    return 200, {"AutomationExecution": record}


def stop_automation_execution(scope, body):
    """StopAutomationExecution: Cancelling now, Cancelled CANCEL_SECONDS later; an ended
    execution answers InvalidAutomationStatusUpdateException."""
    execution = _one_execution(scope, body)
    stop_type = _text(body, "Type") or "Cancel"
    if stop_type not in ("Cancel", "Complete"):
        raise constraint_error("type", stop_type, "Member must satisfy enum value set: [Complete, Cancel]")
    now = timezone.now()
    # Conditional: of two stops at once, one records the moment; an ended execution is not touched.
    updated = SandboxAutomationExecution.objects.filter(
        pk=execution.pk, stop_requested_at__isnull=True, ends_at__gt=now
    ).update(stop_requested_at=now, stop_type=stop_type)
    if not updated:
        execution.refresh_from_db()
        if automation_status(execution, now) in ENDED:
            raise ssm_error("InvalidAutomationStatusUpdateException",
                            f"Execution {execution.execution_id} is already in a terminal state "
                            f"{automation_status(execution, now)}.")
    return 200, {}


# --- Run Command ---------------------------------------------------------------------------

def invocation_status(invocation, now):
    """(Status, StatusDetails) of one command invocation at `now`."""
    cancel = invocation.cancel_requested_at
    if cancel is not None and now >= cancel:
        if now >= cancel + seconds(CANCEL_SECONDS):
            return "Cancelled", "Cancelled"
        return "Cancelling", "Cancelling"
    if now < invocation.started_at:
        return "Pending", "Pending"
    if now < invocation.ends_at:
        return "InProgress", "InProgress"
    if invocation.timed_out:
        return "TimedOut", "Execution Timed Out"
    return ("Failed", "Failed") if invocation.failed else ("Success", "Success")


def _invocation_end(invocation):
    if invocation.cancel_requested_at is not None:
        return invocation.cancel_requested_at + seconds(CANCEL_SECONDS)
    return invocation.ends_at


def command_status(invocations, now):
    """(Status, StatusDetails, completed, errors) of a command from its invocations."""
    statuses = [invocation_status(i, now)[0] for i in invocations]
    completed = sum(s in ENDED for s in statuses)
    errors = sum(s in ("Failed", "TimedOut") for s in statuses)
    if all(s == "Pending" for s in statuses):
        status = "Pending"
    elif "Cancelling" in statuses and completed + statuses.count("Cancelling") == len(statuses):
        status = "Cancelling"
    elif completed < len(statuses):
        status = "InProgress"
    elif "Failed" in statuses:
        status = "Failed"
    elif "TimedOut" in statuses:
        status = "TimedOut"
    elif "Cancelled" in statuses:
        status = "Cancelled"
    else:
        status = "Success"
    return status, status, completed, errors


def _execution_timeout(parameters):
    values = parameters.get("executionTimeout") or []
    try:
        return int(values[0]) if values else None
    except ValueError:
        raise ssm_error("InvalidParameters", f"Parameter executionTimeout has value {values[0]!r}, not a number.")


def send_command(scope, body):
    """SendCommand to running instances whose SSM Agent has registered."""
    document = _document_name(body)
    version = _text(body, "DocumentVersion", pattern=DOCUMENT_VERSION_RE) or ""
    parameters = _parameters(body)
    comment = _text(body, "Comment", maximum=100) or ""
    timeout = body.get("TimeoutSeconds", 3600)
    if isinstance(timeout, bool) or not isinstance(timeout, int):
        raise ssm_error("SerializationException", "TimeoutSeconds must be a number.")
    if not 30 <= timeout <= 2592000:
        raise constraint_error("timeoutSeconds", timeout, "Member must have value between 30 and 2592000")
    if body.get("Targets"):
        raise ssm_error("InvalidParameters", "The drsorch sandbox simulates SendCommand with InstanceIds only.")
    instance_ids = body.get("InstanceIds") or []
    if not isinstance(instance_ids, list) or not all(isinstance(i, str) for i in instance_ids):
        raise ssm_error("SerializationException", "InstanceIds must be a list of strings.")
    if not instance_ids:
        raise ssm_error("ValidationException", "Either InstanceIds or Targets must be specified.")
    if len(instance_ids) > 50:
        raise constraint_error("instanceIds", instance_ids, "Member must have length less than or equal to 50")
    if len(set(instance_ids)) != len(instance_ids):
        raise ssm_error("DuplicateInstanceId")
    execution_timeout = _execution_timeout(parameters)
    now = timezone.now()
    running = _running_instances(scope, now, [i for i in instance_ids if INSTANCE_ID_RE.match(i)])
    unreachable = [i for i in instance_ids if i not in running or not agent_registered(running[i], now)]
    if unreachable:
        raise ssm_error("InvalidInstanceId",
                        f"Instances [[{', '.join(unreachable)}]] not in a valid state for account {scope.account_id}")
    failing = document in _failing_documents()
    command_id = str(uuid.uuid4())
    with transaction.atomic(using="sandbox"):
        command = SandboxCommand.objects.create(
            command_id=command_id, account_id=scope.account_id, region=scope.region, document_name=document,
            document_version=version, parameters=parameters, comment=comment, timeout_seconds=timeout,
            created_at=now,
        )
        invocations = []
        for position, instance_id in enumerate(instance_ids):
            started_at = now + seconds(PENDING_SECONDS)
            runs = _duration(COMMAND_SECONDS, command_id, instance_id)
            timed_out = execution_timeout is not None and execution_timeout < runs
            invocations.append(SandboxCommandInvocation(
                command=command, instance_id=instance_id, position=position, started_at=started_at,
                ends_at=started_at + seconds(execution_timeout if timed_out else runs),
                failed=failing and not timed_out, timed_out=timed_out,
            ))
        SandboxCommandInvocation.objects.bulk_create(invocations)
    return 200, {"Command": _command_record(command, invocations, now)}


def _command_record(command, invocations, now):
    status, details, completed, errors = command_status(invocations, now)
    return {
        "CommandId": command.command_id,
        "DocumentName": command.document_name,
        "DocumentVersion": command.document_version or "$DEFAULT",
        "Comment": command.comment,
        "ExpiresAfter": _epoch(command.created_at + seconds(command.timeout_seconds)),
        "Parameters": command.parameters,
        "InstanceIds": [i.instance_id for i in invocations],
        "Targets": [],
        "RequestedDateTime": _epoch(command.created_at),
        "Status": status,
        "StatusDetails": details,
        "OutputS3Region": command.region,
        "MaxConcurrency": "50",
        "MaxErrors": "0",
        "TargetCount": len(invocations),
        "CompletedCount": completed,
        "ErrorCount": errors,
        "DeliveryTimedOutCount": 0,
        "ServiceRole": "",
        "NotificationConfig": {"NotificationArn": "", "NotificationEvents": []},
        "CloudWatchOutputConfig": {"CloudWatchOutputEnabled": False},
        "TimeoutSeconds": command.timeout_seconds,
    }


def _plugin_name(document):
    if "PowerShell" in document:
        return "aws:runPowerShellScript"
    return "aws:runShellScript" if "Shell" in document else "aws:runDocument"


def _plugin(command, invocation, now):
    status, details = invocation_status(invocation, now)
    plugin = {"Name": _plugin_name(command.document_name), "Status": status, "StatusDetails": details,
              "ResponseCode": -1, "Output": "", "OutputS3Region": command.region, "OutputS3KeyPrefix": "",
              "StandardOutputUrl": "", "StandardErrorUrl": ""}
    if status != "Pending":
        plugin["ResponseStartDateTime"] = _epoch(invocation.started_at)
    if status in ENDED:
        plugin["ResponseFinishDateTime"] = _epoch(_invocation_end(invocation))
        plugin["Output"], plugin["ResponseCode"] = _output(command, invocation, status)
    return plugin


def _output(command, invocation, status):
    """(Output, ResponseCode) of an ended invocation: stdout, then stderr as SSM joins them."""
    ran = f"Document {command.document_name} ran on {invocation.instance_id}."
    if status == "Success":
        return ran + "\n", 0
    if status == "Failed":
        return ("\n\n----------ERROR-------\nfailed to run commands: exit status 1 (the drsorch sandbox is "
                f"configured to fail document {command.document_name})"), 1
    if status == "TimedOut":
        return "\n\n----------ERROR-------\nfailed to run commands: execution timed out", -1
    return "", -1


def _invocation_record(command, invocation, now, *, details):
    status, status_details = invocation_status(invocation, now)
    record = {
        "CommandId": command.command_id, "InstanceId": invocation.instance_id, "InstanceName": "",
        "Comment": command.comment, "DocumentName": command.document_name,
        "DocumentVersion": command.document_version or "$DEFAULT",
        "RequestedDateTime": _epoch(command.created_at), "Status": status, "StatusDetails": status_details,
        "TraceOutput": "", "StandardOutputUrl": "", "StandardErrorUrl": "", "ServiceRole": "",
        "CommandPlugins": [_plugin(command, invocation, now)] if details else [],
        "NotificationConfig": {"NotificationArn": "", "NotificationEvents": []},
        "CloudWatchOutputConfig": {"CloudWatchOutputEnabled": False},
    }
    return record


def _command_id(body, *, required=False):
    value = _text(body, "CommandId", required=required)
    if value is not None and len(value) != 36:
        raise constraint_error("commandId", value, "Member must have length equal to 36")
    return value


def _instance_id(body):
    value = _text(body, "InstanceId")
    if value is not None and not INSTANCE_ID_RE.match(value):
        raise ssm_error("InvalidInstanceId", f"Instance id {value} is not valid.")
    return value


def _command_filters(body):
    filters = body.get("Filters") or []
    if not isinstance(filters, list):
        raise ssm_error("SerializationException", "Filters must be a list.")
    checked = []
    for item in filters:
        key, value = (item or {}).get("key"), (item or {}).get("value")
        if key not in COMMAND_FILTER_KEYS:
            raise ssm_error("InvalidFilterKey")
        if not isinstance(value, str) or not value:
            raise ssm_error("InvalidFilter", f"The filter value of {key} is not valid.")
        if key in ("InvokedAfter", "InvokedBefore"):
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ssm_error("InvalidFilter", f"{key} must be a date and time such as 2026-01-31T12:00:00Z.")
            value = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        checked.append((key, value))
    return checked


def _command_matches(command, status, filters):
    for key, value in filters:
        if key == "InvokedAfter" and command.created_at < value:
            return False
        if key == "InvokedBefore" and command.created_at > value:
            return False
        if key == "DocumentName" and command.document_name != value:
            return False
        if key == "Status" and status != value:
            return False
        if key == "ExecutionStage" and (value == "Executing") == (status in ENDED):
            return False
    return True


def _commands(scope, command_id):
    commands = scope.filter(SandboxCommand.objects.all()).prefetch_related("invocations").order_by("-created_at",
                                                                                                    "-id")
    if command_id is not None:
        commands = commands.filter(command_id=command_id)
    return commands


def list_commands(scope, body):
    """ListCommands: newest first, by CommandId, InstanceId or Filters; paginated (50)."""
    command_id = _command_id(body)
    instance_id = _instance_id(body)
    filters = _command_filters(body)
    now = timezone.now()
    commands = list(_commands(scope, command_id))
    if command_id is not None and not commands:
        raise ssm_error("InvalidCommandId")
    records = []
    for command in commands:
        invocations = list(command.invocations.all())
        if instance_id is not None:
            invocations = [i for i in invocations if i.instance_id == instance_id]
            if not invocations:
                continue
        record = _command_record(command, invocations, now)
        if _command_matches(command, record["Status"], filters):
            records.append(record)
    page, token = _page(records, body, default=50, maximum=50)
    return 200, _paged_answer("Commands", page, token)


def list_command_invocations(scope, body):
    """ListCommandInvocations: one item per command and instance, plugins when Details; paginated (50)."""
    command_id = _command_id(body)
    instance_id = _instance_id(body)
    filters = _command_filters(body)
    details = bool(body.get("Details", False))
    now = timezone.now()
    records = []
    for command in _commands(scope, command_id):
        for invocation in command.invocations.all():
            if instance_id is not None and invocation.instance_id != instance_id:
                continue
            status = invocation_status(invocation, now)[0]
            if _command_matches(command, status, filters):
                records.append(_invocation_record(command, invocation, now, details=details))
    page, token = _page(records, body, default=50, maximum=50)
    return 200, _paged_answer("CommandInvocations", page, token)


def get_command_invocation(scope, body):
    """GetCommandInvocation: one instance's invocation with its output."""
    command_id = _command_id(body, required=True)
    instance_id = _text(body, "InstanceId", required=True)
    command = _commands(scope, command_id).first()
    invocation = command and next((i for i in command.invocations.all() if i.instance_id == instance_id), None)
    if invocation is None:
        raise ssm_error("InvocationDoesNotExist")
    now = timezone.now()
    status, details = invocation_status(invocation, now)
    plugin = _plugin(command, invocation, now)
    failed_output = plugin["ResponseCode"] not in (0, -1) or status == "TimedOut"
    record = {
        "CommandId": command.command_id, "InstanceId": instance_id, "Comment": command.comment,
        "DocumentName": command.document_name, "DocumentVersion": command.document_version or "$DEFAULT",
        "PluginName": plugin["Name"], "ResponseCode": plugin["ResponseCode"], "Status": status,
        "StatusDetails": details,
        "StandardOutputContent": "" if failed_output else plugin["Output"],
        "StandardErrorContent": plugin["Output"].strip() if failed_output else "",
        "StandardOutputUrl": "", "StandardErrorUrl": "",
        "CloudWatchOutputConfig": {"CloudWatchOutputEnabled": False},
    }
    if status != "Pending":
        record["ExecutionStartDateTime"] = _string_time(invocation.started_at)
    if status in ENDED:
        # ExecutionElapsedTime left out: SSM writes it as PT0.417S, which its own model's
        # pattern (a date and time) refuses.
        record["ExecutionEndDateTime"] = _string_time(_invocation_end(invocation))
    return 200, record


def _string_time(moment):
    """GetCommandInvocation's string datetimes (StringDateTime): ISO-8601 UTC to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cancel_command(scope, body):
    """CancelCommand: invocations not yet ended turn Cancelling, then Cancelled."""
    command_id = _command_id(body, required=True)
    command = _commands(scope, command_id).first()
    if command is None:
        raise ssm_error("InvalidCommandId")
    instance_ids = body.get("InstanceIds") or []
    if len(set(instance_ids)) != len(instance_ids):
        raise ssm_error("DuplicateInstanceId")
    known = {i.instance_id for i in command.invocations.all()}
    unknown = [i for i in instance_ids if i not in known]
    if unknown:
        raise ssm_error("InvalidInstanceId", f"Instances [[{', '.join(unknown)}]] are not part of command {command_id}")
    now = timezone.now()
    invocations = SandboxCommandInvocation.objects.filter(command=command, cancel_requested_at__isnull=True,
                                                          ends_at__gt=now)
    if instance_ids:
        invocations = invocations.filter(instance_id__in=instance_ids)
    invocations.update(cancel_requested_at=now)
    return 200, {}


# --- Managed instances -----------------------------------------------------------------------

def _information_filters(body):
    """[(key, values)] of InstanceInformationFilterList and Filters."""
    checked = []
    for item in body.get("InstanceInformationFilterList") or []:
        key, values = (item or {}).get("key"), (item or {}).get("valueSet") or []
        if key not in INFORMATION_FILTER_KEYS:
            raise ssm_error("InvalidFilterKey")
        if not values:
            raise ssm_error("InvalidInstanceInformationFilterValue", f"The filter value of {key} is not valid.")
        checked.append((key, values))
    for item in body.get("Filters") or []:
        key, values = (item or {}).get("Key"), (item or {}).get("Values") or []
        if not (key in INFORMATION_FILTER_KEYS or (isinstance(key, str) and key.startswith("tag:"))):
            raise ssm_error("InvalidFilterKey")
        checked.append((key, values))
    for key, values in checked:
        if key == "InstanceIds":
            bad = [v for v in values if not isinstance(v, str) or not INSTANCE_ID_RE.match(v)]
            if bad:
                raise ssm_error("InvalidInstanceId", f"Instance id {bad[0]} is not valid.")
    return checked


def _platform(instance):
    return "Windows" if "windows" in instance.source_server.os_name.lower() else "Linux"


def _information(instance, now):
    registered = instance.launched_at + seconds(SSM_AGENT_SECONDS)
    state = instance_state(instance, now)
    if state == "RUNNING":
        ping_status = "Online"
        last_ping = registered + seconds(((now - registered).total_seconds() // PING_SECONDS) * PING_SECONDS)
    else:  # shutting down: the agent stopped pinging
        ping_status, last_ping = "ConnectionLost", max(registered, instance.terminating_at)
    server = instance.source_server
    return {
        "InstanceId": instance.instance_id, "PingStatus": ping_status, "LastPingDateTime": _epoch(last_ping),
        "AgentVersion": AGENT_VERSION, "IsLatestVersion": False, "PlatformType": _platform(instance),
        "PlatformName": server.os_name.split(" ")[0], "PlatformVersion": "".join(
            c for c in server.os_name.split(" ")[1] if c.isdigit() or c == ".") if " " in server.os_name else "",
        "ResourceType": "EC2Instance", "IPAddress": private_ip(instance.instance_id),
        "ComputerName": server.fqdn or server.hostname, "SourceId": instance.instance_id,
        "SourceType": "AWS::EC2::Instance",
    }


def _information_matches(record, instance, key, values):
    if key == "InstanceIds":
        return record["InstanceId"] in values
    if key == "PingStatus":
        return record["PingStatus"] in values
    if key == "PlatformTypes":
        return record["PlatformType"] in values
    if key == "AgentVersion":
        return record["AgentVersion"] in values
    if key == "ResourceType":
        return record["ResourceType"] in values
    if key.startswith("tag:"):
        return instance.tags.get(key[4:]) in values
    return False


def describe_instance_information(scope, body):
    """DescribeInstanceInformation: instances whose SSM Agent has registered (SSM_AGENT_SECONDS
    after launch) and that are not terminated; paginated (MaxResults 5..50, default 10)."""
    filters = _information_filters(body)
    now = timezone.now()
    records = []
    for instance in visible_instances(scope, now).order_by("launched_at", "id"):
        if not agent_registered(instance, now) or instance_state(instance, now) == "TERMINATED":
            continue
        record = _information(instance, now)
        if all(_information_matches(record, instance, key, values) for key, values in filters):
            records.append(record)
    page, token = _page(records, body, default=10, maximum=50, minimum=5)
    return 200, _paged_answer("InstanceInformationList", page, token)


OPERATIONS = {
    "StartAutomationExecution": start_automation_execution,
    "GetAutomationExecution": get_automation_execution,
    "StopAutomationExecution": stop_automation_execution,
    "SendCommand": send_command,
    "ListCommands": list_commands,
    "ListCommandInvocations": list_command_invocations,
    "GetCommandInvocation": get_command_invocation,
    "CancelCommand": cancel_command,
    "DescribeInstanceInformation": describe_instance_information,
}
