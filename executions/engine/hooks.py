"""The hook point for "an execution or a wave changed status".

Whoever changes a status (a tick's bulk save, or a service acting for a person) collects
`StatusChange`s and hands them to `announce_status_changes`, which sends the signals of
`executions.signals` once the transaction that wrote them has committed. Receivers
(logs, future wave actions) subscribe there without touching the state machine. The
execution lifecycle events (executions.notable) go out at once, inside the transaction, so
the notifications outbox commits with the change it reports.

Imports nothing from the engine: every other module may use it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction

from executions.models import Execution, WaveRun
from executions.notable import lifecycle_event, notable_events_send
from executions.signals import execution_status_changed, wave_status_changed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StatusChange:
    """One status change of an execution or a wave run; `old_status` is None for a new row."""

    model: type[Execution] | type[WaveRun]
    pk: object
    execution_id: object
    old_status: str | None
    new_status: str
    plan_id: int | None = None


def status_change(obj: Execution | WaveRun, old_status: str | None) -> StatusChange:
    """The change of `obj` from `old_status` to the status it has now."""
    is_execution = isinstance(obj, Execution)
    return StatusChange(
        model=type(obj),
        pk=obj.pk,
        execution_id=obj.pk if is_execution else obj.execution_id,
        old_status=old_status,
        new_status=obj.status,
        plan_id=obj.plan_id if is_execution else None,
    )


def announce_status_changes(changes: Iterable[StatusChange]) -> None:
    """Send a signal for each change, in order, after the current transaction commits (at
    once outside a transaction): a receiver never hears of a change that was rolled back.
    The lifecycle events among them (started, waiting for approval, finished) are sent now,
    inside the transaction (executions.signals.notable_events)."""
    changes = list(changes)
    if changes:
        notable_events_send(
            event
            for change in changes
            if change.model is Execution
            and (
                event := lifecycle_event(
                    execution_id=change.execution_id,
                    plan_id=change.plan_id,
                    old_status=change.old_status,
                    new_status=change.new_status,
                )
            )
        )
        transaction.on_commit(lambda: _send(changes))


def _send(changes: list[StatusChange]) -> None:
    for change in changes:
        signal = execution_status_changed if change.model is Execution else wave_status_changed
        # send_robust: the rows are committed already, so a failing receiver (a mail server
        # down) must not fail the tick or the request that made the change.
        for receiver, result in signal.send_robust(
            sender=change.model,
            pk=change.pk,
            execution_id=change.execution_id,
            old_status=change.old_status,
            new_status=change.new_status,
        ):
            if isinstance(result, Exception):
                logger.error(
                    "Status-change receiver %r failed for %s %s",
                    receiver,
                    change.model.__name__,
                    change.pk,
                    exc_info=result,
                )
