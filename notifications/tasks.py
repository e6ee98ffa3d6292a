"""django-q2 tasks of notifications (called by these dotted names from the broker and from
drsorch/schedules.py)."""

from .services import notifications_deliver_due


def deliver_notifications():
    """Deliver the outbox's due notifications: every minute (drsorch/schedules.py) and right
    after a transaction wrote new rows. Safe to run in several workers at once: each row is
    claimed before it is sent; delivery is at least once."""
    return notifications_deliver_due()
