"""The notification pages: roles checked on the server, the channel form with its errors, the
deliveries with every attempt, and "Send test"."""

import pytest

from executions.notable import NotableEvent, notable_events_send
from notifications.models import NotificationChannel
from notifications.tasks import deliver_notifications

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

FORM = {"name": "Ops hook", "kind": "webhook", "url": "https://93.184.215.14/hook", "webhook_format": "json",
        "secret": "k", "events": ["execution.finished"], "enabled": "on"}


def test_everyone_reads_and_the_nav_links_the_page(login, make_channel):
    channel = make_channel("Ops")
    viewer = login("Viewer")
    page = viewer.get("/notifications/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="/notifications/" aria-current="page">Notifications</a>' in html
    assert "Ops" in html and "New channel" not in html
    detail = viewer.get(f"/notifications/channels/{channel.pk}/").content.decode()
    assert "Send test" not in detail and "Edit" not in detail


def test_viewers_may_not_edit_or_test(login, make_channel):
    channel = make_channel("Ops")
    viewer = login("Viewer")
    assert viewer.get("/notifications/channels/new/").status_code == 403
    assert viewer.post("/notifications/channels/new/", FORM).status_code == 403
    assert viewer.post(f"/notifications/channels/{channel.pk}/edit/", FORM).status_code == 403
    assert viewer.post(f"/notifications/channels/{channel.pk}/delete/").status_code == 403
    assert viewer.post(f"/notifications/channels/{channel.pk}/test/").status_code == 403
    assert NotificationChannel.objects.get().name == "Ops"


def test_a_planner_creates_edits_and_deletes_a_channel(login):
    planner = login("Planner")
    assert planner.get("/notifications/channels/new/").status_code == 200
    response = planner.post("/notifications/channels/new/", FORM)
    channel = NotificationChannel.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/notifications/channels/{channel.pk}/"
    assert channel.secret == "k" and channel.events == ["execution.finished"]
    edit = planner.get(f"/notifications/channels/{channel.pk}/edit/").content.decode()
    assert "A secret is set." in edit and 'value="k"' not in edit
    planner.post(f"/notifications/channels/{channel.pk}/edit/", {**FORM, "secret": "", "name": "Renamed"})
    channel.refresh_from_db()
    assert channel.name == "Renamed" and channel.secret == "k"  # blank keeps the secret
    response = planner.post(f"/notifications/channels/{channel.pk}/delete/")
    assert response.status_code == 302 and not NotificationChannel.objects.exists()


def test_the_form_names_each_field_at_fault(login):
    response = login("Planner").post("/notifications/channels/new/", {
        **FORM, "url": "http://10.0.0.9/latest/", "events": [],
    })
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="channel-error-summary"' in html
    assert '<a href="#id_url">URL</a>' in html and "DRSORCH_WEBHOOK_ALLOW_PRIVATE" in html
    assert '<a href="#id_events">Events</a>: Choose at least one event.' in html
    assert not NotificationChannel.objects.exists()


def test_send_test_shows_the_result(login, clock, webhook_server, allow_private, make_channel):
    channel = make_channel("Hook", url=webhook_server.url)
    planner = login("Planner")
    assert "Send test" in planner.get(f"/notifications/channels/{channel.pk}/").content.decode()
    html = planner.post(f"/notifications/channels/{channel.pk}/test/").content.decode()
    assert "<strong>Delivered.</strong> HTTP 200." in html
    webhook_server.default_status = 502
    html = planner.post(f"/notifications/channels/{channel.pk}/test/").content.decode()
    assert "<strong>Not delivered.</strong> HTTP 502." in html
    assert len(webhook_server.received) == 2


def test_a_delivery_that_gave_up_shows_as_failed_with_its_attempts(login, clock, webhook_server, allow_private,
                                                                  make_channel):
    channel = make_channel("Hook", url=webhook_server.url, events=["drill.overdue"])
    webhook_server.default_status = 500
    notable_events_send([NotableEvent(event="drill.overdue")])
    deliver_notifications()
    clock.shift(24 * 3600)
    deliver_notifications()
    viewer = login("Viewer")
    html = viewer.get("/notifications/", {"status": "failed"}).content.decode()
    assert "Failed (gave up)" in html and "HTTP 500" in html and html.count("<li>") >= 2
    detail = viewer.get(f"/notifications/channels/{channel.pk}/").content.decode()
    assert "gave up" in detail
    assert viewer.get("/notifications/", {"status": "nope"}).status_code == 400
