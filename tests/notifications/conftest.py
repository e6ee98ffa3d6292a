"""Fixtures of the notification tests: the engine fixtures of tests/executions, API and page
clients per role, channels, and a real local HTTP server standing for a webhook receiver."""

import http.server
import json
import threading
from dataclasses import dataclass, field

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from notifications.services import ChannelSpec, channel_save
from tests.executions.conftest import START, clock, drive, make_plan

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:drsorch-alerts"


@dataclass
class Received:
    """One request the local webhook server received."""

    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class WebhookServer:
    """A real HTTP server on 127.0.0.1: answers each POST with the next status of `statuses`
    (then `default_status`) and keeps every request it got."""

    url: str
    port: int
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    default_status: int = 200


@pytest.fixture
def webhook_server():
    server_state = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state = server_state["state"]
            state.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            status = state.statuses.pop(0) if state.statuses else state.default_status
            answer = b"ok" if status < 300 else b"receiver broke"
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    server_state["state"] = WebhookServer(url=f"http://127.0.0.1:{port}/hook", port=port)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server_state["state"]
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def allow_private(settings):
    """Webhooks may call loopback (the local test server)."""
    settings.DRSORCH_WEBHOOK_ALLOW_PRIVATE = True
    return settings


@pytest.fixture
def make_channel(db):
    """make_channel(name, kind="webhook", events=[...], secret=..., plans=[...], **spec fields)."""

    def make(name="Ops", *, kind="webhook", events=("execution.started", "execution.finished"), secret=None,
             **fields):
        fields.setdefault("plans", ())
        if kind == "webhook":
            fields.setdefault("url", "https://hooks.example.invalid/drsorch")  # never resolves: accepted at save
        return channel_save(spec=ChannelSpec(name=name, kind=kind, events=list(events), **fields), secret=secret)

    return make


@pytest.fixture
def api(make_user):
    """api(role): an APIClient with the token of a new user in `role`; api(None): no credentials."""
    made = {}

    def make(role):
        client = APIClient()
        if role is None:
            return client
        if role not in made:
            user = make_user(username=role.lower(), superuser=role == "superuser",
                             role=None if role == "superuser" else role)
            made[role] = Token.objects.create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {made[role].key}")
        return client

    return make


@pytest.fixture
def login(make_user):
    """login(role): a page Client logged in as a new user of that role."""

    def make(role=None, superuser=False):
        user = make_user(username=(role or "admin").lower(), role=role, superuser=superuser)
        client = Client()
        client.force_login(user)
        return client

    return make


__all__ = ["START", "TOPIC_ARN", "clock", "drive", "make_plan"]
