"""Choices of the notifications app, declared once: channel kinds, webhook formats, and the
outbox's statuses with their groups and allowed transitions. Models refuse any other move."""

from django.db import models


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    EMAIL = "email", "Email"
    SNS = "sns", "Amazon SNS topic"


class WebhookFormat(models.TextChoices):
    JSON = "json", "JSON (drsorch's payload, signed)"
    SLACK = "slack", "Slack incoming webhook"
    TEAMS = "teams", "Microsoft Teams incoming webhook"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (gave up)"


NOTIFICATION_OPEN = frozenset({NotificationStatus.PENDING})
NOTIFICATION_FINISHED = frozenset({NotificationStatus.DELIVERED, NotificationStatus.FAILED})
NOTIFICATION_TRANSITIONS = {
    # pending -> pending is a failed attempt that will be tried again later.
    NotificationStatus.PENDING: {NotificationStatus.PENDING, NotificationStatus.DELIVERED, NotificationStatus.FAILED},
    NotificationStatus.DELIVERED: set(),
    NotificationStatus.FAILED: set(),
}

# The event of a notification a person sent from the channel's page ("Send test").
TEST_EVENT = "channel.test"
