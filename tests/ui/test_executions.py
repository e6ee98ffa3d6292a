"""Execution pages: history, the live detail and its partial, actions by role, the report,
and a query count that does not grow with the number of servers."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from executions.choices import EventKind, ExecutionMode, ExecutionStatus, WaveStatus
from executions.models import ExecutionEvent, WaveRun
from tests.factories import ExecutionFactory, build_execution

pytestmark = pytest.mark.django_db


def waiting_for_approval():
    execution = build_execution(servers=4, waves=2, status=ExecutionStatus.WAITING_APPROVAL)
    WaveRun.objects.filter(execution=execution, index=1).update(
        status=WaveStatus.WAITING_APPROVAL, approval_required=True, started_at=None
    )
    return execution


def test_history_filters_by_plan_mode_and_status(login):
    drill = build_execution(servers=1, status=ExecutionStatus.SUCCEEDED)
    recovery = ExecutionFactory(mode=ExecutionMode.RECOVERY, status=ExecutionStatus.FAILED)
    client = login("Viewer")
    body = client.get(reverse("executions:list"), {"mode": "RECOVERY"}).content.decode()
    assert recovery.get_absolute_url() in body and drill.get_absolute_url() not in body
    body = client.get(reverse("executions:list"), {"status": "SUCCEEDED"}).content.decode()
    assert drill.get_absolute_url() in body and recovery.get_absolute_url() not in body
    body = client.get(reverse("executions:list"), {"plan": drill.plan_id}).content.decode()
    assert drill.get_absolute_url() in body and recovery.get_absolute_url() not in body
    body = client.get(reverse("executions:list"), {"date_after": "2000-01-01", "date_before": "2000-01-02"})
    assert "No execution matches" in body.content.decode()


def test_history_is_paginated(login):
    plan_execution = build_execution(servers=1, status=ExecutionStatus.SUCCEEDED)
    for _ in range(55):
        ExecutionFactory(plan=plan_execution.plan, status=ExecutionStatus.FAILED)
    body = login("Viewer").get(reverse("executions:list")).content.decode()
    assert "Page 1 of 2" in body and "page=2" in body


def test_detail_polls_while_active_and_stops_when_terminal(login):
    execution = build_execution(servers=3)
    client = login("Viewer")
    body = client.get(execution.get_absolute_url()).content.decode()
    assert f'hx-get="{reverse("executions:live", args=[execution.pk])}"' in body
    assert 'hx-trigger="every 2s"' in body
    execution.status = ExecutionStatus.SUCCEEDED
    execution.finished_at = timezone.now()
    execution.save()
    live = client.get(reverse("executions:live", args=[execution.pk])).content.decode()
    assert live.lstrip().startswith('<div id="live"') or 'id="live"' in live
    root = re.search(r'<div id="live"[^>]*>', live).group(0)
    assert "hx-get" not in root and "hx-trigger" not in root
    assert 'hx-trigger="every' not in live
    assert "<html" not in live


def test_detail_shows_waves_servers_timeline_and_events(login):
    execution = build_execution(servers=4, waves=2)
    ExecutionEvent.objects.create(
        execution=execution, kind=EventKind.ACTION, actor_name="operator", message="Started a drill."
    )
    body = login("Viewer").get(execution.get_absolute_url()).content.decode()
    assert '<svg class="timeline"' in body and body.count('class="bar tone-') == 4
    assert "host-0000" in body and "i-00000000000000000" in body
    assert "Wave 1" in body and "Wave 2" in body and 'role="progressbar"' in body
    assert "Started a drill." in body
    assert "of 60 min" in body or "/ 60 min" in body


@pytest.mark.parametrize(
    "role, allowed", [("Viewer", False), ("Planner", False), ("Operator", True), ("Commander", True)]
)
def test_approve_by_role(login, role, allowed):
    execution = waiting_for_approval()
    client = login(role)
    body = client.get(execution.get_absolute_url()).content.decode()
    assert ("Approve wave 2: Wave 2" in body) is allowed
    response = client.post(reverse("executions:approve", args=[execution.pk]), {"wave_index": 1})
    wave = WaveRun.objects.get(execution=execution, index=1)
    if allowed:
        assert response.status_code == 302
        assert wave.status == WaveStatus.LAUNCHING and wave.approved_by == client.user
    else:
        assert response.status_code == 403 and wave.status == WaveStatus.WAITING_APPROVAL


@pytest.mark.parametrize("action", ["approve", "cancel", "retry", "cleanup"])
def test_viewers_get_403_on_every_action(login, action):
    execution = build_execution(servers=2)
    assert login("Viewer").post(reverse(f"executions:{action}", args=[execution.pk])).status_code == 403


def test_operator_cancels_and_sees_conflicts(login):
    execution = build_execution(servers=2)
    client = login("Operator")
    response = client.post(reverse("executions:cancel", args=[execution.pk]), follow=True)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.CANCELLING
    assert "Cancellation requested." in response.content.decode()
    response = client.post(reverse("executions:cancel", args=[execution.pk]), follow=True)
    assert "only a running execution can be cancelled" in response.content.decode()


def test_retry_is_offered_for_failed_executions(login):
    execution = build_execution(servers=2, status=ExecutionStatus.FAILED)
    WaveRun.objects.filter(execution=execution).update(status=WaveStatus.FAILED)
    client = login("Operator")
    assert "Retry failed waves" in client.get(execution.get_absolute_url()).content.decode()
    response = client.post(reverse("executions:retry", args=[execution.pk]), follow=True)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.RUNNING
    assert "Retry started." in response.content.decode()


def test_cleanup_is_offered_for_ended_drills_with_instances(login):
    execution = build_execution(servers=2, status=ExecutionStatus.SUCCEEDED)
    assert "Clean up drill instances" in login("Operator").get(execution.get_absolute_url()).content.decode()
    assert "Clean up drill instances" not in login("Viewer").get(execution.get_absolute_url()).content.decode()
    running = build_execution(servers=2)
    assert "Clean up drill instances" not in login("Commander").get(running.get_absolute_url()).content.decode()


def test_cleanup_conflict_is_shown(login):
    execution = build_execution(servers=2)
    response = login("Operator").post(reverse("executions:cleanup", args=[execution.pk]), follow=True)
    assert "The drill is still running" in response.content.decode()


def test_report_for_auditors(login):
    execution = build_execution(servers=4, waves=2, status=ExecutionStatus.SUCCEEDED)
    execution.finished_at = execution.started_at + timedelta(minutes=75)
    execution.save()
    ExecutionEvent.objects.create(
        execution=execution, kind=EventKind.ACTION, actor_name="cmdr", message="Approved wave 1 'Wave 2'."
    )
    response = login("Viewer").get(reverse("executions:report", args=[execution.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Evidence report" in body and execution.plan_name in body
    assert "1 h 15 min" in body and "missed" in body
    assert "cmdr" in body and "Approved wave 1" in body
    assert "drill instances not cleaned up" in body
    assert "@media print" in (settings.BASE_DIR / "static/css/drsorch.css").read_text()


def count_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("name", ["detail", "live", "report"])
def test_query_count_does_not_grow_with_servers(login, name):
    client = login("Operator")
    small = build_execution(servers=10, waves=3)
    large = build_execution(servers=1000, waves=3)
    count_queries(client, reverse(f"executions:{name}", args=[small.pk]))  # warm the session and permissions
    assert count_queries(client, reverse(f"executions:{name}", args=[small.pk])) == count_queries(
        client, reverse(f"executions:{name}", args=[large.pk])
    )


def test_detail_query_count_is_fixed(login, django_assert_max_num_queries):
    client = login("Operator")
    execution = build_execution(servers=1000, waves=3)
    client.get(execution.get_absolute_url())
    with django_assert_max_num_queries(8):
        client.get(execution.get_absolute_url())


def test_history_shows_one_set_of_date_fields_and_times_in_any_offset(client, make_user):
    """The page offers a day range; scripts' exact instants with any UTC offset are accepted
    (PostgreSQL refuses offsets past ±15:59 unless converted to UTC first)."""
    client.force_login(make_user("vera", role="Viewer"))
    page = client.get("/executions/")
    assert page.status_code == 200
    assert b'name="date_after"' in page.content and b'name="created_after"' not in page.content
    from executions.filtersets import ExecutionFilterSet

    filterset = ExecutionFilterSet({"created_before": "2026-11-28T12:00:00+19:47"})
    assert filterset.is_valid()
    assert filterset.form.cleaned_data["created_before"].utcoffset().total_seconds() == 0
