"""webhook: the execution JSON, signed, POSTed beside the tick until a 2xx within the action's timeout."""

from __future__ import annotations

import functools
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import timedelta

from django.utils.dateparse import parse_datetime

from drsorch.webhooks import Sent, sending
from executions.models import ActionRun, Execution, WaveRun

from ..rows import TickRows
from . import records
from .records import (
    _ensure_lease,
    _finish,
    _set_output,
)

logger = logging.getLogger(__name__)

WEBHOOK_FIRST_BACKOFF_SECONDS = 10

WEBHOOK_MAX_BACKOFF_SECONDS = 300

# A webhook POST may wait its whole timeout (drsorch.webhooks.sending, 10 s a socket step) on
# a receiver that is down, which in an outage is as likely as not. It runs in a background
# thread, and the tick waits for it only this long before it moves on to its other executions;
# a later tick of this process records the answer. A tick of another process (the lease moved,
# this one died) finds no POST in flight and sends again with the same delivery id.
WEBHOOK_WAIT_IN_TICK_SECONDS = 1.0

WEBHOOK_THREADS = 8


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
    records._recorded(
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
