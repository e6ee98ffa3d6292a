"""Issue 14 on the pages and the API: OVERDUE (dashboard, plan list, plan page), "due in N
days", the readiness watch's last evaluation (dashboard, plan page, plan JSON) and its history,
through the sandbox."""

import datetime as dt
import html
import re

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from drsorch.sandbox.services import sandbox_configure
from executions import engine
from executions.services import execution_start
from executions.tasks import launch_budget_seconds
from executions.unattended.readiness_watch import plans_readiness_watch
from plans.services import WaveSpec, plan_save, protection_group_save

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

START = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
DAY = 24 * 3600


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def new_plan(make_sandbox_servers, sandbox_target):
    """new_plan(name, hostname, **fields) -> a one-wave plan on a new sandbox server."""

    def make(name, hostname, **fields):
        servers = make_sandbox_servers(hostname)
        group = protection_group_save(name=f"{name} group", target=sandbox_target, servers=servers)
        return plan_save(name=name, waves=[WaveSpec(name="All", protection_groups=[group])], **fields)

    return make


def drill(clock, plan):
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None, auto_approve=True)
    for _ in range(200):
        engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
        execution.refresh_from_db()
        if execution.is_terminal:
            return execution
        clock.shift(5)
    raise AssertionError(f"{execution} still {execution.status}")


def text(response):
    """A page's visible text, tags stripped and whitespace folded."""
    assert response.status_code == 200
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def row_of(page_text, name, following):
    """The text of the page from `name` to the next of `following` (a table row, roughly)."""
    start = page_text.index(name)
    ends = [page_text.find(other, start + len(name)) for other in following]
    ends = [end for end in ends if end != -1]
    return page_text[start:min(ends) if ends else None]


@pytest.fixture
def plans(clock, new_plan):
    """'Late' never drilled with a 7-day limit, 'Fresh' drilled today with a 7-day limit,
    'Free' without a limit; ten days later."""
    late = new_plan("Late", "late-01", drill_max_age_days=7)
    fresh = new_plan("Fresh", "fresh-01", drill_max_age_days=7)
    free = new_plan("Free", "free-01")
    clock.shift(10 * DAY)
    assert drill(clock, fresh).status == "SUCCEEDED"
    clock.shift(2 * DAY)
    return late, fresh, free


def test_overdue_on_the_dashboard(login, plans):
    page = text(login("Viewer").get(reverse("executions:dashboard")))
    page = page[page.index("Plans Plan State") :]
    names = ["Fresh", "Free", "Late"]
    assert "OVERDUE last successful drill: never" in row_of(page, "Late", ["Replication"])
    assert "OVERDUE" not in row_of(page, "Fresh", names[1:])
    assert "OVERDUE" not in row_of(page, "Free", ["Late"])


def test_overdue_on_the_plan_list_in_a_constant_number_of_queries(login, plans, new_plan, clock):
    client = login("Viewer")
    page = text(client.get(reverse("plans:plan_list")))
    assert "Late OVERDUE last successful drill: never" in page
    assert "Fresh OVERDUE" not in page and "Free OVERDUE" not in page

    with CaptureQueriesContext(connection) as few:
        client.get(reverse("plans:plan_list"))
    for number in range(4):
        new_plan(f"More {number}", f"more-{number}", drill_max_age_days=1)
    clock.shift(2 * DAY)
    with CaptureQueriesContext(connection) as many:
        page = text(client.get(reverse("plans:plan_list")))
    assert page.count("OVERDUE") == 5  # Late and the four new ones (Fresh was drilled 4 days ago)
    assert len(many) == len(few)


def test_the_plan_page_says_overdue_or_due_in(login, plans, clock):
    late, fresh, free = plans
    client = login("Viewer")
    assert "Drill age OVERDUE last successful drill: never" in text(client.get(late.get_absolute_url()))
    page = text(client.get(fresh.get_absolute_url()))
    assert "Drill age due in 5 days (last successful drill 2 days ago)" in page
    assert "Drill age" not in text(client.get(free.get_absolute_url()))
    clock.shift(6 * DAY)
    page = text(client.get(fresh.get_absolute_url()))
    assert "Drill age OVERDUE last successful drill 8 days ago" in page


def test_the_readiness_watch_on_the_dashboard_and_the_plan_page(login, plans, clock):
    late, fresh, free = plans
    client = login("Viewer")
    dashboard = text(client.get(reverse("executions:dashboard")))
    assert "not evaluated yet" in row_of(dashboard, "Late", ["Replication"])
    plans_readiness_watch(now=timezone.now())
    sandbox_configure(disconnect=["late-01"])
    clock.shift(600)
    plans_readiness_watch(now=timezone.now())

    dashboard = text(client.get(reverse("executions:dashboard")))
    dashboard = dashboard[dashboard.index("Plans Plan State") :]
    late_row = row_of(dashboard, "Late", ["Replication"])
    assert "1 warning 0 minutes ago" in late_row
    assert "Server late-01" in late_row and "DISCONNECTED" in late_row
    assert "ready 0 minutes ago" in row_of(dashboard, "Fresh", ["Free"])

    page = text(client.get(late.get_absolute_url()))
    watch = row_of(page, "Readiness watch", ["Waves"])
    assert "Last evaluation: 1 warning" in watch
    assert "not ready 0 errors, 1 warning + Server late-01" in watch
    assert "readiness.degraded" in watch
    assert "ready first evaluation" in watch


@pytest.fixture
def api_client(make_user):
    user = make_user(username="reader", role="Viewer")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_the_plan_json_adds_overdue_and_the_last_evaluation(api_client, plans, clock, new_plan):
    late, fresh, free = plans
    plans_readiness_watch(now=timezone.now())
    body = api_client.get(f"/api/v1/plans/{late.pk}/").json()
    assert body["overdue"] is True and body["last_successful_drill_at"] is None
    evaluation = body["last_readiness_evaluation"]
    assert evaluation["ready"] is True and evaluation["sequence"] == 1 and evaluation["notified"] is None
    assert evaluation["evaluated_at"] == timezone.now().isoformat().replace("+00:00", "Z")
    body = api_client.get(f"/api/v1/plans/{fresh.pk}/").json()
    assert body["overdue"] is False and body["last_successful_drill_at"].startswith("2026-12-08T")
    body = api_client.get(f"/api/v1/plans/{free.pk}/").json()
    assert body["overdue"] is False and body["last_successful_drill_at"] is None

    with CaptureQueriesContext(connection) as few:
        assert api_client.get("/api/v1/plans/").status_code == 200
    for number in range(3):
        new_plan(f"More {number}", f"more-{number}", drill_max_age_days=1)
    plans_readiness_watch(now=timezone.now())
    with CaptureQueriesContext(connection) as many:
        listed = api_client.get("/api/v1/plans/").json()
    assert len(many) == len(few)
    assert all(item["last_readiness_evaluation"] is not None for item in listed["results"])


def test_the_readiness_evaluations_endpoint(api_client, plans, clock):
    late = plans[0]
    plans_readiness_watch(now=timezone.now())
    sandbox_configure(disconnect=["late-01"])
    clock.shift(600)
    plans_readiness_watch(now=timezone.now())
    body = api_client.get(f"/api/v1/plans/{late.pk}/readiness-evaluations/").json()
    newest, oldest = body["results"]
    assert (newest["sequence"], newest["ready"], newest["notified"]) == (2, False, "readiness.degraded")
    assert [f["code"] for f in newest["changed"]["new"]] == ["replication_unhealthy"]
    assert newest["findings"][0]["hostname"] == "late-01"
    assert (oldest["sequence"], oldest["ready"], oldest["changed"]) == (1, True, {})
    assert api_client.get("/api/v1/plans/999999/readiness-evaluations/").status_code == 404
