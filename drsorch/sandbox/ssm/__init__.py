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

Laid out by job: common.py (constants, errors, request parsing), automation.py, commands.py
and information.py (DescribeInstanceInformation); OPERATIONS maps each to its handler.
"""

from .automation import (
    automation_status,
    get_automation_execution,
    start_automation_execution,
    stop_automation_execution,
)
from .commands import (
    cancel_command,
    command_status,
    get_command_invocation,
    list_command_invocations,
    list_commands,
    send_command,
)
from .common import CANCEL_SECONDS, DOCUMENT_NAME_RE, SSM_AGENT_SECONDS, access_denied, ssm_error
from .information import describe_instance_information

__all__ = [
    "CANCEL_SECONDS",
    "DOCUMENT_NAME_RE",
    "OPERATIONS",
    "SSM_AGENT_SECONDS",
    "access_denied",
    "automation_status",
    "command_status",
    "ssm_error",
]

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
