"""Run Command: SendCommand, ListCommands, ListCommandInvocations, GetCommandInvocation, CancelCommand."""

import uuid
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from ..models import SandboxCommand, SandboxCommandInvocation
from ..protocol import INSTANCE_ID_RE, seconds
from .common import (
    CANCEL_SECONDS,
    COMMAND_FILTER_KEYS,
    COMMAND_SECONDS,
    DOCUMENT_VERSION_RE,
    ENDED,
    PENDING_SECONDS,
    _document_name,
    _duration,
    _epoch,
    _failing_documents,
    _page,
    _paged_answer,
    _parameters,
    _running_instances,
    _text,
    agent_registered,
    constraint_error,
    ssm_error,
)


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
