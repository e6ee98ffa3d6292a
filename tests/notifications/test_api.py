"""The channels' and deliveries' API: roles, the write-only secret, field errors, the test action."""

import pytest

from executions.notable import NotableEvent, notable_events_send
from notifications.models import NotificationChannel
from notifications.tasks import deliver_notifications

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

URL = "/api/v1/notification-channels/"
WEBHOOK = {"name": "Ops hook", "kind": "webhook", "url": "https://93.184.215.14/hook", "secret": "top-secret",
           "webhook_format": "slack", "events": ["execution.started", "execution.finished"]}


def test_a_planner_creates_and_the_secret_is_never_returned(api):
    planner = api("Planner")
    response = planner.post(URL, WEBHOOK, format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert "secret" not in created and created["has_secret"] is True
    assert created["plans"] == [] and created["enabled"] is True and created["webhook_format"] == "slack"
    channel = NotificationChannel.objects.get()
    assert channel.secret == "top-secret"
    shown = api("Viewer").get(f"{URL}{channel.pk}/").json()
    assert "secret" not in shown and "top-secret" not in str(shown)

    # An update without `secret` keeps it; "" removes it.
    assert planner.patch(f"{URL}{channel.pk}/", {"name": "Renamed"}, format="json").status_code == 200
    channel.refresh_from_db()
    assert channel.secret == "top-secret" and channel.name == "Renamed"
    assert planner.patch(f"{URL}{channel.pk}/", {"secret": ""}, format="json").json()["has_secret"] is False


def test_viewers_read_and_may_not_write(api, make_channel):
    channel = make_channel("Ops")
    viewer = api("Viewer")
    assert viewer.get(URL).status_code == 200
    assert viewer.get("/api/v1/notifications/").status_code == 200
    assert viewer.post(URL, WEBHOOK, format="json").status_code == 403
    assert viewer.patch(f"{URL}{channel.pk}/", {"name": "x"}, format="json").status_code == 403
    assert viewer.delete(f"{URL}{channel.pk}/").status_code == 403
    assert viewer.post(f"{URL}{channel.pk}/test/").status_code == 403
    assert api("Operator").post(URL, WEBHOOK, format="json").status_code == 403
    assert api(None).get(URL).status_code == 401


def test_plans_limit_a_channel(api, make_plan, clock):
    plan = make_plan("Billing", [("Database", ["db-01"], {})])
    response = api("Planner").post(URL, {**WEBHOOK, "plans": [plan.pk]}, format="json")
    assert response.status_code == 201 and response.json()["plans"] == [plan.pk]


@pytest.mark.parametrize(("change", "field"), [
    ({"events": ["execution.exploded"]}, "events"),
    ({"events": []}, "events"),
    ({"events": "execution.started"}, "events"),
    ({"kind": "pigeon"}, "kind"),
    ({"url": ""}, "url"),
    ({"url": "http://10.0.0.7/hook"}, "url"),
    ({"kind": "email"}, "address"),
    ({"kind": "email", "address": "nobody"}, "address"),
    ({"kind": "sns"}, "topic_arn"),
    ({"webhook_format": "xml"}, "webhook_format"),
    ({"name": ""}, "name"),
    ({"plans": [999999]}, "plans"),
])
def test_bad_input_is_a_400_naming_the_field(api, change, field):
    response = api("Planner").post(URL, {**WEBHOOK, **change}, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not NotificationChannel.objects.exists()


def test_a_name_is_unique(api, make_channel):
    make_channel("Ops hook")
    response = api("Planner").post(URL, WEBHOOK, format="json")
    assert response.status_code == 400 and list(response.json()) == ["name"]


def test_the_test_action_sends_now_and_answers_the_attempt(api, clock, webhook_server, allow_private, make_channel):
    channel = make_channel("Hook", url=webhook_server.url, secret="k")
    response = api("Planner").post(f"{URL}{channel.pk}/test/")
    assert response.status_code == 200
    result = response.json()
    assert result["ok"] is True and result["attempt"]["status_code"] == 200
    assert result["notification"]["event"] == "channel.test" and result["notification"]["status"] == "delivered"
    (request,) = webhook_server.received
    assert request.json()["event"] == "channel.test"

    webhook_server.default_status = 500
    failed = api("Planner").post(f"{URL}{channel.pk}/test/").json()
    assert failed["ok"] is False and failed["attempt"]["status_code"] == 500
    assert failed["notification"]["status"] == "failed"  # a test is not retried


def test_deliveries_filter_by_status_channel_and_event(api, clock, webhook_server, allow_private, make_channel):
    good = make_channel("Good", url=webhook_server.url, events=["drill.overdue"])
    make_channel("Mail", kind="email", address="a@example.com", events=["drill.overdue"])
    notable_events_send([NotableEvent(event="drill.overdue")])
    viewer = api("Viewer")
    assert viewer.get("/api/v1/notifications/", {"status": "pending"}).json()["count"] == 2
    deliver_notifications()
    assert viewer.get("/api/v1/notifications/", {"status": "delivered"}).json()["count"] == 2
    listed = viewer.get("/api/v1/notifications/", {"channel": good.pk, "event": "drill.overdue"}).json()
    (row,) = listed["results"]
    assert row["channel"] == {"id": good.pk, "name": "Good", "kind": "webhook"}
    assert [a["ok"] for a in row["attempts"]] == [True]
    assert viewer.get(f"/api/v1/notifications/{row['id']}/").json()["id"] == row["id"]
    bad = viewer.get("/api/v1/notifications/", {"status": "lost", "channel": "x"})
    assert bad.status_code == 400 and set(bad.json()) == {"status", "channel"}


def test_deleting_a_channel(api, make_channel):
    channel = make_channel("Ops")
    assert api("Planner").delete(f"{URL}{channel.pk}/").status_code == 204
    assert not NotificationChannel.objects.exists()
