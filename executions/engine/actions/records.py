"""The steps every kind shares: the lease, the intent before an outside call, what the call
gave, the output and the end of an action, and the clients."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from django.db import transaction

from drsorch.aws import client_for
from drsorch.drs import errors as drs_errors
from executions.choices import ActionStatus, LaunchStatus
from executions.models import ActionRun, Execution, WaveRun

from ..lease import LEASE_SECONDS, LeaseLost, renew_lease
from ..rows import TickRows

logger = logging.getLogger(__name__)

# A lease renewed this recently still outlives one outside call (a webhook's 10 s, SSM's 35 s).
LEASE_FRESH_SECONDS = LEASE_SECONDS - 40


def _instances(rows: TickRows, execution: Execution, wave: WaveRun) -> dict[str, object]:
    """The recovered instances of the wave (LAUNCHED servers): EC2 instance id -> target id
    (DRS's recovery instance id is the EC2 instance id)."""
    return {
        launch.recovery_instance_id: launch.target_id
        for launch in rows.wave_launches(execution, wave)
        if launch.status == LaunchStatus.LAUNCHED and launch.recovery_instance_id
    }


def _ensure_lease(rows: TickRows, execution: Execution) -> None:
    renewed = rows.lease_renewed_at.get(execution.pk)
    if renewed and time.monotonic() - renewed < LEASE_FRESH_SECONDS:
        return
    if not renew_lease(execution, owner=rows.owner):
        raise LeaseLost(execution.pk)
    rows.lease_renewed_at[execution.pk] = time.monotonic()


def _record_intent(
    rows: TickRows, execution: Execution, action: ActionRun, deadline: datetime, instances: dict[str, object]
) -> bool:
    """Commit that this attempt is about to call out (its own transaction), before any call:
    False when another worker did it first."""
    _ensure_lease(rows, execution)
    external = {"instances": instances} if instances else {}
    if action.kind == "webhook":
        external["delivery_id"] = f"{execution.pk}:{action.pk}:{action.attempt}"
    with transaction.atomic():
        claimed = ActionRun.objects.filter(
            pk=action.pk, status=ActionStatus.PENDING, intent_at__isnull=True, attempt=action.attempt
        ).update(
            status=ActionStatus.RUNNING,
            intent_at=rows.now,
            started_at=rows.now,
            deadline_at=deadline,
            external=external,
            error="",
            output="",
        )
    if claimed != 1:
        logger.warning("Action run %s was started elsewhere; leaving it.", action.pk)
        return False
    action.check_transition(ActionStatus.RUNNING)
    action.status = ActionStatus.RUNNING
    action.intent_at = action.started_at = rows.now
    action.deadline_at = deadline
    action.external = external
    action.error = action.output = ""
    # The UPDATE above wrote these: later changes are diffed from it.
    rows.remember([action])
    return True


def _recorded(rows: TickRows, action: ActionRun, **external: Any) -> None:
    """Keep what an outside call gave (ids, a delivery's attempt) at once, in its own UPDATE,
    so a crash later in the tick does not lose it."""
    action.external = {**action.external, **external}
    ActionRun.objects.filter(pk=action.pk, attempt=action.attempt).update(external=action.external)
    # Only `external` was written: the action's other unsaved changes still go with the tick.
    original = rows.original.get((ActionRun, action.pk))
    if original is not None:
        original["external"] = action.external


def _set_output(rows: TickRows, action: ActionRun, output: str, error: str | None = None) -> None:
    output = output[-ActionRun.MAX_OUTPUT :]
    changed = action.output != output or (error is not None and action.error != error)
    action.output = output
    if error is not None:
        action.error = error[: ActionRun.MAX_OUTPUT]
    if changed:
        rows.touch(action)


def _finish(rows: TickRows, action: ActionRun, ok: bool, message: str, error: str = "") -> bool:
    if ok:
        return rows.set_action_status(
            action,
            ActionStatus.SUCCEEDED,
            f"Action '{action.name}' succeeded. {message}".strip(),
            finished_at=rows.now,
            error="",
        )
    follow = " It failed the wave." if action.on_failure == "fail" else " The wave goes on (on_failure: continue)."
    return rows.set_action_status(
        action,
        ActionStatus.FAILED,
        f"Action '{action.name}' failed: {error or message}.{follow}",
        finished_at=rows.now,
        error=(error or message)[: ActionRun.MAX_OUTPUT],
    )


def _final(exc: Exception) -> bool:
    """Whether asking again gets the same answer: an AWS 4xx that is not throttling."""
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 400
    return 400 <= status < 500 and not drs_errors.is_throttled(exc)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return f"{drs_errors.error_code(exc)}: {drs_errors.error_message(exc)}"
    return f"{type(exc).__name__}: {exc}"


def _by_target(instances: dict[str, object]) -> dict[object, list[str]]:
    grouped: dict[object, list[str]] = {}
    for instance_id, target_id in instances.items():
        grouped.setdefault(_target_key(target_id), []).append(instance_id)
    return grouped


def _target_key(target_id: object) -> object:
    return int(target_id) if isinstance(target_id, str) and target_id.isdigit() else target_id


def _client(rows: TickRows, target_id: object, service: str):
    return client_for(rows.targets[_target_key(target_id)], service)


# --- webhook -----------------------------------------------------------------------------
