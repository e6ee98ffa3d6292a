"""Automation: StartAutomationExecution, GetAutomationExecution, StopAutomationExecution."""

import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import SandboxAutomationExecution
from ..protocol import INSTANCE_ID_RE, seconds
from .common import (
    AUTOMATION_SECONDS,
    BAD_INSTANCE_FAILURE,
    BAD_INSTANCE_STEP_SECONDS,
    CANCEL_SECONDS,
    DOCUMENT_VERSION_RE,
    ENDED,
    PENDING_SECONDS,
    UUID_RE,
    _document_name,
    _duration,
    _epoch,
    _execution_id,
    _failing_documents,
    _parameters,
    _running_instances,
    _text,
    constraint_error,
    ssm_error,
)


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
