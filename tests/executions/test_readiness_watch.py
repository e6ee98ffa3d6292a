"""The readiness watch: every plan evaluated on a schedule, readiness.degraded once when a
ready plan stops being ready (with what changed), readiness.recovered once when it is ready
again; a running plan is no degradation."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone
from django_q.models import Schedule

from drsorch.sandbox.services import sandbox_configure
from drsorch.schedules import schedules_setup
from executions import engine
from executions.notable import READINESS_DEGRADED, READINESS_RECOVERED
from executions.services import execution_start
from executions.signals import notable_events
from executions.tasks import launch_budget_seconds, watch_plans
from executions.unattended import readiness_watch
from executions.unattended.readiness_watch import EVENT_OF, plans_readiness_watch
from plans.models import PlanReadinessEvaluation

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

TWO_WAVES = [("Database", ["db-01"], {}), ("Web", ["web-01"], {})]


@pytest.fixture
def notable():
    """Every notable event sent while the test runs."""
    events = []

    def receiver(sender, *, events: list, **kwargs):
        received.extend(events)

    received = events
    notable_events.connect(receiver, weak=False, dispatch_uid="test-watch-notable")
    yield events
    notable_events.disconnect(dispatch_uid="test-watch-notable")


def watch():
    return plans_readiness_watch(now=timezone.now())


def last(plan):
    return plan.readiness_evaluations.order_by("-sequence").first()


def codes(findings):
    return sorted((f["code"], f["hostname"]) for f in findings)


def test_the_notices_are_the_events_of_executions_notable():
    assert EVENT_OF == {"readiness.degraded": READINESS_DEGRADED, "readiness.recovered": READINESS_RECOVERED}


def test_a_regression_notifies_once_with_what_changed_and_the_recovery_once(clock, make_plan, notable):
    plan = make_plan("Watched", TWO_WAVES, rpo_target_minutes=15)
    watch()  # the baseline: ready, nothing sent
    assert last(plan).ready and last(plan).sequence == 1 and notable == []

    sandbox_configure(disconnect=["db-01"])
    clock.shift(60)
    result = watch()
    assert result.degraded == [plan.pk]
    (event,) = notable
    assert (event.event, event.plan_id) == ("readiness.degraded", plan.pk)
    assert codes(event.details["new_findings"]) == [("replication_unhealthy", "db-01")]
    assert codes(event.details["findings"]) == [("replication_unhealthy", "db-01")]
    assert event.details["warning_count"] == 1 and event.details["error_count"] == 0
    assert event.dedupe_key == f"readiness.degraded:{plan.pk}:2"
    evaluation = last(plan)
    assert not evaluation.ready and evaluation.notified == "readiness.degraded"

    # Still degraded, and worse (the lag passes the RPO): recorded, not notified again.
    for _ in range(3):
        clock.shift(30 * 60)
        assert watch().degraded == []
    assert len(notable) == 1
    changes = [e.changed for e in plan.readiness_evaluations.order_by("sequence")][2:]
    assert codes(changes[0]["new"]) == [("lag_above_rpo", "db-01")]
    assert all(c == {"new": [], "resolved": []} for c in changes[1:])

    sandbox_configure(clear=True)
    clock.shift(60)
    assert watch().recovered == [plan.pk]
    assert [e.event for e in notable] == ["readiness.degraded", "readiness.recovered"]
    recovered = notable[-1]
    assert codes(recovered.details["resolved_findings"]) == [
        ("lag_above_rpo", "db-01"),
        ("replication_unhealthy", "db-01"),
    ]
    assert recovered.details["findings"] == []
    clock.shift(30 * 60)
    watch()
    assert len(notable) == 2
    assert last(plan).ready and last(plan).notified == ""


def test_a_running_plan_is_not_degraded(clock, make_plan, notable):
    plan = make_plan("Running", TWO_WAVES)
    watch()
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    execution.refresh_from_db()
    assert execution.status == "RUNNING"
    clock.shift(5)
    watch()
    assert last(plan).ready and last(plan).findings == []
    assert [e.event for e in notable if e.event.startswith("readiness")] == []


def test_a_server_held_by_another_plans_execution_is_not_a_degradation(clock, shared, notable):
    first, second = shared
    watch()
    execution_start(plan=first, mode="DRILL", requested_by=None)
    watch()
    assert last(second).ready
    assert [e.event for e in notable if e.event.startswith("readiness")] == []


def test_drs_unreachable_degrades_every_plan_on_the_target(clock, make_plan, notable):
    plan = make_plan("Blind", TWO_WAVES)
    watch()
    sandbox_configure(deny=["DescribeSourceServers"])
    result = watch()
    assert result.degraded == [plan.pk] and result.unreachable_targets == ["Sandbox test"]
    (event,) = notable
    assert codes(event.details["new_findings"]) == [("inventory_stale", None)]
    assert "AccessDeniedException" in event.details["new_findings"][0]["message"]


def test_the_first_evaluation_is_a_baseline(clock, make_plan, notable):
    plan = make_plan("Born broken", TWO_WAVES)
    sandbox_configure(disconnect=["web-01"])
    watch()
    assert not last(plan).ready and last(plan).changed == {}
    assert notable == []
    sandbox_configure(clear=True)
    watch()  # ready again, but no degradation was ever announced
    assert last(plan).ready and notable == []
    sandbox_configure(disconnect=["web-01"])
    watch()
    assert [e.event for e in notable] == ["readiness.degraded"]


def test_one_failing_plan_does_not_stop_the_others(clock, make_plan, monkeypatch, notable):
    broken = make_plan("A broken", [("Database", ["db-01"], {})])
    fine = make_plan("B fine", [("Web", ["web-01"], {})])
    real = readiness_watch.plan_readiness

    def failing(*, plan, **kwargs):
        if plan.pk == broken.pk:
            raise RuntimeError("boom")
        return real(plan=plan, **kwargs)

    monkeypatch.setattr(readiness_watch, "plan_readiness", failing)
    result = watch()
    assert result.failed == [broken.pk] and result.evaluated == [fine.pk]
    assert last(fine).ready and last(broken) is None


def test_two_evaluations_of_a_plan_at_once_notify_once(clock, make_plan, monkeypatch, notable):
    """Another worker stores the next evaluation between this one's read of the previous and
    its insert: the insert of the same sequence fails, so this one neither stores nor sends."""
    plan = make_plan("Raced", TWO_WAVES)
    watch()
    sandbox_configure(disconnect=["db-01"])
    real = readiness_watch.findings_changed

    def another_worker_first(previous, current):
        PlanReadinessEvaluation.objects.create(
            plan=plan, sequence=2, evaluated_at=timezone.now(), ready=False, notified="readiness.degraded"
        )
        return real(previous, current)

    monkeypatch.setattr(readiness_watch, "findings_changed", another_worker_first)
    assert readiness_watch.plan_readiness_evaluate(plan=plan, now=timezone.now()) is None
    assert notable == []
    monkeypatch.setattr(readiness_watch, "findings_changed", real)
    result = watch()
    assert result.evaluated == [plan.pk] and result.degraded == [plan.pk]
    assert len(notable) == 1


def test_old_unchanged_evaluations_are_pruned(clock, make_plan):
    plan = make_plan("Long watched", TWO_WAVES)
    for _ in range(15):
        watch()
        clock.shift(3 * 24 * 3600)  # 45 days
    kept = list(plan.readiness_evaluations.order_by("sequence").values_list("sequence", flat=True))
    assert kept[-1] == 15
    assert len(kept) >= readiness_watch.HISTORY_KEPT
    assert kept[0] > 1  # the oldest unchanged ones are gone


def test_the_task_runs_the_watch_and_the_overdue_notice(clock, make_plan, notable):
    plan = make_plan("Task", TWO_WAVES, drill_max_age_days=1)
    clock.shift(2 * 24 * 3600)
    result = watch_plans()
    assert result["evaluated"] == 1 and result["overdue_notified"] == [plan.pk]
    assert [e.event for e in notable] == ["drill.overdue"]


def test_the_setting_sets_the_schedules_minutes(db):
    with override_settings(DRSORCH_READINESS_WATCH_MINUTES=7):
        schedules_setup()
    schedule = Schedule.objects.get(name="drsorch: readiness watch")
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == ("executions.tasks.watch_plans", "I", 7)
    with override_settings(DRSORCH_READINESS_WATCH_MINUTES=45):
        schedules_setup()
    assert Schedule.objects.filter(name="drsorch: readiness watch").count() == 1
    assert Schedule.objects.get(name="drsorch: readiness watch").minutes == 45
    schedules_setup()
    assert Schedule.objects.get(name="drsorch: readiness watch").minutes == 30  # the default


def read_watch_minutes(value):
    """DRSORCH_READINESS_WATCH_MINUTES as drsorch.settings reads it in a fresh interpreter."""
    env = {**os.environ, "DEBUG": "true", "DRSORCH_READINESS_WATCH_MINUTES": value}
    code = "import drsorch.settings as s; print(s.DRSORCH_READINESS_WATCH_MINUTES)"
    root = Path(__file__).resolve().parents[2]
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)


def test_the_watch_minutes_come_from_the_environment_and_are_checked():
    assert read_watch_minutes("15").stdout.strip() == "15"
    refused = read_watch_minutes("0")
    assert refused.returncode != 0
    assert "DRSORCH_READINESS_WATCH_MINUTES must be from 1 to 1440, not 0." in refused.stderr
