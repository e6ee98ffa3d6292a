"""Webhook delivery against a real local HTTP server: retries with backoff, the signature, the
Slack and Teams formats, giving up after 24 hours, and exclusive claims."""

import hashlib
import hmac
import json
import socket

import pytest

from drsorch.webhooks import addresses
from executions.notable import NotableEvent, notable_events_send
from executions.services import execution_start
from notifications import services
from notifications.models import DeliveryAttempt, Notification
from notifications.services import CLAIM_SECONDS, notifications_claim, notifications_deliver_due
from notifications.tasks import deliver_notifications

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

SECRET = "s3cret-shared-with-the-receiver"


@pytest.fixture
def hook(webhook_server, allow_private, make_channel):
    """A webhook channel (signed) to the local server, subscribed to drill.overdue and the lifecycle."""
    return make_channel("Hook", url=webhook_server.url, secret=SECRET,
                        events=["drill.overdue", "execution.started", "execution.finished"])


def overdue():
    notable_events_send([NotableEvent(event="drill.overdue", details={"days": 3})])


def test_500_then_200_sends_twice_and_the_second_is_delivered(clock, webhook_server, hook):
    webhook_server.statuses = [500]
    overdue()
    deliver_notifications()
    row = Notification.objects.get()
    assert row.status == "pending" and row.attempts == 1
    assert "HTTP 500" in row.last_error
    assert (row.next_attempt_at - row.created_at).total_seconds() == 30  # first backoff

    assert notifications_deliver_due() == {"delivered": 0, "failed_attempts": 0}  # not due yet
    clock.shift(30)
    assert notifications_deliver_due() == {"delivered": 1, "failed_attempts": 0}

    row.refresh_from_db()
    assert row.status == "delivered" and row.attempts == 2 and row.delivered_at is not None
    attempts = list(row.delivery_attempts.order_by("at"))
    assert [(a.ok, a.status_code) for a in attempts] == [(False, 500), (True, 200)]
    assert "receiver broke" in attempts[0].error
    first, second = webhook_server.received
    assert first.json()["event"] == second.json()["event"] == "drill.overdue"
    assert first.headers["x-drsorch-delivery"] == second.headers["x-drsorch-delivery"] == str(row.pk)
    assert first.json()["sent_at"] != second.json()["sent_at"]


def test_the_signature_is_hmac_sha256_of_the_exact_body(clock, webhook_server, hook):
    overdue()
    deliver_notifications()
    (request,) = webhook_server.received
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-drsorch-signature"] == f"sha256={expected}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("drsorch")
    body = request.json()
    assert set(body) >= {"event", "sent_at", "execution", "plan"}
    assert body["execution"] is None and body["sent_at"].endswith("Z")


def test_an_unsigned_channel_sends_no_signature(clock, webhook_server, allow_private, make_channel):
    make_channel("Plain", url=webhook_server.url, events=["drill.overdue"])
    overdue()
    deliver_notifications()
    assert "x-drsorch-signature" not in webhook_server.received[0].headers


def test_a_drill_is_delivered_with_its_execution_json(clock, drive, make_plan, webhook_server, hook):
    plan = make_plan("Billing", [("Database", ["db-01"], {})])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    deliver_notifications()
    started, finished = (r.json() for r in webhook_server.received)
    assert [started["event"], finished["event"]] == ["execution.started", "execution.finished"]
    assert finished["execution"]["id"] == str(execution.pk)
    assert finished["execution"]["status"] == "SUCCEEDED"
    assert finished["execution"]["rto"]["met"] is True
    assert finished["plan"]["name"] == "Billing"


@pytest.mark.parametrize("webhook_format", ["slack", "teams"])
def test_slack_and_teams_formats(clock, drive, make_plan, webhook_server, allow_private, make_channel, webhook_format):
    make_channel("Chat", url=webhook_server.url, webhook_format=webhook_format, events=["execution.finished"])
    plan = make_plan("Billing", [("Database", ["db-01"], {})])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    deliver_notifications()
    (request,) = webhook_server.received
    message = request.json()
    link = f"http://127.0.0.1:8000/executions/{execution.pk}/"
    if webhook_format == "slack":
        assert message["text"] == "DRILL of Billing ended SUCCEEDED: RTO met"
        assert [block["type"] for block in message["blocks"]] == ["header", "section", "actions"]
        assert message["blocks"][2]["elements"][0]["url"] == link
    else:
        assert message["type"] == "message"
        (attachment,) = message["attachments"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        card = attachment["content"]
        assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
        assert card["body"][0]["text"] == "DRILL of Billing ended SUCCEEDED: RTO met"
        assert {"title": "Status", "value": "SUCCEEDED"} in card["body"][1]["facts"]
        assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open in drsorch", "url": link}]


def test_backoff_doubles_up_to_an_hour_and_gives_up_after_24_hours(clock, webhook_server, hook, api):
    webhook_server.default_status = 503
    overdue()
    row = Notification.objects.get()
    delays = []
    while True:
        deliver_notifications()
        row.refresh_from_db()
        if row.status != "pending":
            break
        delays.append((row.next_attempt_at - clock_now()).total_seconds())
        clock.move_to(row.next_attempt_at)
    assert delays[:8] == [30, 60, 120, 240, 480, 960, 1920, 3600]
    assert set(delays[8:-1]) == {3600}
    assert row.status == "failed"
    assert (clock_now() - row.created_at).total_seconds() == 24 * 3600  # the last try at the deadline
    assert row.attempts == len(delays) + 1 == DeliveryAttempt.objects.filter(notification=row).count()
    assert len(webhook_server.received) == row.attempts

    listed = api("Viewer").get("/api/v1/notifications/", {"status": "failed"}).json()
    (shown,) = listed["results"]
    assert shown["status"] == "failed" and shown["attempt_count"] == row.attempts
    assert len(shown["attempts"]) == row.attempts and not any(a["ok"] for a in shown["attempts"])
    assert shown["attempts"][0]["status_code"] == 503


def clock_now():
    from django.utils import timezone

    return timezone.now()


def test_two_workers_never_hold_one_row(clock, webhook_server, hook):
    overdue()
    (mine,) = notifications_claim(token="worker-a")
    assert notifications_claim(token="worker-b") == []
    # Worker a dies after sending, before recording: its claim expires and b sends it again
    # (at least once).
    clock.shift(CLAIM_SECONDS - 1)
    assert notifications_claim(token="worker-b") == []
    clock.shift(2)
    (theirs,) = notifications_claim(token="worker-b")
    assert theirs.pk == mine.pk
    # a's late record changes nothing: b holds the row now.
    assert not mine.mark_failed_attempt(at=clock_now(), error="late", token="worker-a")
    services.notification_deliver(notification=theirs, token="worker-b")
    theirs.refresh_from_db()
    assert theirs.status == "delivered"


def test_a_refused_delivery_is_retried_and_a_delivered_row_is_never_sent_again(clock, webhook_server, hook):
    overdue()
    deliver_notifications()
    clock.shift(3600)
    deliver_notifications()
    assert len(webhook_server.received) == 1


def test_the_connection_goes_to_the_address_that_was_checked(clock, webhook_server, allow_private, make_channel,
                                                            monkeypatch):
    """A name is resolved once, checked, and the request sent to that address with the name
    in the Host header: a second DNS answer (rebinding) is never asked for."""
    answers_at_send = [[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", webhook_server.port))]]
    answers = [[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", webhook_server.port))]]
    asked = []
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        asked.append(host)
        if host == "hooks.example.test":
            # The first answer is the checked one; any later answer would point elsewhere.
            return answers.pop(0) if answers else [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.9.9.9", port))]
        if host == "127.0.0.1":
            return real_getaddrinfo(host, port, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(addresses.socket, "getaddrinfo", getaddrinfo)
    make_channel("Named", url=f"http://hooks.example.test:{webhook_server.port}/x", events=["drill.overdue"])
    answers.append(answers_at_send[0])
    asked.clear()
    overdue()
    deliver_notifications()
    (request,) = webhook_server.received
    assert request.headers["host"] == f"hooks.example.test:{webhook_server.port}"
    assert request.path == "/x"
    # The name was resolved once at send; the connection went to the literal address checked.
    assert asked == ["hooks.example.test", "127.0.0.1"]
    assert Notification.objects.get().status == "delivered"


def test_the_task_is_enqueued_after_the_commit(make_channel, django_capture_on_commit_callbacks, monkeypatch):
    enqueued = []
    monkeypatch.setattr(services, "async_task", lambda func, **kwargs: enqueued.append(func))
    make_channel("Ops", events=["drill.overdue"])
    with django_capture_on_commit_callbacks(execute=True):
        overdue()
        assert enqueued == []
    assert enqueued == ["notifications.tasks.deliver_notifications"]
    assert json.dumps(Notification.objects.get().payload)
