"""Scheduled drills: the worker's minute task starts a plan's drills on its cron schedule,
requested by `schedule`, never two at once, once per slot whatever the races and crashes."""

import datetime as dt

import pytest
from django.db import connections
from rest_framework.test import APIClient

from drsorch.sandbox.models import SandboxSourceServer
from drsorch.sandbox.services import sandbox_configure
from drsorch.schedules import SCHEDULES
from executions import engine, services
from executions.models import Execution, ScheduledDrillRun
from executions.tasks import launch_budget_seconds, run_unattended
from executions.unattended import scheduled_drills
from executions.unattended.scheduled_drills import (
    CLAIM_SECONDS,
    KEEP_SKIPPED,
    MISSED_REASON,
    SLOT_GRACE,
    STOPPED_REASON,
    scheduled_drill_record,
    scheduled_drill_start,
    scheduled_drill_take_over,
    scheduled_drills_run,
)
from plans.services import plan_save, plan_wave_specs

from .conftest import START

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def tick_all():
    engine.tick(launch_budget_seconds=launch_budget_seconds())


def run_minutes(clock, minutes, *, step=5, seen_active=None):
    """`minutes` minutes of a worker: at each minute the unattended task, then the engine
    ticked every `step` seconds. Records how many executions were active at every tick."""
    seen_active = [] if seen_active is None else seen_active
    for _ in range(minutes):
        run_unattended()
        for _ in range(60 // step):
            tick_all()
            seen_active.append(Execution.objects.active().count())
            clock.shift(step)
    return seen_active


def runs(plan):
    return list(ScheduledDrillRun.objects.filter(plan=plan).order_by("scheduled_for"))


def test_the_task_is_scheduled_every_minute():
    (spec,) = [s for s in SCHEDULES if s["func"] == "executions.tasks.run_unattended"]
    assert spec["name"] == "drsorch: unattended drills" and spec["minutes"] == 1


def test_every_minute_schedule_drills_one_at_a_time_requested_by_schedule(clock, make_plan):
    # A drill takes longer than a minute: the next slot finds it running.
    sandbox_configure(launch_seconds=80)
    plan = make_plan("Every minute", [("Database", ["db-01"], {})], drill_schedule="* * * * *")

    seen_active = run_minutes(clock, 5)

    assert max(seen_active) == 1  # never two at once
    slots = runs(plan)
    assert [run.scheduled_for for run in slots] == [START + dt.timedelta(minutes=m) for m in range(5)]
    assert [run.outcome for run in slots] == ["STARTED", "SKIPPED", "STARTED", "SKIPPED", "STARTED"]
    first = slots[0].execution
    assert slots[1].reason == f"already running: execution {first.pk} (DRILL, RUNNING)"
    executions = list(Execution.objects.order_by("created_at"))
    assert [e.pk for e in executions] == [run.execution_id for run in slots if run.outcome == "STARTED"]
    assert [e.status for e in executions[:2]] == ["SUCCEEDED", "SUCCEEDED"]
    for execution in executions:
        assert execution.mode == "DRILL"
        assert execution.requested_by is None and execution.requested_by_username == "schedule"
        assert execution.auto_approve is False and execution.accepted_risks == []
    assert first.comment == "Scheduled drill (cron '* * * * *' slot 2026-11-28 12:00 UTC)"
    started = first.events.get(kind="ACTION")
    assert started.actor_name == "schedule" and started.message.startswith("Started a drill of 'Every minute'")

    # "schedule" everywhere: the execution JSON and the pages.
    api = APIClient()
    from django.contrib.auth.models import User

    viewer = User.objects.create_superuser("boss", "boss@example.com", "pw")
    api.force_authenticate(viewer)
    assert api.get(f"/api/v1/executions/{first.pk}/").json()["requested_by"] == "schedule"
    listed = api.get("/api/v1/executions/").json()["results"]
    assert {item["requested_by"] for item in listed} == {"schedule"}


def test_the_task_twice_in_a_minute_starts_one_drill(clock, make_plan):
    plan = make_plan("Twice", [("Database", ["db-01"], {})], drill_schedule="* * * * *")

    run_unattended()
    clock.shift(20)
    run_unattended()

    assert Execution.objects.count() == 1
    assert [run.outcome for run in runs(plan)] == ["STARTED"]


def test_two_workers_racing_for_a_slot_start_one_drill(clock, make_plan):
    plan = make_plan("Raced", [("Database", ["db-01"], {})], drill_schedule="* * * * *")
    slot = START
    # Both workers found the slot free before either inserted its run: the database decides.
    first = scheduled_drill_start(plan=plan, slot=slot, now=START)
    second = scheduled_drill_start(plan=plan, slot=slot, now=START)

    assert first.outcome == "STARTED" and second is None
    assert Execution.objects.count() == 1 and ScheduledDrillRun.objects.count() == 1


@pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)
def test_two_worker_threads_racing_for_a_slot_start_one_drill(clock, make_plan):
    from .test_start import at_once

    plan = make_plan("Threads", [("Database", ["db-01"], {})], drill_schedule="* * * * *")

    results = at_once(2, lambda n: scheduled_drills_run(now=START))

    assert sorted(len(result.runs) for result in results) == [0, 1]
    assert all(result.failed == [] for result in results)
    (run,) = runs(plan)
    assert run.outcome == "STARTED" and Execution.objects.count() == 1


class Crash(BaseException):
    """A worker killed half-way (not an Exception: nothing catches it)."""


def crash_once(monkeypatch, name, *, check=None):
    """Make scheduled_drills.<name> kill the worker on its first call; later calls run it."""
    real = getattr(scheduled_drills, name)
    calls = []

    def crashing(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            if check:
                check(**kwargs)
            raise Crash
        return real(**kwargs)

    monkeypatch.setattr(scheduled_drills, name, crashing)
    return calls


@pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)
def test_execution_start_is_called_with_no_transaction_open(clock, make_plan, monkeypatch):
    plan = make_plan("Unlocked", [("Database", ["db-01"], {})], drill_schedule="* * * * *")
    real_start = services.execution_start
    seen = []

    def watched_start(**kwargs):
        seen.append(connections["default"].in_atomic_block)
        # The claim was committed before DRS is asked anything.
        (run,) = runs(plan)
        assert run.outcome == "STARTING" and run.claimed_until == START + dt.timedelta(seconds=CLAIM_SECONDS)
        return real_start(**kwargs)

    monkeypatch.setattr(scheduled_drills, "execution_start", watched_start)
    run_unattended()

    assert seen == [False]
    (run,) = runs(plan)
    assert run.outcome == "STARTED" and run.claimed_until is None and run.execution is not None


def test_a_crash_after_the_claim_leaves_it_starting_and_the_slot_starts_once_it_expires(clock, make_plan, monkeypatch):
    assert SLOT_GRACE.total_seconds() > CLAIM_SECONDS
    plan = make_plan("Crashy", [("Database", ["db-01"], {})], drill_schedule="0 12 * * *")

    def claimed(**kwargs):
        assert [run.outcome for run in runs(plan)] == ["STARTING"]

    calls = crash_once(monkeypatch, "execution_start", check=claimed)
    with pytest.raises(Crash):
        run_unattended()
    assert len(calls) == 1 and not Execution.objects.exists()
    (run,) = runs(plan)
    assert run.outcome == "STARTING" and run.claimed_until == START + dt.timedelta(seconds=CLAIM_SECONDS)

    # Within the claim the slot is the (stopped) worker's: nobody touches it.
    clock.shift(CLAIM_SECONDS - 1)
    assert scheduled_drills_run(now=dt.datetime.now(dt.UTC)).runs == []
    assert len(calls) == 1 and runs(plan)[0].outcome == "STARTING"

    clock.shift(2)  # the claim expired; the slot is 5 min late, within its grace
    result = scheduled_drills_run(now=dt.datetime.now(dt.UTC))
    run_unattended()
    clock.shift(60)
    run_unattended()

    assert [run.outcome for run in result.runs] == ["STARTED"]
    (run,) = runs(plan)
    assert run.scheduled_for == START and run.outcome == "STARTED" and run.claimed_until is None
    assert Execution.objects.count() == 1 and run.execution == Execution.objects.get()
    assert len(calls) == 2


def test_a_crash_after_the_start_before_the_record_is_settled_with_that_execution(clock, make_plan, monkeypatch):
    plan = make_plan("Started", [("Database", ["db-01"], {})], drill_schedule="0 12 * * *")
    calls = crash_once(monkeypatch, "scheduled_drill_record")
    with pytest.raises(Crash):
        run_unattended()
    started = Execution.objects.get()
    assert calls[0]["execution"] == started
    assert [run.outcome for run in runs(plan)] == ["STARTING"]

    clock.shift(60)
    run_unattended()  # still claimed
    assert [run.outcome for run in runs(plan)] == ["STARTING"]

    clock.shift(CLAIM_SECONDS)
    result = scheduled_drills_run(now=dt.datetime.now(dt.UTC))

    assert result.as_dict() == {"started": [str(started.pk)], "skipped": 0, "failed": []}
    (run,) = runs(plan)
    assert run.outcome == "STARTED" and run.execution == started and run.claimed_until is None
    assert Execution.objects.count() == 1


def test_the_sweep_settles_a_stale_claim_of_an_older_slot(clock, make_plan, monkeypatch):
    # Every minute: a minute after the crash, the crashed slot is no longer the plan's latest.
    plan = make_plan("Swept", [("Database", ["db-01"], {})], drill_schedule="* * * * *")
    crash_once(monkeypatch, "execution_start")
    with pytest.raises(Crash):
        run_unattended()

    clock.shift(CLAIM_SECONDS + 30)  # 12:05:30: the 12:00 claim expired, the worker is back
    run_unattended()

    crashed, latest = runs(plan)
    assert crashed.scheduled_for == START and crashed.outcome == "STARTED"
    assert latest.scheduled_for == START + dt.timedelta(minutes=5) and latest.outcome == "SKIPPED"
    assert latest.reason.startswith(f"already running: execution {crashed.execution_id} (DRILL, ")
    assert Execution.objects.count() == 1


def test_a_stale_claim_past_the_grace_is_skipped_and_never_run(clock, make_plan, monkeypatch):
    plan = make_plan("Stopped", [("Database", ["db-01"], {})], drill_schedule="* * * * *")
    crash_once(monkeypatch, "execution_start")
    with pytest.raises(Crash):
        run_unattended()

    clock.shift(SLOT_GRACE.total_seconds() + 60)  # 12:11: the worker was down for 11 minutes
    run_unattended()

    crashed, latest = runs(plan)
    assert crashed.outcome == "SKIPPED" and crashed.reason == STOPPED_REASON and crashed.execution is None
    assert latest.scheduled_for == START + dt.timedelta(minutes=11) and latest.outcome == "STARTED"
    assert Execution.objects.get() == latest.execution


def test_a_stale_claim_of_a_plan_changed_since_is_not_started(clock, make_plan, monkeypatch):
    plan = make_plan("Changed", [("Database", ["db-01"], {})], drill_schedule="0 12 * * *")
    crash_once(monkeypatch, "execution_start")
    with pytest.raises(Crash):
        run_unattended()
    clock.shift(60)
    plan_save(plan=plan, name=plan.name, waves=plan_wave_specs(plan=plan), drill_schedule=None)

    clock.shift(CLAIM_SECONDS)
    run_unattended()

    (run,) = runs(plan)
    assert run.outcome == "SKIPPED" and run.reason.startswith("not started: the worker stopped while starting it")
    assert not Execution.objects.exists()


def test_two_workers_taking_over_a_claim_settle_it_once(clock, make_plan, monkeypatch):
    plan = make_plan("Taken", [("Database", ["db-01"], {})], drill_schedule="0 12 * * *")
    crash_once(monkeypatch, "execution_start")
    with pytest.raises(Crash):
        run_unattended()
    (stale,) = runs(plan)
    now = START + dt.timedelta(seconds=CLAIM_SECONDS + 1)
    clock.move_to(now)

    # Both read the stale row before either took it over: the conditional UPDATE decides.
    first = scheduled_drill_take_over(run=stale, now=now)
    second = scheduled_drill_take_over(run=stale, now=now)

    assert first.outcome == "STARTED" and second is None
    assert Execution.objects.count() == 1
    # A record of a row someone else settled changes nothing.
    assert scheduled_drill_record(run=stale, outcome="SKIPPED", reason="late") is None
    assert runs(plan)[0].outcome == "STARTED"


def test_an_error_of_one_plan_does_not_stop_the_others(clock, make_plan, monkeypatch):
    broken = make_plan("Broken", [("Database", ["db-01"], {})], drill_schedule="* * * * *")
    fine = make_plan("Fine", [("Database", ["db-02"], {})], drill_schedule="* * * * *")
    real_start = services.execution_start

    def fail_for_broken(**kwargs):
        if kwargs["plan"].pk == broken.pk:
            raise RuntimeError("boom")
        return real_start(**kwargs)

    monkeypatch.setattr(scheduled_drills, "execution_start", fail_for_broken)
    result = scheduled_drills_run(now=START)

    assert result.failed == ["Broken"]
    assert [run.plan for run in result.runs] == [fine]
    # The claim expired at once: the next minute's sweep tries the slot again.
    (run,) = runs(broken)
    assert run.outcome == "STARTING" and run.claimed_until == START

    monkeypatch.setattr(scheduled_drills, "execution_start", real_start)
    clock.shift(60)
    result = scheduled_drills_run(now=START + dt.timedelta(seconds=60))

    assert result.failed == []
    assert [run.outcome for run in runs(broken)] == ["STARTED", "SKIPPED"]
    assert runs(broken)[0].scheduled_for == START


def test_old_skipped_runs_are_pruned_and_started_ones_kept(clock, make_plan):
    plan = make_plan("Pruned", [("Database", ["db-01"], {})])
    old = START - KEEP_SKIPPED - dt.timedelta(minutes=1)
    recent = START - KEEP_SKIPPED + dt.timedelta(minutes=1)
    ScheduledDrillRun.objects.bulk_create([
        ScheduledDrillRun(plan=plan, scheduled_for=old, outcome="SKIPPED", reason="already running: ..."),
        ScheduledDrillRun(plan=plan, scheduled_for=old - dt.timedelta(minutes=1), outcome="STARTED"),
        ScheduledDrillRun(plan=plan, scheduled_for=recent, outcome="SKIPPED", reason="already running: ..."),
    ])

    scheduled_drills_run(now=START)

    assert [(run.scheduled_for, run.outcome) for run in runs(plan)] == [
        (old - dt.timedelta(minutes=1), "STARTED"),
        (recent, "SKIPPED"),
    ]


def test_readiness_errors_skip_the_slot_with_the_reason(clock, make_plan):
    plan = make_plan("Gone", [("Database", ["db-01"], {})], drill_schedule="* * * * *")
    SandboxSourceServer.objects.filter(hostname="db-01").delete()

    run_unattended()

    (run,) = runs(plan)
    assert run.outcome == "SKIPPED" and run.execution is None
    assert run.reason.startswith("readiness errors: Server db-01 (") and "is no longer known to DRS" in run.reason
    assert not Execution.objects.exists()


def test_readiness_warnings_are_accepted_and_recorded(clock, make_plan):
    plan = make_plan("Lagging", [("Database", ["db-01"], {})], drill_schedule="* * * * *")
    sandbox_configure(disconnect=["db-01"])

    run_unattended()

    (run,) = runs(plan)
    assert run.outcome == "STARTED"
    execution = run.execution
    assert execution.accepted_risks and any("DISCONNECTED" in risk for risk in execution.accepted_risks)
    accepted = execution.events.get(data__has_key="accepted_risks")
    assert accepted.actor_name == "schedule"
    assert accepted.message.startswith(f"schedule accepted {len(execution.accepted_risks)} readiness risk(s)")


def gated_plan(make_plan, *, auto_approve):
    return make_plan(
        f"Gated {auto_approve}",
        [("Database", ["db-01"], {}), ("Web", ["web-01"], {"approval_required": True})],
        drill_schedule="* * * * *",
        auto_approve=auto_approve,
    )


def test_auto_approve_lets_a_scheduled_drill_pass_its_gate_alone(clock, drive, make_plan):
    plan = gated_plan(make_plan, auto_approve=True)
    run_unattended()
    execution = drive(runs(plan)[0].execution)
    assert execution.status == "SUCCEEDED" and execution.auto_approve
    assert execution.events.filter(message__contains="approved automatically (auto-approve)").exists()


def test_without_auto_approve_a_scheduled_drill_waits_at_its_gate(clock, drive, make_plan):
    plan = gated_plan(make_plan, auto_approve=False)
    run_unattended()
    execution = drive(runs(plan)[0].execution, until=lambda e: e.status == "WAITING_APPROVAL")
    assert execution.wave_runs.get(index=1).status == "WAITING_APPROVAL"


def test_a_late_slot_is_recorded_missed_and_never_run(clock, make_plan):
    plan = make_plan("Daily", [("Database", ["db-01"], {})], drill_schedule="30 12 * * *")
    # The worker was down from before 12:30 until 14:00.
    clock.shift(2 * 3600)
    run_unattended()
    run_unattended()

    (run,) = runs(plan)
    assert run.scheduled_for == START.replace(minute=30) and run.outcome == "SKIPPED"
    assert run.reason == MISSED_REASON
    assert not Execution.objects.exists()


def test_a_slot_due_before_the_schedule_was_set_is_not_run(clock, make_plan):
    plan = make_plan("Later", [("Database", ["db-01"], {})])
    clock.shift(30)  # 12:00:30: the 12:00 slot has passed when the schedule is set
    plan_save(plan=plan, name=plan.name, waves=plan_wave_specs(plan=plan), drill_schedule="* * * * *")

    run_unattended()
    assert not ScheduledDrillRun.objects.exists()

    clock.shift(30)  # 12:01
    run_unattended()
    (run,) = runs(plan)
    assert run.scheduled_for == START + dt.timedelta(minutes=1) and run.outcome == "STARTED"


def test_the_due_slot_costs_a_few_queries_when_nothing_is_due(clock, make_plan, django_assert_max_num_queries):
    make_plan("Quiet", [("Database", ["db-01"], {})], drill_schedule="0 3 * * *")
    with django_assert_max_num_queries(3):
        result = scheduled_drills_run(now=START)
    assert result.runs == []


def test_the_plan_page_and_the_api_list_the_scheduled_runs(clock, make_plan, make_user, client):
    sandbox_configure(launch_seconds=80)
    plan = make_plan("Listed", [("Database", ["db-01"], {})], drill_schedule="* * * * *")
    run_minutes(clock, 2)
    started, skipped = runs(plan)
    viewer = make_user("viewer", role="Viewer")

    client.force_login(viewer)
    page = client.get(plan.get_absolute_url()).content.decode()
    table = page[page.index('id="scheduled-runs"') :]
    assert "2026-11-28 12:00" in table and "2026-11-28 12:01" in table
    assert started.execution.get_absolute_url() in table
    assert f"already running: execution {started.execution_id}" in table
    assert 'id="next-drills"' in page

    api = APIClient()
    api.force_authenticate(viewer)
    body = api.get(f"/api/v1/plans/{plan.pk}/scheduled-runs/").json()
    assert body["count"] == 2
    assert body["results"][0] == {
        "scheduled_for": "2026-11-28T12:01:00Z",
        "outcome": "SKIPPED",
        "reason": skipped.reason,
        "execution": None,
        "created_at": "2026-11-28T12:01:00Z",
    }
    assert body["results"][1]["outcome"] == "STARTED"
    assert body["results"][1]["execution"] == str(started.execution_id)
    assert api.get("/api/v1/plans/999999/scheduled-runs/").status_code == 404
    assert api.post(f"/api/v1/plans/{plan.pk}/scheduled-runs/").status_code == 405
    api.force_authenticate(make_user("nobody"))
    assert api.get(f"/api/v1/plans/{plan.pk}/scheduled-runs/").status_code == 403


def test_the_plan_page_and_the_api_show_a_slot_being_started(clock, make_plan, make_user, client, monkeypatch):
    plan = make_plan("Starting", [("Database", ["db-01"], {})], drill_schedule="* * * * *")
    crash_once(monkeypatch, "execution_start")
    with pytest.raises(Crash):
        run_unattended()
    viewer = make_user("viewer", role="Viewer")

    client.force_login(viewer)
    page = client.get(plan.get_absolute_url()).content.decode()
    table = page[page.index('id="scheduled-runs"') :]
    assert "Starting…" in table and "A worker is starting the drill" in table

    api = APIClient()
    api.force_authenticate(viewer)
    (item,) = api.get(f"/api/v1/plans/{plan.pk}/scheduled-runs/").json()["results"]
    assert item["outcome"] == "STARTING" and item["execution"] is None and item["reason"] == ""


def test_the_admin_shows_the_scheduled_runs_read_only_to_every_role(clock, make_plan, make_user, client):
    from django.urls import reverse

    plan = make_plan("Admin", [("Database", ["db-01"], {})], drill_schedule="* * * * *")
    run_unattended()
    (run,) = runs(plan)
    for role in ("Viewer", "Operator", "Commander", "Planner"):
        assert make_user(role.lower(), role=role).has_perm("executions.view_scheduleddrillrun"), role
    viewer = make_user("vera", role="Viewer")
    viewer.is_staff = True
    viewer.save()
    client.force_login(viewer)

    listing = client.get(reverse("admin:executions_scheduleddrillrun_changelist"))
    assert listing.status_code == 200 and "Admin" in listing.content.decode()
    detail = client.get(reverse("admin:executions_scheduleddrillrun_change", args=[run.pk]))
    assert detail.status_code == 200 and b'name="outcome"' not in detail.content
    assert client.get(reverse("admin:executions_scheduleddrillrun_add")).status_code == 403
    assert client.post(reverse("admin:executions_scheduleddrillrun_delete", args=[run.pk])).status_code == 403
    superuser = make_user("root", superuser=True)
    client.force_login(superuser)
    assert client.get(reverse("admin:executions_scheduleddrillrun_add")).status_code == 403
    assert ScheduledDrillRun.objects.get().outcome == "STARTED"


def test_the_cli_lists_a_scheduled_drill_as_requested_by_schedule(clock, make_plan):
    from io import StringIO

    from django.core.management import call_command

    make_plan("Cli", [("Database", ["db-01"], {})], drill_schedule="* * * * *")
    run_unattended()
    out = StringIO()
    call_command("execution", "list", "--json", stdout=out)
    assert "\"requested_by\": \"schedule\"" in out.getvalue()
