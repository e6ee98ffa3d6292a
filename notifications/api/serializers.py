"""Serializers of notification channels and deliveries. Writes go through
notifications.services.channel_save, whose ValidationError names the field at fault."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from drsorch.api import IdRelatedField
from executions.notable import SUBSCRIBABLE_EVENTS
from plans.models import RecoveryPlan, Target

from ..choices import ChannelKind, WebhookFormat
from ..models import DeliveryAttempt, Notification, NotificationChannel
from ..services import ChannelSpec, channel_save


@extend_schema_field({"type": "array", "items": {"type": "string", "enum": list(SUBSCRIBABLE_EVENTS)},
                      "minItems": 1})
class EventsField(serializers.ListField):
    child = serializers.CharField(max_length=64)

    def __init__(self, **kwargs):
        super().__init__(allow_empty=False, max_length=len(SUBSCRIBABLE_EVENTS) * 2, **kwargs)

    def to_internal_value(self, data):
        events = super().to_internal_value(data)
        unknown = [event for event in events if event not in SUBSCRIBABLE_EVENTS]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown event {', '.join(repr(e[:64]) for e in unknown[:5])}; choose from "
                f"{', '.join(SUBSCRIBABLE_EVENTS)}."
            )
        return events


class NotificationChannelSerializer(serializers.ModelSerializer):
    """A notification channel. `secret` is write-only: `has_secret` says whether one is set."""

    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    url = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    webhook_format = serializers.ChoiceField(choices=WebhookFormat.choices, required=False, default=WebhookFormat.JSON)
    address = serializers.CharField(max_length=254, required=False, allow_blank=True, default="")
    topic_arn = serializers.CharField(max_length=400, required=False, allow_blank=True, default="")
    target = IdRelatedField(queryset=Target.objects.all(), required=False, allow_null=True, default=None)
    secret = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=200, trim_whitespace=False,
        help_text="Webhooks: the HMAC-SHA256 key of X-Drsorch-Signature. Never returned; omit it on an update to "
        "keep the current one, send \"\" to remove it.",
    )
    has_secret = serializers.SerializerMethodField()
    events = EventsField()
    plans = IdRelatedField(queryset=RecoveryPlan.objects.all(), many=True, required=False, default=list,
                           help_text="Only these plans' events; empty: every plan.")
    enabled = serializers.BooleanField(required=False, default=True)

    class Meta:
        model = NotificationChannel
        fields = ["id", "name", "kind", "url", "webhook_format", "secret", "has_secret", "address", "topic_arn",
                  "target", "events", "plans", "enabled", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {"name": {"validators": []}}  # the model's message, through full_clean

    def get_has_secret(self, channel) -> bool:
        return bool(channel.secret)

    def _spec(self, data):
        current = self.instance
        def value(name, default):
            if name in data:
                return data[name]
            if current is not None and self.partial:
                return getattr(current, name)
            return default
        plans = data["plans"] if "plans" in data else (
            list(current.plans.all()) if current is not None and self.partial else [])
        return ChannelSpec(
            name=value("name", ""), kind=value("kind", ""), events=value("events", []), url=value("url", ""),
            webhook_format=value("webhook_format", WebhookFormat.JSON), address=value("address", ""),
            topic_arn=value("topic_arn", ""), target=value("target", None), plans=tuple(plans),
            enabled=value("enabled", True),
        )

    def create(self, validated_data):
        return channel_save(spec=self._spec(validated_data), secret=validated_data.get("secret"))

    def update(self, channel, validated_data):
        secret = validated_data.get("secret") if "secret" in validated_data else None
        return channel_save(spec=self._spec(validated_data), channel=channel, secret=secret)


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    """One try to deliver: when, whether it worked, the HTTP status (webhooks) and the error."""

    class Meta:
        model = DeliveryAttempt
        fields = ["at", "ok", "status_code", "error", "duration_ms"]


class NotificationSerializer(serializers.ModelSerializer):
    """One delivery of the outbox with every attempt (oldest first). `payload` is what was
    sent, without `sent_at` (added at each send)."""

    channel = serializers.SerializerMethodField()
    execution = serializers.UUIDField(source="execution_id", allow_null=True, read_only=True)
    plan = serializers.IntegerField(source="plan_id", allow_null=True, read_only=True)
    attempts = DeliveryAttemptSerializer(source="delivery_attempts.all", many=True, read_only=True)
    attempt_count = serializers.IntegerField(source="attempts", read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "channel", "event", "plan", "execution", "status", "attempt_count", "next_attempt_at",
                  "last_error", "created_at", "delivered_at", "dedupe_key", "payload", "attempts"]
        read_only_fields = fields

    def get_channel(self, notification) -> dict:
        return {"id": notification.channel_id, "name": notification.channel.name, "kind": notification.channel.kind}


class ChannelTestSerializer(serializers.Serializer):
    """The result of a test notification: its delivery and the attempt."""

    ok = serializers.BooleanField()
    attempt = DeliveryAttemptSerializer()
    notification = NotificationSerializer()
