"""Signals sent when an execution or a wave run changes status, whoever changed it (the
engine's tick or a service acting for a person). Subscribe here for notifications or
actions around waves; the state machine needs no change for it.

Both are sent by `executions.engine.hooks.announce_status_changes`, once the transaction that
saved the change has committed, one send per change in the order they happened (a tick may
move a wave through several statuses). Receivers are called with `send_robust`: an exception
in one is logged and changes nothing.

execution_status_changed
    sender: the `Execution` class. Keyword arguments: `pk` (the execution's pk),
    `execution_id` (the same pk), `old_status` (None when the execution was just created)
    and `new_status` (an `ExecutionStatus` value).

wave_status_changed
    sender: the `WaveRun` class. Keyword arguments: `pk` (the wave run's pk), `execution_id`
    (its execution's pk), `old_status` (None when the wave run was just created) and
    `new_status` (a `WaveStatus` value).

notable_events
    Sent *inside* the transaction that made the change (unlike the two above), so a receiver's
    writes (the notifications outbox) commit or roll back with it: a notification is never
    lost after a commit, and never sent for a change that was rolled back. A receiver must
    therefore only write to the database, never call out, and must not swallow database
    errors. sender: the `NotableEvent` class. Keyword argument: `events`, a non-empty list of
    `NotableEvent` (executions.notable), batched per transaction so that a receiver pays one
    query per tick, not one per execution.
"""

from django.dispatch import Signal

execution_status_changed = Signal()
wave_status_changed = Signal()
notable_events = Signal()
