"""Notification channels, the outbox of notifications to deliver, and every delivery attempt.

A notable event (executions.notable) becomes one `Notification` row per channel that wants it,
written in the transaction that made the change (receivers.py), so a notification is never
lost after a commit nor sent for a change that was rolled back. The worker delivers the rows
(services.notifications_deliver_due) and records each try as a `DeliveryAttempt`.
"""

import re
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from drsorch.webhooks.addresses import PrivateAddressError, UnresolvableHost, check_webhook_url
from executions.notable import SUBSCRIBABLE_EVENTS

from .choices import (
    NOTIFICATION_FINISHED,
    NOTIFICATION_TRANSITIONS,
    ChannelKind,
    NotificationStatus,
    WebhookFormat,
)

# How long an undelivered notification is retried before it is given up (status failed).
DELIVERY_WINDOW = timedelta(hours=24)
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600

topic_arn_validator = RegexValidator(
    r"\Aarn:aws[a-z-]*:sns:[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?\Z",
    "Enter an SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:drsorch.",
)
TOPIC_ARN_RE = re.compile(r"\Aarn:aws[a-z-]*:sns:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):")


def validate_events(value):
    """A non-empty list of distinct subscribable event names (executions.notable)."""
    if not isinstance(value, list) or not value:
        raise ValidationError(
            "Choose at least one event: %(events)s.", params={"events": ", ".join(SUBSCRIBABLE_EVENTS)}
        )
    unknown = [event for event in value if not isinstance(event, str) or event not in SUBSCRIBABLE_EVENTS]
    if unknown:
        raise ValidationError(
            "Unknown event %(unknown)s; choose from %(events)s.",
            params={"unknown": ", ".join(repr(e)[:80] for e in unknown[:5]), "events": ", ".join(SUBSCRIBABLE_EVENTS)},
        )
    if len(set(value)) != len(value):
        raise ValidationError("Name each event once.")


class NotificationChannel(models.Model):
    """Where notifications go: a webhook (signed JSON, or Slack/Teams format), an email address
    or an SNS topic, for the events it subscribes to, of some plans (none chosen: every plan)."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    url = models.CharField(
        "URL", max_length=2000, blank=True, help_text="Webhooks: the http(s) URL drsorch POSTs each event to."
    )
    webhook_format = models.CharField(
        max_length=10, choices=WebhookFormat.choices, default=WebhookFormat.JSON,
        help_text="Webhooks: drsorch's JSON payload, or a Slack or Microsoft Teams message.",
    )
    secret = models.CharField(
        max_length=200, blank=True,
        help_text="Webhooks: signs each body (X-Drsorch-Signature: sha256=<HMAC-SHA256 hex>). Never shown again.",
    )
    address = models.CharField(
        "email address", max_length=254, blank=True, validators=[EmailValidator()],
        help_text="Email: the address every notification is sent to.",
    )
    topic_arn = models.CharField(
        "topic ARN", max_length=400, blank=True, validators=[topic_arn_validator],
        help_text="SNS: the topic drsorch publishes to.",
    )
    target = models.ForeignKey(
        "plans.Target", null=True, blank=True, on_delete=models.PROTECT, related_name="notification_channels",
        help_text="SNS: the target whose credentials (and role) publish to the topic.",
    )
    events = models.JSONField(default=list, validators=[validate_events], help_text="The events it is sent.")
    plans = models.ManyToManyField(
        "plans.RecoveryPlan", blank=True, related_name="notification_channels",
        help_text="Only these plans' events; none chosen: every plan.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("notifications:channel_detail", args=[self.pk])

    @property
    def destination(self) -> str:
        """Where it sends, for lists: the URL's host, the address or the topic."""
        if self.kind == ChannelKind.WEBHOOK:
            return self.url
        if self.kind == ChannelKind.EMAIL:
            return self.address
        return self.topic_arn

    def clean(self):
        errors = {}
        required = {ChannelKind.WEBHOOK: "url", ChannelKind.EMAIL: "address", ChannelKind.SNS: "topic_arn"}
        field = required.get(self.kind)
        if field and not getattr(self, field):
            label = self._meta.get_field(field).verbose_name
            errors[field] = f"A {self.get_kind_display().lower()} channel needs its {label}."
        if self.kind == ChannelKind.SNS and not self.target_id:
            errors["target"] = "An SNS channel needs the target whose credentials publish to the topic."
        elif self.kind == ChannelKind.SNS and self.topic_arn and "topic_arn" not in errors:
            # The target's client publishes through its own region's SNS endpoint, which knows
            # only that region's topics (another account's topic is fine: its policy decides).
            match = TOPIC_ARN_RE.match(self.topic_arn)
            if match and match["region"] != self.target.region:
                errors["topic_arn"] = (
                    f"The topic is in {match['region']}, but target '{self.target.name}' publishes in "
                    f"{self.target.region}; use a topic of that region or a target of the topic's region."
                )
        if self.kind == ChannelKind.WEBHOOK and self.url and "url" not in errors:
            try:
                check_webhook_url(self.url)
            except UnresolvableHost:
                pass  # DNS may be down now; the send resolves and checks again
            except (PrivateAddressError, ValueError) as exc:
                errors["url"] = str(exc)
        if errors:
            raise ValidationError(errors)


class NotificationQuerySet(models.QuerySet):
    """Notifications by status group."""

    def due(self, now):
        """Pending rows whose next attempt is due and that no live worker has claimed."""
        return self.filter(status=NotificationStatus.PENDING, next_attempt_at__lte=now).filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
        )


class Notification(models.Model):
    """One event to deliver to one channel: the outbox row, written with the change it reports.

    `payload` is the contract's payload as it was when the event happened (sent_at is added at
    each send). Delivery is at least once: a worker that dies after sending and before
    recording leaves its claim to expire, and the row is sent again."""

    TRANSITIONS = NOTIFICATION_TRANSITIONS

    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=64)
    plan = models.ForeignKey(
        "plans.RecoveryPlan", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    execution = models.ForeignKey(
        "executions.Execution", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload = models.JSONField(default=dict)
    dedupe_key = models.CharField(max_length=200, null=True, blank=True)
    status = models.CharField(max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A worker claims a row for a while before sending it (services.notifications_claim): no
    # other worker sends it meanwhile, and if the worker dies the claim simply expires.
    claim_token = models.CharField(max_length=64, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        constraints = [
            # An event with a dedupe key (drill.overdue once a day) is written once per channel.
            models.UniqueConstraint(fields=["channel", "dedupe_key"], name="notification_dedupe_per_channel"),
        ]

    def __str__(self):
        return f"{self.event} to {self.channel_id} ({self.status})"

    def get_absolute_url(self):
        return reverse("notifications:channel_detail", args=[self.channel_id]) + f"#notification-{self.pk}"

    @property
    def is_finished(self):
        return self.status in NOTIFICATION_FINISHED

    @property
    def give_up_at(self):
        return self.created_at + DELIVERY_WINDOW

    def check_transition(self, status):
        if status != self.status and status not in self.TRANSITIONS.get(self.status, ()):
            raise InvalidTransition(f"Notification {self.pk} cannot go from {self.status} to {status}.")

    def retry_delay(self, attempts: int) -> timedelta:
        """Exponential backoff after `attempts` failed attempts: 30 s, 60 s, ... capped at 1 h."""
        return timedelta(seconds=min(FIRST_RETRY_SECONDS * 2 ** max(0, attempts - 1), MAX_RETRY_SECONDS))

    def mark_delivered(self, *, at) -> bool:
        """Record the delivery (one conditional UPDATE); False if the row was no longer pending."""
        self.check_transition(NotificationStatus.DELIVERED)
        updated = Notification.objects.filter(pk=self.pk, status=NotificationStatus.PENDING).update(
            status=NotificationStatus.DELIVERED, delivered_at=at, attempts=F("attempts") + 1, last_error="",
            claim_token="", claimed_until=None,
        )
        if updated:
            self.status, self.delivered_at, self.attempts = NotificationStatus.DELIVERED, at, self.attempts + 1
        return bool(updated)

    def mark_failed_attempt(self, *, at, error: str, token: str, give_up: bool = False) -> bool:
        """Record a failed attempt: retry later with backoff, or give up (failed) once the
        delivery window is over. Only the worker still holding the claim changes the row."""
        attempts = self.attempts + 1
        give_up = give_up or at >= self.give_up_at
        status = NotificationStatus.FAILED if give_up else NotificationStatus.PENDING
        self.check_transition(status)
        next_attempt_at = self.next_attempt_at if give_up else min(at + self.retry_delay(attempts), self.give_up_at)
        updated = Notification.objects.filter(
            pk=self.pk, status=NotificationStatus.PENDING, claim_token=token
        ).update(
            status=status, attempts=F("attempts") + 1, last_error=error[:4000], next_attempt_at=next_attempt_at,
            claim_token="", claimed_until=None,
        )
        if updated:
            self.status, self.attempts, self.last_error = status, attempts, error[:4000]
            self.next_attempt_at = next_attempt_at
        return bool(updated)


class InvalidTransition(Exception):
    """A status change of a notification that NOTIFICATION_TRANSITIONS does not allow."""


class DeliveryAttempt(models.Model):
    """One try to deliver a notification: when, whether it worked, the HTTP status (webhooks)
    and the error, so every failure stays visible."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="delivery_attempts")
    at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self):
        return f"{'ok' if self.ok else 'failed'} at {self.at:%Y-%m-%d %H:%M:%S}"
