"""GET /api/v1/plans/<id>/history/: a plan's ended executions with their RTO and RPO, for trends."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from executions import engine
from executions.choices import ExecutionMode, ExecutionStatus, LaunchStatus
from executions.tasks import launch_budget_seconds
from tests.factories import ExecutionFactory, RecoveryPlanFactory, ServerLaunchFactory, WaveRunFactory

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

ITEM_KEYS = {
    "id",
    "mode",
    "status",
    "requested_by",
    "created_at",
    "started_at",
    "finished_at",
    "point_in_time",
    "rto",
    "rpo",
    "servers",
}


def ended(
    plan, *, days_ago, mode=ExecutionMode.DRILL, status=ExecutionStatus.SUCCEEDED, rto=None, rpo=None, servers=()
):
    """An execution of `plan` that ended `days_ago`, with its stored evidence and launches of
    the given statuses."""
    created = timezone.now() - timedelta(days=days_ago)
    execution = ExecutionFactory(
        plan=plan,
        mode=mode,
        status=status,
        created_at=created,
        started_at=created,
        finished_at=created + timedelta(minutes=30),
        rto_achieved_seconds=rto,
        rpo_worst_seconds=rpo,
    )
    if servers:
        wave = WaveRunFactory(execution=execution, index=0)
        for launch_status in servers:
            ServerLaunchFactory(wave_run=wave, status=launch_status)
    return execution


def history(client, plan, query=""):
    response = client.get(f"/api/v1/plans/{plan.pk}/history/{query}")
    assert response.status_code == 200, response.json()
    return response.json()


def test_a_drill_driven_to_its_end_appears_with_the_rto_and_rpo_of_its_execution_json(api, clock, plan):
    client = api("Operator")
    started = client.post(f"/api/v1/plans/{plan.pk}/execute/", {"mode": "DRILL"}, format="json")
    assert started.status_code == 202
    assert history(client, plan)["results"] == []  # running: no measure yet
    for _ in range(100):
        engine.tick(launch_budget_seconds=launch_budget_seconds())
        clock.shift(5)
        execution = client.get(started["Location"]).json()
        if execution["status"] not in ("PENDING", "RUNNING"):
            break
    assert execution["status"] == "SUCCEEDED"

    body = history(api("Viewer"), plan)
    assert body["count"] == 1 and body["next"] is None and body["previous"] is None
    [item] = body["results"]
    assert set(item) == ITEM_KEYS
    assert {
        key: item[key] for key in ("id", "mode", "status", "started_at", "finished_at", "point_in_time", "rto", "rpo")
    } == {
        key: execution[key]
        for key in ("id", "mode", "status", "started_at", "finished_at", "point_in_time", "rto", "rpo")
    }
    assert item["rto"]["met"] is True and item["rto"]["achieved_seconds"] > 0
    assert item["rto"]["target_minutes"] == plan.rto_target_minutes
    assert item["servers"] == {"total": 3, "launched": 3, "failed": 0}
    assert item["requested_by"] == "operator"


def test_ended_executions_newest_first_without_running_ones_or_other_plans(api, plan):
    old = ended(plan, days_ago=9, rto=600.04, rpo=120, servers=[LaunchStatus.LAUNCHED, LaunchStatus.FAILED])
    recovery = ended(plan, days_ago=5, mode=ExecutionMode.RECOVERY, status=ExecutionStatus.FAILED, rto=4000)
    newest = ended(
        plan, days_ago=1, status=ExecutionStatus.PARTIAL, rto=5000, rpo=1200, servers=[LaunchStatus.TERMINATED]
    )
    ExecutionFactory(plan=plan, status=ExecutionStatus.RUNNING)
    ended(RecoveryPlanFactory(), days_ago=2)

    results = history(api("Viewer"), plan)["results"]
    assert [item["id"] for item in results] == [str(newest.pk), str(recovery.pk), str(old.pk)]
    first, second, third = results
    assert third["rto"] == {"target_minutes": 60, "achieved_seconds": 600.0, "met": True}
    assert third["rpo"] == {"target_minutes": 15, "worst_seconds": 120.0, "met": True}
    assert third["servers"] == {"total": 2, "launched": 1, "failed": 1}
    # A failed recovery never meets its targets, however fast; an unknown RPO stays null.
    assert second["mode"] == "RECOVERY" and second["rto"]["met"] is False
    assert second["rpo"] == {"target_minutes": 15, "worst_seconds": None, "met": False}
    # Over the target: missed. A launch terminated by a clean-up had been launched.
    assert first["rto"]["met"] is False and first["rpo"]["met"] is False
    assert first["servers"] == {"total": 1, "launched": 0, "failed": 0}


def test_a_cleaned_up_drill_counts_its_terminated_servers_as_launched(api, plan):
    execution = ended(plan, days_ago=1, servers=[LaunchStatus.TERMINATED])
    execution.server_launches.update(launched_at=timezone.now())
    assert history(api("Viewer"), plan)["results"][0]["servers"] == {"total": 1, "launched": 1, "failed": 0}


def test_mode_filters_drills_or_recoveries(api, plan):
    drill = ended(plan, days_ago=2)
    recovery = ended(plan, days_ago=1, mode=ExecutionMode.RECOVERY)
    client = api("Viewer")
    assert [item["id"] for item in history(client, plan, "?mode=DRILL")["results"]] == [str(drill.pk)]
    assert [item["id"] for item in history(client, plan, "?mode=RECOVERY")["results"]] == [str(recovery.pk)]
    # An empty filter filters nothing, as in GET executions/.
    assert history(client, plan, "?mode=")["count"] == 2


@pytest.mark.parametrize("mode", ["BACKUP", "drill"])
def test_a_bad_mode_is_400_naming_it(api, plan, mode):
    response = api("Viewer").get(f"/api/v1/plans/{plan.pk}/history/", {"mode": mode})
    assert response.status_code == 400
    assert response.json() == {"mode": [f'"{mode}" is not a mode: use DRILL or RECOVERY.']}


def test_the_history_is_paginated_like_every_list(api, plan):
    for days in range(53):
        ended(plan, days_ago=days + 1)
    client = api("Viewer")
    first = history(client, plan)
    assert first["count"] == 53 and len(first["results"]) == 50 and first["next"].endswith("?page=2")
    second = history(client, plan, "?page=2&mode=DRILL")
    assert len(second["results"]) == 3 and second["next"] is None


@pytest.mark.parametrize("pk", ["999999", "not-a-number"])
def test_an_unknown_plan_is_404(api, pk):
    response = api("Viewer").get(f"/api/v1/plans/{pk}/history/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_history_takes_the_same_number_of_queries_for_more_executions_and_servers(api, plan):
    client = api("Viewer")

    def count_queries():
        with CaptureQueriesContext(connection) as queries:
            history(client, plan)
        return len(queries)

    ended(plan, days_ago=30, servers=[LaunchStatus.LAUNCHED])
    one = count_queries()
    for days in range(6):
        ended(plan, days_ago=days + 1, servers=[LaunchStatus.LAUNCHED] * 4 + [LaunchStatus.FAILED])
    assert count_queries() == one
