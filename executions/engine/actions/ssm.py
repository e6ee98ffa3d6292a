"""What SSM's two kinds share: its statuses, the action's parameters, and stopping what an
action started (cancel, time-out)."""

from __future__ import annotations

import functools
import logging

from drsorch.drs.concurrency import per_target
from executions.models import ActionRun

from ..rows import TickRows
from . import records
from .records import (
    _client,
    _describe,
)

logger = logging.getLogger(__name__)

# SSM's automation statuses (botocore's AutomationExecutionStatus) and command invocation statuses.
AUTOMATION_SUCCEEDED = frozenset({"Success", "CompletedWithSuccess"})

AUTOMATION_FAILED = frozenset(
    {"Failed", "TimedOut", "Cancelled", "Rejected", "CompletedWithFailure", "ChangeCalendarOverrideRejected", "Exited"}
)

COMMAND_SUCCEEDED = frozenset({"Success"})

COMMAND_FAILED = frozenset(
    {
        "Failed",
        "TimedOut",
        "Cancelled",
        "Undeliverable",
        "Terminated",
        "InvalidPlatform",
        "AccessDenied",
        "DeliveryTimedOut",
        "ExecutionTimedOut",
    }
)


def _ssm_parameters(action: ActionRun) -> dict[str, list[str]]:
    return {name: list(values) for name, values in (action.config.get("parameters") or {}).items()}


def _stop_outside(rows: TickRows, action: ActionRun) -> str:
    """Stop what a running SSM action started (cancel, time-out); what was done, for the event."""
    instances = action.external.get("instances", {})
    done = []
    if action.kind == "ssm_automation":
        states = action.external.get("automation_states", {})
        running = {
            instance_id: execution_id
            for instance_id, execution_id in action.external.get("automations", {}).items()
            if states.get(instance_id) not in AUTOMATION_SUCCEEDED | AUTOMATION_FAILED
        }
        answers = per_target(
            {
                instance_id: functools.partial(
                    _client(rows, instances[instance_id], "ssm").stop_automation_execution,
                    AutomationExecutionId=execution_id,
                    Type="Cancel",
                )
                for instance_id, execution_id in running.items()
            }
        )
        for instance_id, execution_id in running.items():
            error = answers[instance_id].error
            done.append(
                f"stopped automation {execution_id}"
                if error is None
                else f"could not stop automation {execution_id} ({_describe(error)})"
            )
    elif action.kind == "ssm_command":
        for key, command_id in action.external.get("commands", {}).items():
            try:
                _client(rows, key.split("/")[0], "ssm").cancel_command(CommandId=command_id)
                done.append(f"cancelled command {command_id}")
            except Exception as exc:
                done.append(f"could not cancel command {command_id} ({_describe(exc)})")
    if done:
        records._recorded(rows, action, stopped=done)
        return "; ".join(done).capitalize() + "."
    return ""
