"""Notable events: what a person watching the DR plans would want to be told about.

Execution lifecycle events come from status changes (engine.hooks); the unattended worker
sends the plan-level ones (readiness.degraded, drill.overdue, drill_instances.expiring). They
are sent with `executions.signals.notable_events` inside the transaction that made the
change; the notifications app writes its outbox rows there. This module imports nothing of
the engine, so every part of executions may use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from executions.choices import EXECUTION_TERMINAL, ExecutionStatus
from executions.signals import notable_events

EXECUTION_STARTED = "execution.started"
EXECUTION_WAITING_APPROVAL = "execution.waiting_approval"
EXECUTION_FINISHED = "execution.finished"
READINESS_DEGRADED = "readiness.degraded"
# Delivered to the channels that subscribe to readiness.degraded: the all-clear of the same
# watch, sent once when a degraded plan is ready again.
READINESS_RECOVERED = "readiness.recovered"
DRILL_OVERDUE = "drill.overdue"
DRILL_INSTANCES_EXPIRING = "drill_instances.expiring"

# What a notification channel may subscribe to (contract: Notifications).
SUBSCRIBABLE_EVENTS = (
    EXECUTION_STARTED,
    EXECUTION_WAITING_APPROVAL,
    EXECUTION_FINISHED,
    READINESS_DEGRADED,
    DRILL_OVERDUE,
    DRILL_INSTANCES_EXPIRING,
)
# The subscription that delivers an event which is not itself subscribable.
SUBSCRIPTION_OF = {READINESS_RECOVERED: READINESS_DEGRADED}


@dataclass(frozen=True)
class NotableEvent:
    """One event worth telling people about. `dedupe_key`, when given, makes the event
    once-only per channel (drill.overdue once a day: "drill.overdue:<plan>:<date>")."""

    event: str
    plan_id: int | None = None
    execution_id: object | None = None
    details: dict = field(default_factory=dict)
    dedupe_key: str | None = None


def notable_events_send(events: Iterable[NotableEvent]) -> None:
    """Send `events` to the receivers now, inside the caller's transaction."""
    events = list(events)
    if events:
        notable_events.send(sender=NotableEvent, events=events)


def lifecycle_event(*, execution_id, plan_id, old_status: str | None, new_status: str) -> NotableEvent | None:
    """The lifecycle event an execution's status change makes, if any: created (started),
    waiting at a gate, or ended (a retry that ends again is finished again)."""
    if old_status is None:
        event = EXECUTION_STARTED
    elif new_status == ExecutionStatus.WAITING_APPROVAL:
        event = EXECUTION_WAITING_APPROVAL
    elif new_status in EXECUTION_TERMINAL and old_status not in EXECUTION_TERMINAL:
        event = EXECUTION_FINISHED
    else:
        return None
    return NotableEvent(event=event, plan_id=plan_id, execution_id=execution_id, details={"status": new_status})
