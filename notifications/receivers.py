"""The receiver of executions.signals.notable_events: the outbox rows, in the sender's transaction."""

from .services import notifications_record


def record_notable_events(sender, *, events, **kwargs):
    """Write the outbox rows of `events` (services.notifications_record). Database errors are
    not caught: the change and its notifications commit or roll back together."""
    notifications_record(events=events)
