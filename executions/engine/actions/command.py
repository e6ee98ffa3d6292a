"""ssm_command: SendCommand to the launched instances (in parts of 50), found again by its
Comment after a crash; followed with ListCommandInvocations."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from drsorch.drs import errors as drs_errors
from executions.models import ActionRun, Execution, WaveRun

from ..rows import TickRows
from . import records
from .records import (
    _by_target,
    _client,
    _describe,
    _ensure_lease,
    _final,
    _finish,
    _set_output,
)
from .ssm import (
    COMMAND_FAILED,
    COMMAND_SUCCEEDED,
    _ssm_parameters,
    _stop_outside,
)

logger = logging.getLogger(__name__)

# The API's limits: SendCommand takes 50 instance ids, DescribeInstanceStatus 100 and a
# DescribeInstanceInformation filter 100 (answered 50 a page).
SEND_COMMAND_MAX_INSTANCES = 50


def command_comment(action: ActionRun, part: int = 0) -> str:
    """The Comment that finds `action`'s command (its `part`-th, from 0) with ListCommands after
    a crash."""
    return f"drsorch {action.pk} #{action.attempt}" + (f" part {part + 1}" if part else "")


def _command_parts(instances: dict[str, object]) -> list[tuple[str, object, int, list[str]]]:
    """The commands of an action: (key, target id, part, instance ids), SEND_COMMAND_MAX_INSTANCES
    instances at most each (SendCommand's limit), per target."""
    parts = []
    for target_id, ids in _by_target(instances).items():
        for part, first in enumerate(range(0, len(ids), SEND_COMMAND_MAX_INSTANCES)):
            parts.append((f"{target_id}/{part}", target_id, part, ids[first : first + SEND_COMMAND_MAX_INSTANCES]))
    return parts


def _find_command(client, action: ActionRun, comment: str) -> str | None:
    """The command this attempt already sent (a crash lost its id), by its comment."""
    since = (action.intent_at - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    kwargs: dict[str, Any] = {"Filters": [{"key": "InvokedAfter", "value": since}]}
    while True:
        answer = client.list_commands(**kwargs)
        for command in answer.get("Commands", []):
            if command.get("Comment") == comment:
                return command["CommandId"]
        if not answer.get("NextToken"):
            return None
        kwargs["NextToken"] = answer["NextToken"]


def _invocations(client, command_id: str) -> list[dict]:
    kwargs: dict[str, Any] = {"CommandId": command_id, "Details": True}
    found = []
    while True:
        answer = client.list_command_invocations(**kwargs)
        found.extend(answer.get("CommandInvocations", []))
        if not answer.get("NextToken"):
            return found
        kwargs["NextToken"] = answer["NextToken"]


def _follow_command(rows: TickRows, execution: Execution, wave: WaveRun, action: ActionRun, *, fresh: bool) -> bool:
    instances = action.external.get("instances", {})
    commands: dict[str, str] = dict(action.external.get("commands", {}))
    for key, target_id, part, ids in _command_parts(instances):
        if key in commands:
            continue
        client = _client(rows, target_id, "ssm")
        comment = command_comment(action, part)
        try:
            # Not in the tick that committed the intent: a crash may have sent it already.
            found = None if fresh else _find_command(client, action, comment)
            if found is None:
                _ensure_lease(rows, execution)
                found = client.send_command(
                    InstanceIds=ids,
                    DocumentName=action.config["document"],
                    Parameters=_ssm_parameters(action),
                    Comment=comment,
                )["Command"]["CommandId"]
        except Exception as exc:
            # InvalidInstanceId: an instance's SSM Agent has not registered yet (minutes after a
            # launch); SSM sent nothing, so asking again until the timeout is safe.
            if _final(exc) and drs_errors.error_code(exc) != "InvalidInstanceId":
                note = _stop_outside(rows, action)
                return _finish(rows, action, False, f"SendCommand: {_describe(exc)}" + (f" {note}" if note else ""))
            _set_output(rows, action, action.output, error=f"SendCommand: {_describe(exc)}; asked again.")
            return False  # nothing moved: asked again on the next tick, not within this one
        commands[key] = found
        records._recorded(rows, action, commands=dict(commands))
    states: dict[str, str] = {}
    lines, failures = [], []
    for key, command_id in commands.items():
        try:
            invocations = _invocations(_client(rows, key.split("/")[0], "ssm"), command_id)
        except Exception as exc:
            lines.append(f"{command_id}: not read ({_describe(exc)})")
            continue
        for invocation in invocations:
            instance_id = invocation.get("InstanceId", "")
            status = invocation.get("Status", "")
            states[instance_id] = status
            output = "".join(plugin.get("Output") or "" for plugin in invocation.get("CommandPlugins", []))
            lines.append(f"{instance_id}: {status}" + (f"\n{output.strip()}" if output.strip() else ""))
            if status in COMMAND_FAILED:
                failures.append(f"{instance_id} {status}")
    _set_output(rows, action, "\n".join(lines))
    if instances and all(states.get(i) in COMMAND_SUCCEEDED | COMMAND_FAILED for i in instances):
        if failures:
            return _finish(rows, action, False, "", error="Command " + "; ".join(failures))
        return _finish(rows, action, True, f"Command succeeded on {len(instances)} instance(s).")
    return fresh


# --- stopping ----------------------------------------------------------------------------
