from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Notification channels (webhook, email, SNS), the outbox and its delivery."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        """Write outbox rows for notable events (inside their transaction) and add the outbox's
        gauges to /metrics."""
        from drsorch import metrics
        from executions.signals import notable_events

        from . import metrics as notification_metrics
        from .receivers import record_notable_events

        notable_events.connect(record_notable_events, dispatch_uid="notifications-outbox")
        metrics.register_collector(notification_metrics.collect_notification_metrics)
