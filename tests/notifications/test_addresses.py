"""Webhooks to loopback, private, link-local and reserved addresses are refused, when the
channel is saved and again when it is sent, unless DRSORCH_WEBHOOK_ALLOW_PRIVATE is true."""

import pytest

from drsorch.webhooks.addresses import PrivateAddressError, check_webhook_url
from executions.notable import NotableEvent, notable_events_send
from notifications.models import Notification
from notifications.tasks import deliver_notifications

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

PRIVATE_URLS = [
    "http://127.0.0.1/hook",
    "http://127.1.2.3:8080/hook",
    "http://10.1.2.3/hook",
    "https://172.16.0.9/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fd00::1]/hook",
    "http://localhost:8000/hook",
]


def body(url):
    return {"name": "Hook", "kind": "webhook", "url": url, "events": ["execution.finished"]}


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_a_private_webhook_is_refused_at_save(api, url):
    response = api("Planner").post("/api/v1/notification-channels/", body(url), format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["url"]
    assert "DRSORCH_WEBHOOK_ALLOW_PRIVATE" in response.json()["url"][0]


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/x", "file:///etc/passwd", "hooks.example.com/x",
                                 "http://user:pw@hooks.example.com/x", "http://", "http://exa mple.com/"])
def test_only_plain_http_and_https_urls(api, url):
    response = api("Planner").post("/api/v1/notification-channels/", body(url), format="json")
    assert response.status_code == 400 and list(response.json()) == ["url"]


def test_a_public_address_is_accepted(api):
    response = api("Planner").post("/api/v1/notification-channels/", body("https://93.184.215.14/hook"),
                                   format="json")
    assert response.status_code == 201, response.json()


def test_private_addresses_are_allowed_when_the_setting_says_so(api, allow_private):
    response = api("Planner").post("/api/v1/notification-channels/", body("http://127.0.0.1:9/hook"), format="json")
    assert response.status_code == 201


@pytest.mark.parametrize("url", ["http://[::ffff:169.254.169.254]/", "http://[::ffff:10.0.0.1]/", "http://[::]/"])
def test_ipv6_forms_of_private_addresses(url, settings):
    settings.DRSORCH_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(PrivateAddressError):
        check_webhook_url(url)


def test_a_channel_saved_while_allowed_is_refused_at_send(clock, webhook_server, allow_private, make_channel):
    make_channel("Hook", url=webhook_server.url, events=["drill.overdue"])
    allow_private.DRSORCH_WEBHOOK_ALLOW_PRIVATE = False
    notable_events_send([NotableEvent(event="drill.overdue")])
    deliver_notifications()
    row = Notification.objects.get()
    (attempt,) = row.delivery_attempts.all()
    assert not attempt.ok and attempt.status_code is None
    assert attempt.error.startswith("Refused: The URL's host 127.0.0.1")
    assert row.status == "pending" and row.attempts == 1
    assert webhook_server.received == []  # nothing ever reached the private address


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://169.254.170.2/v2/credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fe80::1]/hook",
    ],
)
def test_link_local_and_metadata_addresses_are_refused_even_when_private_ones_are_allowed(api, allow_private, url):
    response = api("Planner").post("/api/v1/notification-channels/", body(url), format="json")
    assert response.status_code == 400 and list(response.json()) == ["url"]
    assert "link-local" in response.json()["url"][0]
    with pytest.raises(PrivateAddressError):
        check_webhook_url(url)
