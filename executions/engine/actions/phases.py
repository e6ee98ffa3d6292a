"""A wave's action phases in the tick: step the actions one after the other, start one (its
intent first), cancel and close them."""

from __future__ import annotations

import logging
from datetime import timedelta

from executions.choices import ACTION_FAILED, ActionStatus, EventKind
from executions.models import ActionRun, Execution, WaveRun

from ..rows import TickRows
from .automation import (
    _follow_automation,
)
from .command import (
    _follow_command,
)
from .health import (
    _follow_health,
)
from .records import (
    _instances,
    _record_intent,
)
from .ssm import (
    _stop_outside,
)
from .webhook import (
    _follow_webhook,
)

logger = logging.getLogger(__name__)

class Phase:
    """What a wave's action phase came to in this step."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


# --- the phase ---------------------------------------------------------------------------


def step_phase(rows: TickRows, execution: Execution, wave: WaveRun, when: str) -> tuple[bool, str, str]:
    """Move the actions of `wave`'s `when` phase along. Returns (changed, Phase, why it failed)."""
    changed = False
    failure = ""
    for action in [a for a in rows.wave_actions(wave) if a.when == when]:
        if action.is_terminal:
            if action.status in ACTION_FAILED and action.on_failure == "fail" and not failure:
                failure = f"action '{action.name}' {action.status}"
            continue
        if failure:
            changed |= rows.set_action_status(
                action,
                ActionStatus.SKIPPED,
                f"Action '{action.name}' skipped: {failure}.",
                finished_at=rows.now,
                error=f"Not run: {failure}.",
            )
            continue
        changed |= _step_action(rows, execution, wave, action)
        if not action.is_terminal:
            return changed, Phase.RUNNING, ""
        if action.status in ACTION_FAILED and action.on_failure == "fail":
            failure = f"action '{action.name}' {action.status}"
    return changed, (Phase.FAILED if failure else Phase.DONE), failure


def cancel_phase(rows: TickRows, wave: WaveRun) -> None:
    """Cancel the unfinished actions of `wave`: running automations are stopped
    (StopAutomationExecution) and commands cancelled (CancelCommand)."""
    for action in rows.wave_actions(wave):
        if action.is_terminal:
            continue
        note = _stop_outside(rows, action) if action.status == ActionStatus.RUNNING else ""
        rows.set_action_status(
            action,
            ActionStatus.CANCELLED,
            f"Action '{action.name}' cancelled with the execution." + (f" {note}" if note else ""),
            finished_at=rows.now,
        )


def close_actions(rows: TickRows, wave: WaveRun) -> None:
    """Close the unfinished actions of a wave that ended: CANCELLED with the wave (running SSM
    work stopped), else SKIPPED naming how the wave ended (e.g. its launch FAILED, so its
    after actions never run)."""
    if wave.status == "CANCELLED":
        cancel_phase(rows, wave)
        return
    for action in rows.wave_actions(wave):
        if action.is_terminal:
            continue
        if action.status != ActionStatus.PENDING:
            note = _stop_outside(rows, action) if action.status == ActionStatus.RUNNING else ""
            rows.set_action_status(
                action,
                ActionStatus.CANCELLED,
                f"Action '{action.name}' stopped: wave '{wave.name}' ended {wave.status}."
                + (f" {note}" if note else ""),
                finished_at=rows.now,
            )
            continue
        rows.set_action_status(
            action,
            ActionStatus.SKIPPED,
            f"Action '{action.name}' skipped: wave '{wave.name}' ended {wave.status}.",
            finished_at=rows.now,
            error=f"Not run: the wave ended {wave.status}.",
        )


# --- one action --------------------------------------------------------------------------


def _step_action(rows: TickRows, execution: Execution, wave: WaveRun, action: ActionRun) -> bool:
    if action.status == ActionStatus.PENDING:
        return _start(rows, execution, wave, action)
    if action.deadline_at and rows.now >= action.deadline_at:
        if action.status == ActionStatus.RUNNING and action.kind != "webhook":
            # Read SSM or EC2 once more: what ended just before its deadline is not timed out.
            FOLLOW[action.kind](rows, execution, wave, action, fresh=False)
            if action.is_terminal:
                return True
        note = _stop_outside(rows, action) if action.status == ActionStatus.RUNNING else ""
        return rows.set_action_status(
            action,
            ActionStatus.TIMED_OUT,
            f"Action '{action.name}' timed out after {action.timeout_minutes} min."
            + (" It failed the wave." if action.on_failure == "fail" else " The wave goes on (on_failure: continue).")
            + (f" {note}" if note else ""),
            finished_at=rows.now,
            error=f"Timed out after {action.timeout_minutes} min." + (f" {action.error}" if action.error else ""),
        )
    if action.status == ActionStatus.RUNNING:
        return FOLLOW[action.kind](rows, execution, wave, action, fresh=False)
    return False  # WAITING: a person completes it


def _start(rows: TickRows, execution: Execution, wave: WaveRun, action: ActionRun) -> bool:
    deadline = rows.now + timedelta(minutes=action.timeout_minutes)
    if action.kind == "manual":
        return rows.set_action_status(
            action,
            ActionStatus.WAITING,
            f"Action '{action.name}' waits for an Operator to complete it: {action.config.get('instructions', '')}",
            started_at=rows.now,
            deadline_at=deadline,
        )
    instances: dict[str, object] = {}
    if action.kind != "webhook":
        instances = _instances(rows, execution, wave)
        if not instances:
            return rows.set_action_status(
                action,
                ActionStatus.SKIPPED,
                f"Action '{action.name}' skipped: no server of wave '{wave.name}' launched.",
                finished_at=rows.now,
                error="Skipped: no recovered instance to act on.",
            )
    if action.kind == "health_check":
        # Reads only: no intent needed, a repeat harms nothing.
        rows.set_action_status(
            action,
            ActionStatus.RUNNING,
            f"Action '{action.name}' started: checking {len(instances)} instance(s).",
            started_at=rows.now,
            deadline_at=deadline,
            external={"instances": instances},
        )
        FOLLOW[action.kind](rows, execution, wave, action, fresh=True)
        return True
    if not _record_intent(rows, execution, action, deadline, instances):
        return False
    rows.event(
        execution.pk,
        EventKind.ENGINE,
        f"Action '{action.name}' started ({action.kind}"
        + (f", {len(instances)} instance(s)" if instances else "")
        + f", attempt {action.attempt}).",
        wave=wave,
        data={"action": action.name, "kind": action.kind, "from": ActionStatus.PENDING, "to": ActionStatus.RUNNING},
    )
    FOLLOW[action.kind](rows, execution, wave, action, fresh=True)
    return True


FOLLOW = {
    "webhook": _follow_webhook,
    "health_check": _follow_health,
    "ssm_automation": _follow_automation,
    "ssm_command": _follow_command,
}
