"""The admin of notifications: channels are saved and deleted through the services; outbox
rows and their attempts are read only (the worker alone changes them)."""

from django.contrib import admin
from django.db import transaction

from . import services
from .forms import NotificationChannelAdminForm
from .models import DeliveryAttempt, Notification, NotificationChannel


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    form = NotificationChannelAdminForm
    list_display = ["name", "kind", "destination", "enabled", "updated_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "url", "address", "topic_arn"]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        spec = services.ChannelSpec(
            name=data["name"], kind=data["kind"], events=list(data["events"]), url=data.get("url", ""),
            webhook_format=data.get("webhook_format") or "json", address=data.get("address", ""),
            topic_arn=data.get("topic_arn", ""), target=data.get("target"), plans=tuple(data.get("plans") or ()),
            enabled=data.get("enabled", True),
        )
        saved = services.channel_save(spec=spec, channel=obj if change else None, secret=form.new_secret())
        obj.pk = saved.pk

    def save_related(self, request, form, formsets, change):
        pass  # channel_save set the plans

    def delete_model(self, request, obj):
        services.channel_delete(channel=obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for channel in queryset:
                services.channel_delete(channel=channel)


class DeliveryAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    fields = ["at", "ok", "status_code", "error", "duration_ms"]
    readonly_fields = fields


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["pk", "event", "channel", "status", "attempts", "next_attempt_at", "created_at", "delivered_at"]
    list_filter = ["status", "event", "channel"]
    readonly_fields = ["channel", "event", "plan", "execution", "payload", "dedupe_key", "status", "attempts",
                       "next_attempt_at", "claim_token", "claimed_until", "last_error", "created_at", "delivered_at"]
    inlines = [DeliveryAttemptInline]
    date_hierarchy = "created_at"


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["notification", "at", "ok", "status_code", "duration_ms"]
    list_filter = ["ok"]
    readonly_fields = ["notification", "at", "ok", "status_code", "error", "duration_ms"]
