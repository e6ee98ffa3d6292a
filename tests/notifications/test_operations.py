"""Roles, the admin (outbox read only), /metrics' outbox gauges and the schedule."""

import pytest
from django.contrib.auth.models import Group

from drsorch import metrics
from drsorch.schedules import SCHEDULES
from executions.notable import NotableEvent, notable_events_send
from notifications.models import Notification
from notifications.tasks import deliver_notifications

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def perms(role):
    return {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name=role).permissions.all()}


def test_planners_edit_channels_and_everyone_reads_deliveries():
    read = {"notifications.view_notificationchannel", "notifications.view_notification",
            "notifications.view_deliveryattempt"}
    edit = {f"notifications.{a}_notificationchannel" for a in ("add", "change", "delete")}
    for role in ("Viewer", "Operator", "Commander"):
        assert read <= perms(role) and not edit & perms(role)
    assert read | edit <= perms("Planner")
    assert not {p for p in perms("Planner") if p.startswith("notifications.") and "_notification" in p
                and not p.endswith("channel") and not p.split(".")[1].startswith("view_")}


def test_the_migration_and_roles_sync_agree():
    from drsorch.roles import ROLES, roles_sync

    before = {role: perms(role) for role in ROLES}
    roles_sync()
    assert {role: perms(role) for role in ROLES} == before


def test_the_admin_shows_outbox_rows_read_only(login, make_channel):
    make_channel("Ops", events=["drill.overdue"])
    notable_events_send([NotableEvent(event="drill.overdue")])
    row = Notification.objects.get()
    admin = login(superuser=True)
    assert admin.get(f"/admin/notifications/notification/{row.pk}/change/").status_code == 200
    assert admin.get("/admin/notifications/notification/add/").status_code == 403
    response = admin.post(f"/admin/notifications/notification/{row.pk}/change/", {"status": "delivered"})
    assert response.status_code == 403
    row.refresh_from_db()
    assert row.status == "pending"
    assert admin.get(f"/admin/notifications/notification/{row.pk}/delete/").status_code == 403


def test_the_admin_saves_channels_through_the_service(login):
    admin = login(superuser=True)
    response = admin.post("/admin/notifications/notificationchannel/add/", {
        "name": "Admin hook", "kind": "webhook", "url": "http://127.0.0.1/x", "webhook_format": "json",
        "events": ["drill.overdue"], "enabled": "on",
    })
    assert response.status_code == 200 and "DRSORCH_WEBHOOK_ALLOW_PRIVATE" in response.content.decode()
    response = admin.post("/admin/notifications/notificationchannel/add/", {
        "name": "Admin mail", "kind": "email", "address": "ops@example.com", "webhook_format": "json",
        "url": "https://93.184.215.14/stale", "events": ["drill.overdue"], "enabled": "on", "secret": "x",
    })
    assert response.status_code == 302
    from notifications.models import NotificationChannel

    channel = NotificationChannel.objects.get()
    assert channel.url == "" and channel.secret == ""  # only the destination of its kind is kept


def test_metrics_show_the_outbox_backlog_and_deliveries(client, clock, make_channel, settings):
    metrics.discard_pending()
    make_channel("Mail", kind="email", address="ops@example.com", events=["drill.overdue"])
    notable_events_send([NotableEvent(event="drill.overdue")])
    clock.shift(90)
    text = client.get("/metrics").content.decode()
    assert "drsorch_notification_outbox_backlog 1.0" in text
    assert "drsorch_notification_outbox_oldest_pending_seconds 90.0" in text
    deliver_notifications()
    metrics.flush()
    text = client.get("/metrics").content.decode()
    assert "drsorch_notification_outbox_backlog 0.0" in text
    assert "drsorch_notification_outbox_oldest_pending_seconds 0.0" in text
    assert 'drsorch_notification_deliveries_total{kind="email",outcome="delivered"} 1.0' in text


def test_delivery_runs_every_minute():
    (schedule,) = [s for s in SCHEDULES if s["func"] == "notifications.tasks.deliver_notifications"]
    assert schedule["minutes"] == 1


def test_a_target_an_sns_channel_publishes_with_cannot_be_deleted(sandbox_target, make_channel, api):
    from .conftest import TOPIC_ARN

    make_channel("Topic", kind="sns", topic_arn=TOPIC_ARN, target=sandbox_target, events=["drill.overdue"])
    response = api("Planner").delete(f"/api/v1/targets/{sandbox_target.pk}/")
    assert response.status_code == 409
    assert "notification channel 'Topic'" in response.json()["detail"]
