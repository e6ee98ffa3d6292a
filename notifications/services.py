"""Business logic of notifications: the outbox writes, channel edits, claiming and delivering.

Outbox. `notifications_record` runs inside the transaction that made the change (the receiver
of executions.signals.notable_events): one query finds the channels for a whole batch of
events, and nothing more is read or written when none wants them. Rows commit or roll back with
the change; once committed, a worker is asked to deliver them at once (and the minute schedule
catches anything that enqueue missed).

Delivery is at least once. A worker claims one due row with a conditional UPDATE (pending,
due, unclaimed or claim expired), sends it, then records the attempt. A worker that dies
between sending and recording leaves its claim to expire (CLAIM_SECONDS) and the row is sent
again; a receiver that must not act twice can use the outbox row's id (`X-Drsorch-Delivery`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_q.tasks import async_task

from drsorch import metrics
from drsorch.webhooks import sending as webhook
from executions.notable import SUBSCRIPTION_OF, NotableEvent
from plans.models import RecoveryPlan, Target

from .choices import TEST_EVENT, ChannelKind, NotificationStatus, WebhookFormat
from .delivery import Sent, email, sns
from .delivery.formats import webhook_document
from .models import DeliveryAttempt, Notification, NotificationChannel
from .selectors import channel_subscriptions, execution_payloads

logger = logging.getLogger(__name__)

DELIVER_TASK = "notifications.tasks.deliver_notifications"
# A claimed row is left alone this long: far more than one send takes (webhook timeout 10 s).
CLAIM_SECONDS = 300
# One task stops claiming after this long, well inside django-q2's 90 s task timeout.
TASK_BUDGET_SECONDS = 60


def absolute_url(path: str) -> str:
    """`path` on drsorch's public address (DRSORCH_BASE_URL)."""
    return settings.DRSORCH_BASE_URL.rstrip("/") + path


def iso_now() -> str:
    return timezone.now().astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- The outbox --------------------------------------------------------------------------------

def _matches(subscription: tuple[set[str], set[int]], event: NotableEvent) -> bool:
    events, plans = subscription
    wanted = SUBSCRIPTION_OF.get(event.event, event.event)
    return wanted in events and (not plans or event.plan_id in plans)


def notifications_record(*, events: Iterable[NotableEvent]) -> int:
    """Write one outbox row per (channel that wants it, event), in the caller's transaction.

    One query finds the channels, whatever the number of events; when no channel matches,
    that is all. An event with a dedupe key is written at most once per channel. Never calls
    out and lets database errors through (the change and its notifications stand or fall
    together). Returns the rows written."""
    events = list(events)
    subscriptions = channel_subscriptions()
    wanted = [(pk, event) for event in events for pk, sub in subscriptions.items() if _matches(sub, event)]
    if not wanted:
        return 0
    executions = execution_payloads({e.execution_id for _, e in wanted if e.execution_id is not None})
    plan_ids = {e.plan_id for _, e in wanted if e.plan_id is not None}
    plans = dict(RecoveryPlan.objects.filter(pk__in=plan_ids).values_list("pk", "name")) if plan_ids else {}
    now = timezone.now()
    rows = []
    for channel_id, event in wanted:
        rows.append(Notification(
            channel_id=channel_id,
            event=event.event,
            plan_id=event.plan_id if event.plan_id in plans else None,
            execution_id=event.execution_id if str(event.execution_id) in executions else None,
            payload=_payload(event, executions, plans),
            dedupe_key=event.dedupe_key,
            created_at=now,
            next_attempt_at=now,
        ))
    # ignore_conflicts: a dedupe key already written (the same overdue plan notified again the
    # same day) writes nothing, without failing the caller's transaction.
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    transaction.on_commit(notifications_enqueue_delivery)
    return len(rows)


def _payload(event: NotableEvent, executions: dict, plans: dict) -> dict:
    """The contract's payload (without sent_at, added at each send)."""
    execution = executions.get(str(event.execution_id)) if event.execution_id is not None else None
    plan = None
    if event.plan_id in plans:
        plan = {
            **{k: v for k, v in (event.details or {}).items() if k not in ("id", "name", "url")},
            "id": event.plan_id,
            "name": plans[event.plan_id],
            "url": absolute_url(reverse("plans:plan_detail", args=[event.plan_id])),
        }
    payload = {"event": event.event, "execution": execution, "plan": plan}
    if execution is not None:
        payload["execution_url"] = absolute_url(reverse("executions:detail", args=[execution["id"]]))
    return payload


def notifications_enqueue_delivery() -> None:
    """Ask a worker to deliver now (after the commit that wrote rows). A broker hiccup is only
    logged: the minute schedule delivers the rows anyway."""
    try:
        async_task(DELIVER_TASK, task_name=f"deliver notifications {uuid.uuid4().hex[:8]}")
    except Exception:
        logger.exception("Could not enqueue the delivery of notifications")


# --- Channels ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChannelSpec:
    """What a person sets on a channel (the form's and the API's fields)."""

    name: str
    kind: str
    events: list[str]
    url: str = ""
    webhook_format: str = WebhookFormat.JSON
    address: str = ""
    topic_arn: str = ""
    target: Target | None = None
    plans: tuple[RecoveryPlan, ...] = ()
    enabled: bool = True


def channel_save(*, spec: ChannelSpec, channel: NotificationChannel | None = None,
                 secret: str | None = None) -> NotificationChannel:
    """Create or update a channel after full validation (fields named in the ValidationError:
    unknown event, the kind's missing destination, a private webhook URL, a bad ARN or address).
    `secret` None keeps the current secret; "" clears it."""
    channel = channel or NotificationChannel()
    channel.name = (spec.name or "").strip()
    channel.kind = spec.kind
    channel.events = list(spec.events or [])
    channel.enabled = spec.enabled
    channel.webhook_format = spec.webhook_format or WebhookFormat.JSON
    # Only the destination of its kind is kept: an email channel holds no stale URL.
    channel.url = (spec.url or "").strip() if spec.kind == ChannelKind.WEBHOOK else ""
    channel.address = (spec.address or "").strip() if spec.kind == ChannelKind.EMAIL else ""
    channel.topic_arn = (spec.topic_arn or "").strip() if spec.kind == ChannelKind.SNS else ""
    channel.target = spec.target if spec.kind == ChannelKind.SNS else None
    if spec.kind != ChannelKind.WEBHOOK:
        channel.secret = ""
    elif secret is not None:
        channel.secret = secret
    # Validated (the URL's host resolved) before the transaction, so no write lock waits on DNS.
    channel.full_clean()
    with transaction.atomic():
        channel.save()
        channel.plans.set(spec.plans or ())
    return channel


def channel_delete(*, channel: NotificationChannel) -> None:
    """Delete a channel with its outbox rows and their attempts."""
    channel.delete()


@transaction.atomic
def _test_row(channel: NotificationChannel) -> Notification:
    now = timezone.now()
    return Notification.objects.create(
        channel=channel, event=TEST_EVENT, created_at=now, next_attempt_at=now,
        payload={"event": TEST_EVENT, "execution": None, "plan": None,
                 "channel": {"id": channel.pk, "name": channel.name},
                 "message": f"A test of the notification channel '{channel.name}', sent from drsorch."},
    )


def channel_test(*, channel: NotificationChannel) -> DeliveryAttempt:
    """Send a test notification through the outbox now and return its attempt. A failed test
    is not retried: whoever pressed the button sees the result at once."""
    notification = _test_row(channel)
    token = uuid.uuid4().hex
    claimed = notifications_claim(token=token, pks=[notification.pk])
    if not claimed:  # a worker took it between the insert and the claim: wait for its attempt
        raise ValidationError("A worker is sending the test notification; see the channel's deliveries.")
    return notification_deliver(notification=claimed[0], token=token)


# --- Delivery ----------------------------------------------------------------------------------

def notifications_claim(*, token: str, limit: int = 1, now=None, pks=None) -> list[Notification]:
    """Claim up to `limit` due rows for `token` (or exactly the rows `pks`, if due): one
    conditional UPDATE, so two workers never hold one row at once. A claim expires after
    CLAIM_SECONDS, which is how the row of a worker that died gets sent again."""
    now = now or timezone.now()
    due = Notification.objects.due(now)
    if pks is not None:
        candidates = list(due.filter(pk__in=pks).values_list("pk", flat=True))
    else:
        candidates = list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
    if not candidates:
        return []
    # The WHERE is checked again by the UPDATE itself: a row another worker claimed since the
    # SELECT above no longer matches, and is not claimed twice.
    Notification.objects.due(now).filter(pk__in=candidates).update(
        claim_token=token, claimed_until=now + timedelta(seconds=CLAIM_SECONDS)
    )
    return list(Notification.objects.select_related("channel", "channel__target").filter(
        pk__in=candidates, claim_token=token
    ).order_by("next_attempt_at", "pk"))


def _send(notification: Notification) -> Sent:
    channel = notification.channel
    payload = {**notification.payload, "sent_at": iso_now()}
    if channel.kind == ChannelKind.WEBHOOK:
        body = webhook.encode(webhook_document(channel.webhook_format, payload))
        return webhook.post(url=channel.url, body=body, secret=channel.secret, delivery_id=notification.pk)
    if channel.kind == ChannelKind.EMAIL:
        return email.send(address=channel.address, payload=payload)
    if channel.kind == ChannelKind.SNS:
        return sns.publish(target=channel.target, topic_arn=channel.topic_arn, payload=payload)
    return Sent(ok=False, error=f"Unknown channel kind {channel.kind!r}.")


def notification_deliver(*, notification: Notification, token: str) -> DeliveryAttempt:
    """Send a row this worker claimed (with `token`) and record the attempt: delivered, or
    retried with exponential backoff, or given up once 24 hours have passed since the event
    (a test notification is never retried)."""
    started = time.monotonic()
    try:
        sent = _send(notification)
    except Exception as exc:  # a bug in a sender must not leave the row claimed and untried
        logger.exception("Sending notification %s failed", notification.pk)
        sent = Sent(ok=False, error=f"{type(exc).__name__}: {exc}"[:1000])
    duration_ms = int((time.monotonic() - started) * 1000)
    at = timezone.now()
    with transaction.atomic():
        attempt = DeliveryAttempt.objects.create(
            notification=notification, at=at, ok=sent.ok, status_code=sent.status_code, error=sent.error,
            duration_ms=max(0, duration_ms),
        )
        if sent.ok:
            notification.mark_delivered(at=at)
        else:
            notification.mark_failed_attempt(at=at, error=sent.error or "Failed.", token=token,
                                             give_up=notification.event == TEST_EVENT)
    if sent.ok:
        outcome = "delivered"
    else:
        outcome = "failed" if notification.status == NotificationStatus.FAILED else "retry"
    metrics.counter_inc("notification_deliveries", {"kind": notification.channel.kind, "outcome": outcome})
    return attempt


def notifications_deliver_due(*, budget_seconds: float = TASK_BUDGET_SECONDS) -> dict:
    """Deliver every due row, one claim at a time, until none is due or the budget is spent.
    Safe in several workers at once and after a crash at any line (see the module's note)."""
    token = uuid.uuid4().hex
    started = time.monotonic()
    delivered = failed = 0
    while time.monotonic() - started < budget_seconds:
        claimed = notifications_claim(token=token)
        if not claimed:
            break
        attempt = notification_deliver(notification=claimed[0], token=token)
        delivered += attempt.ok
        failed += not attempt.ok
    return {"delivered": delivered, "failed_attempts": failed}
