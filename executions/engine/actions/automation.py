"""ssm_automation: StartAutomationExecution per launched instance, with a ClientToken that
makes a repeat after a crash answer the same execution; followed with
GetAutomationExecution."""

from __future__ import annotations

import functools
import logging
import uuid

from drsorch.drs.concurrency import per_target
from executions.models import ActionRun, Execution, WaveRun

from ..rows import TickRows
from . import records
from .records import (
    _client,
    _describe,
    _ensure_lease,
    _final,
    _finish,
    _set_output,
)
from .ssm import (
    AUTOMATION_FAILED,
    AUTOMATION_SUCCEEDED,
    _ssm_parameters,
    _stop_outside,
)

logger = logging.getLogger(__name__)

TOKEN_NAMESPACE = uuid.UUID("5b0d7d0e-8a0c-4c36-9f47-7a7d1f0ad0a1")


def client_token(action: ActionRun, instance_id: str) -> str:
    """The StartAutomationExecution ClientToken of `action`'s attempt on `instance_id`: the same
    on every resend, another on a retry of the execution (attempt + 1)."""
    return str(uuid.uuid5(TOKEN_NAMESPACE, f"{action.pk}:{action.attempt}:{instance_id}"))


def _follow_automation(rows: TickRows, execution: Execution, wave: WaveRun, action: ActionRun, *, fresh: bool) -> bool:
    instances = action.external.get("instances", {})
    started: dict[str, str] = dict(action.external.get("automations", {}))
    # Start what is not started yet, the instances at once (drsorch.drs.concurrency: SSM calls
    # only in the pool). After a crash the same ClientToken gets the execution SSM already
    # started for it, never a second one.
    due = [instance_id for instance_id in instances if instance_id not in started]
    if due:
        _ensure_lease(rows, execution)
        answers = per_target(
            {
                instance_id: functools.partial(
                    _client(rows, instances[instance_id], "ssm").start_automation_execution,
                    DocumentName=action.config["document"],
                    Parameters={**_ssm_parameters(action), "InstanceId": [instance_id]},
                    ClientToken=client_token(action, instance_id),
                )
                for instance_id in due
            }
        )
        for instance_id in due:
            if answers[instance_id].error is None:
                started[instance_id] = answers[instance_id].value["AutomationExecutionId"]
        if len(started) != len(action.external.get("automations", {})):
            records._recorded(rows, action, automations=dict(started))
        refused = [(i, answers[i].error) for i in due if answers[i].error is not None]
        final = [(i, exc) for i, exc in refused if _final(exc)]
        if final:
            # The automations already started for other instances are stopped with it.
            note = _stop_outside(rows, action)
            instance_id, exc = final[0]
            return _finish(
                rows,
                action,
                False,
                f"StartAutomationExecution on {instance_id}: {_describe(exc)}" + (f" {note}" if note else ""),
            )
        if refused:
            _set_output(
                rows, action, action.output, error=f"StartAutomationExecution: {_describe(refused[0][1])}; asked again."
            )
            return False  # nothing moved: asked again on the next tick, not within this one
    states: dict[str, str] = dict(action.external.get("automation_states", {}))
    ended = AUTOMATION_SUCCEEDED | AUTOMATION_FAILED
    reads = per_target(
        {
            instance_id: functools.partial(
                _client(rows, instances[instance_id], "ssm").get_automation_execution,
                AutomationExecutionId=execution_id,
            )
            for instance_id, execution_id in started.items()
            if states.get(instance_id) not in ended
        }
    )
    lines, failures = [], []
    for instance_id, execution_id in sorted(started.items()):
        if instance_id not in reads:
            lines.append(f"{instance_id}: {execution_id} {states[instance_id]}")
            if states[instance_id] in AUTOMATION_FAILED:
                failures.append(f"{instance_id} {states[instance_id]}")
            continue
        if reads[instance_id].error is not None:
            lines.append(f"{instance_id}: {execution_id} not read ({_describe(reads[instance_id].error)})")
            continue
        found = reads[instance_id].value["AutomationExecution"]
        status = found.get("AutomationExecutionStatus", "")
        states[instance_id] = status
        detail = found.get("FailureMessage") or ""
        outputs = found.get("Outputs") or {}
        lines.append(
            f"{instance_id}: {execution_id} {status}"
            + (f" — {detail}" if detail else "")
            + (f" {outputs}" if outputs and status in AUTOMATION_SUCCEEDED else "")
        )
        if status in AUTOMATION_FAILED:
            failures.append(f"{instance_id} {status}" + (f": {detail}" if detail else ""))
    if states != action.external.get("automation_states", {}):
        action.external = {**action.external, "automation_states": states}
        rows.touch(action)
    _set_output(rows, action, "\n".join(lines))
    if all(states.get(i) in AUTOMATION_SUCCEEDED | AUTOMATION_FAILED for i in instances):
        if failures:
            return _finish(rows, action, False, "", error="Automation " + "; ".join(failures))
        return _finish(rows, action, True, f"{len(instances)} automation(s) succeeded.")
    return fresh


# --- SSM command -------------------------------------------------------------------------
