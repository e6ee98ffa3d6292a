"""Reads of the notifications app: the channels an event goes to, the execution JSON of a
payload, and the lists the pages and the API show."""

from django.db.models import Count, Max, Min, Prefetch, Q, QuerySet

from executions.api.serializers import ExecutionSerializer
from executions.selectors import executions_for_json

from .choices import NotificationStatus
from .models import DeliveryAttempt, Notification, NotificationChannel


def channel_subscriptions() -> dict[int, tuple[set[str], set[int]]]:
    """Every enabled channel's subscribed events and plans (empty: every plan), in ONE query:
    the outbox receiver runs this once per batch of events, inside the engine's transaction."""
    subscriptions: dict[int, tuple[set[str], set[int]]] = {}
    for pk, events, plan_id in NotificationChannel.objects.filter(enabled=True).values_list("pk", "events", "plans"):
        channel_events, plans = subscriptions.setdefault(pk, (set(events or ()), set()))
        if plan_id is not None:
            plans.add(plan_id)
    return subscriptions


def execution_payloads(execution_ids) -> dict[str, dict]:
    """The execution JSON (what GET /api/v1/executions/<id>/ answers) of each id, by str(id)."""
    if not execution_ids:
        return {}
    executions = executions_for_json().filter(pk__in=list(execution_ids))
    return {str(execution.pk): ExecutionSerializer(execution).data for execution in executions}


def channels_for_list() -> QuerySet[NotificationChannel]:
    """Channels with their plans and delivery counts (the channel list)."""
    return NotificationChannel.objects.select_related("target").prefetch_related("plans").annotate(
        pending_count=Count("notifications", filter=Q(notifications__status=NotificationStatus.PENDING)),
        failed_count=Count("notifications", filter=Q(notifications__status=NotificationStatus.FAILED)),
        last_delivered_at=Max("notifications__delivered_at"),
    ).order_by("name")


def notifications_with_attempts() -> QuerySet[Notification]:
    """Outbox rows with their channel and every attempt (oldest first), newest row first."""
    return Notification.objects.select_related("channel").prefetch_related(
        Prefetch("delivery_attempts", queryset=DeliveryAttempt.objects.order_by("at", "pk"))
    ).order_by("-created_at", "-pk")


def outbox_backlog(now) -> tuple[int, float]:
    """Pending rows and the age in seconds of the oldest (0 when none), for /metrics."""
    stats = Notification.objects.filter(status=NotificationStatus.PENDING).aggregate(
        count=Count("pk"), oldest=Min("created_at")
    )
    oldest = stats["oldest"]
    return stats["count"], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
