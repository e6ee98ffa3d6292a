"""The outbox's scrape-time gauges, registered with the core in NotificationsConfig.ready (one query)."""

from collections.abc import Iterator

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from .selectors import outbox_backlog


def collect_notification_metrics() -> Iterator[Metric]:
    """Yield drsorch_notification_outbox_backlog and drsorch_notification_outbox_oldest_pending_seconds."""
    pending, oldest_seconds = outbox_backlog(timezone.now())
    yield GaugeMetricFamily(
        "drsorch_notification_outbox_backlog", "Notifications waiting to be delivered (pending outbox rows).",
        value=pending,
    )
    yield GaugeMetricFamily(
        "drsorch_notification_outbox_oldest_pending_seconds",
        "Age of the oldest pending notification (0 when none waits).",
        value=oldest_seconds,
    )
