"""Wave actions (runbook steps) in the tick: before a wave's launch and after it.

A wave with `before_actions` goes PENDING -> BEFORE_ACTIONS -> LAUNCHING; one with
`after_actions` goes LAUNCHING -> AFTER_ACTIONS -> WAITING/SUCCEEDED/PARTIAL once its
launches settled (not when its outcome is FAILED). The actions of a phase run one after the
other, in their order; the phase ends when they all ended. A failed or timed-out action with
`on_failure: fail` fails its wave (the later actions of the phase are SKIPPED, its dependents
too); with `continue` the failure is recorded and the next action runs.

Kinds:
- manual: WAITING until an Operator completes it (services.execution_action_complete);
- webhook: the execution JSON, signed, POSTed until a 2xx, retried with a doubling backoff
  (WEBHOOK_FIRST_BACKOFF_SECONDS) within its timeout;
- health_check: DescribeInstanceStatus (both status checks ok) and, when asked, SSM's
  DescribeInstanceInformation (PingStatus Online) until every launched instance passes;
- ssm_automation: StartAutomationExecution per launched instance (InstanceId), followed with
  GetAutomationExecution; ssm_command: SendCommand to the launched instances of each target,
  followed with ListCommandInvocations.

Exactly once, as launches: an outside call that acts (StartAutomationExecution, SendCommand,
a webhook POST) is made only after the action's intent was committed by a conditional UPDATE
(PENDING with no intent -> RUNNING with `intent_at`), and what it gave is recorded right
after (`_recorded`). A crash in between leaves an intent without ids; the next tick
reconciles instead of calling blindly again:
- ssm_automation sends the same deterministic ClientToken (uuid5 of the action run, its
  attempt and the instance), which SSM answers with the execution it already started;
- ssm_command looks for its command with ListCommands by its Comment
  ("drsorch <action run id> #<attempt>") before sending again;
- webhook sends again with the same X-Drsorch-Delivery id: at least once, which is the best
  HTTP allows; receivers deduplicate by that id (docs/api.md).

Outside calls run outside any transaction (the tick's save is the only one), after the lease
was renewed: an automation's per-instance calls at once in the bounded pool
(drsorch.drs.concurrency: boto3 only, no ORM there), a webhook's POST in a small pool of its
own that the tick waits for at most WEBHOOK_WAIT_IN_TICK_SECONDS (a receiver that is down
must not hold every other execution for its timeout), the rest in the tick's thread.

May import: rows, lease (and models, choices, drsorch). Never waves, launching or ticks.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from django.db import transaction
from django.utils.dateparse import parse_datetime

from drsorch.aws import client_for
from drsorch.drs import errors as drs_errors
from drsorch.drs.concurrency import per_target
from drsorch.webhooks import Sent, sending
from executions.choices import ACTION_FAILED, ActionStatus, EventKind, LaunchStatus
from executions.models import ActionRun, Execution, WaveRun

from .lease import LEASE_SECONDS, LeaseLost, renew_lease
from .rows import TickRows

logger = logging.getLogger(__name__)

WEBHOOK_FIRST_BACKOFF_SECONDS = 10
# The API's limits: SendCommand takes 50 instance ids, DescribeInstanceStatus 100 and a
# DescribeInstanceInformation filter 100 (answered 50 a page).
SEND_COMMAND_MAX_INSTANCES = 50
STATUS_MAX_INSTANCES = 100
WEBHOOK_MAX_BACKOFF_SECONDS = 300
# A webhook POST may wait its whole timeout (drsorch.webhooks.sending, 10 s a socket step) on
# a receiver that is down, which in an outage is as likely as not. It runs in a background
# thread, and the tick waits for it only this long before it moves on to its other executions;
# a later tick of this process records the answer. A tick of another process (the lease moved,
# this one died) finds no POST in flight and sends again with the same delivery id.
WEBHOOK_WAIT_IN_TICK_SECONDS = 1.0
WEBHOOK_THREADS = 8
TOKEN_NAMESPACE = uuid.UUID("5b0d7d0e-8a0c-4c36-9f47-7a7d1f0ad0a1")
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
# A lease renewed this recently still outlives one outside call (a webhook's 10 s, SSM's 35 s).
LEASE_FRESH_SECONDS = LEASE_SECONDS - 40


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


def _instances(rows: TickRows, execution: Execution, wave: WaveRun) -> dict[str, object]:
    """The recovered instances of the wave (LAUNCHED servers): EC2 instance id -> target id
    (DRS's recovery instance id is the EC2 instance id)."""
    return {
        launch.recovery_instance_id: launch.target_id
        for launch in rows.wave_launches(execution, wave)
        if launch.status == LaunchStatus.LAUNCHED and launch.recovery_instance_id
    }


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


def execution_json(rows: TickRows, execution: Execution) -> bytes:
    """The execution JSON as GET /api/v1/executions/<id>/ renders it, with this tick's unsaved
    statuses (the execution's, its waves' and their actions') over the stored rows, so the
    receiver sees the wave running this very action."""
    from executions.api.serializers import ExecutionSerializer
    from executions.selectors import executions_for_json

    data = dict(ExecutionSerializer(executions_for_json().get(pk=execution.pk)).data)
    data["status"] = execution.status
    by_index = {wave.index: wave for wave in rows.waves[execution.pk]}
    for wave_data in data.get("waves", []):
        wave = by_index.get(wave_data["index"])
        if wave is None:
            continue
        wave_data["status"] = wave.status
        current = {action.name: action for action in rows.actions.get(wave.pk, [])}
        for action_data in wave_data.get("actions", []):
            if action_data["name"] in current:
                action_data["status"] = current[action_data["name"]].status
    return sending.encode(data)


class _WebhooksInFlight:
    """The webhook POSTs this process has under way, by (action run, its attempt, the POST's
    number), in a small pool of their own: sending.post touches no database, so a pool thread
    may run it. Made on first use, in the process that uses it (django-q2 forks its workers)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._futures: dict[tuple, Future] = {}

    def get(self, key: tuple) -> Future | None:
        with self._lock:
            return self._futures.get(key)

    def start(self, key: tuple, call) -> Future:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=WEBHOOK_THREADS, thread_name_prefix="drsorch-webhook")
            future = self._futures[key] = self._pool.submit(call)
        return future

    def forget(self, key: tuple) -> None:
        with self._lock:
            self._futures.pop(key, None)


webhooks_in_flight = _WebhooksInFlight()


def _follow_webhook(rows: TickRows, execution: Execution, wave: WaveRun, action: ActionRun, *, fresh: bool) -> bool:
    attempts = int(action.external.get("attempts", 0)) + 1
    key = (action.pk, action.attempt, attempts)
    future = webhooks_in_flight.get(key)
    if future is None:
        due = parse_datetime(action.external.get("next_try_at") or "") if action.external.get("next_try_at") else None
        if due is not None and rows.now < due:
            return False
        _ensure_lease(rows, execution)
        future = webhooks_in_flight.start(
            key,
            functools.partial(
                sending.post,
                url=action.config.get("url", ""),
                body=execution_json(rows, execution),
                secret=action.config.get("secret", ""),
                delivery_id=action.external["delivery_id"],
            ),
        )
        wait([future], timeout=WEBHOOK_WAIT_IN_TICK_SECONDS)
    if not future.done():
        return False  # a slow receiver: the other executions' ticks go on meanwhile
    webhooks_in_flight.forget(key)
    try:
        sent = future.result()
    except Exception as exc:  # a bug in the sender must not stop the tick
        logger.exception("Webhook action %s: the POST raised", action.name)
        sent = Sent(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])
    backoff = min(WEBHOOK_FIRST_BACKOFF_SECONDS * 2 ** (attempts - 1), WEBHOOK_MAX_BACKOFF_SECONDS)
    _recorded(
        rows,
        action,
        attempts=attempts,
        status_code=sent.status_code,
        next_try_at=None if sent.ok else (rows.now + timedelta(seconds=backoff)).isoformat(),
    )
    if sent.ok:
        _set_output(rows, action, f"Delivered (HTTP {sent.status_code}) after {attempts} attempt(s).")
        return _finish(rows, action, True, f"Webhook answered HTTP {sent.status_code}.")
    _set_output(rows, action, f"Attempt {attempts} failed: {sent.error}; next in {backoff} s.", error=sent.error)
    if sent.error.startswith("Refused:"):
        return _finish(rows, action, False, sent.error)
    return True


# --- health check ------------------------------------------------------------------------


def _instance_information(client, ids: list[str]) -> list[dict]:
    kwargs: dict[str, Any] = {"Filters": [{"Key": "InstanceIds", "Values": ids}], "MaxResults": 50}
    found = []
    while True:
        answer = client.describe_instance_information(**kwargs)
        found.extend(answer.get("InstanceInformationList", []))
        if not answer.get("NextToken"):
            return found
        kwargs["NextToken"] = answer["NextToken"]


def _follow_health(rows: TickRows, execution: Execution, wave: WaveRun, action: ActionRun, *, fresh: bool) -> bool:
    instances = action.external.get("instances", {})
    waiting: dict[str, str] = {}
    errors = []
    groups = [
        (target_id, ids[first : first + STATUS_MAX_INSTANCES])
        for target_id, ids in _by_target(instances).items()
        for first in range(0, len(ids), STATUS_MAX_INSTANCES)
    ]
    for target_id, ids in groups:
        if action.config.get("ec2_status_checks", True):
            try:
                answer = _client(rows, target_id, "ec2").describe_instance_status(
                    InstanceIds=ids, IncludeAllInstances=True
                )
            except Exception as exc:
                errors.append(f"DescribeInstanceStatus: {_describe(exc)}")
                waiting.update(dict.fromkeys(ids, "not read"))
            else:
                seen = {item["InstanceId"]: item for item in answer.get("InstanceStatuses", [])}
                for instance_id in ids:
                    item = seen.get(instance_id)
                    if item is None:
                        waiting[instance_id] = "not found by EC2"
                        continue
                    state = item.get("InstanceState", {}).get("Name")
                    system = item.get("SystemStatus", {}).get("Status")
                    own = item.get("InstanceStatus", {}).get("Status")
                    if state != "running" or system != "ok" or own != "ok":
                        waiting[instance_id] = f"{state}, system {system}, instance {own}"
        if action.config.get("ssm_ping"):
            try:
                listed = _instance_information(_client(rows, target_id, "ssm"), ids)
            except Exception as exc:
                errors.append(f"DescribeInstanceInformation: {_describe(exc)}")
                waiting.update({i: waiting.get(i, "not read") for i in ids})
            else:
                pings = {item["InstanceId"]: item.get("PingStatus") for item in listed}
                for instance_id in ids:
                    if pings.get(instance_id) != "Online":
                        note = f"SSM {pings.get(instance_id) or 'not registered'}"
                        waiting[instance_id] = f"{waiting[instance_id]}; {note}" if instance_id in waiting else note
    if not waiting:
        _set_output(rows, action, f"All {len(instances)} instance(s) passed.", error="")
        return _finish(rows, action, True, f"{len(instances)} instance(s) passed.")
    _set_output(
        rows,
        action,
        "Waiting for: " + "; ".join(f"{i} ({why})" for i, why in sorted(waiting.items())),
        error="; ".join(errors),
    )
    return fresh


# --- SSM automation ----------------------------------------------------------------------


def client_token(action: ActionRun, instance_id: str) -> str:
    """The StartAutomationExecution ClientToken of `action`'s attempt on `instance_id`: the same
    on every resend, another on a retry of the execution (attempt + 1)."""
    return str(uuid.uuid5(TOKEN_NAMESPACE, f"{action.pk}:{action.attempt}:{instance_id}"))


def _ssm_parameters(action: ActionRun) -> dict[str, list[str]]:
    return {name: list(values) for name, values in (action.config.get("parameters") or {}).items()}


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
            _recorded(rows, action, automations=dict(started))
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
        _recorded(rows, action, commands=dict(commands))
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
        _recorded(rows, action, stopped=done)
        return "; ".join(done).capitalize() + "."
    return ""


FOLLOW = {
    "webhook": _follow_webhook,
    "health_check": _follow_health,
    "ssm_automation": _follow_automation,
    "ssm_command": _follow_command,
}
