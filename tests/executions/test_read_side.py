"""What drsorch reads from DRS: job logs as events and failure reasons, lags, active jobs."""

import datetime as dt

import botocore.session
import pytest
from django.utils import timezone

from drsorch.drs.constants import FAILURE_LOG_EVENTS
from drsorch.drs.times import parse_duration_seconds
from drsorch.sandbox.models import SandboxJob
from drsorch.sandbox.services import sandbox_configure
from executions import engine
from executions.choices import EventKind
from executions.engine import claim_execution, release_executions
from executions.engine.job_log import apply_log
from executions.engine.rows import TickRows
from executions.models import DrsJob, ExecutionEvent
from executions.readiness import plan_readiness
from executions.services import execution_start
from executions.tasks import launch_budget_seconds
from plans.models import SourceServer

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def started_drill(make_plan, name="Logs", hostnames=("db-01", "db-02")):
    """A drill whose one job is in DRS (one tick), and its TickRows as a tick loads them."""
    sandbox_configure(launch_seconds=300)
    execution = execution_start(
        plan=make_plan(name, [("Database", list(hostnames), {})]), mode="DRILL", requested_by=None
    )
    engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    job = DrsJob.objects.get(execution=execution)
    return execution, job


def apply_as_a_tick(execution, job, items):
    """apply_log over the rows a tick loads, saved under the execution's lease as a tick does."""
    assert claim_execution(execution.pk, owner="test")
    try:
        rows = TickRows([execution], owner="test")
        apply_log(rows, rows.jobs[job.pk], items)
        rows.save()
    finally:
        release_executions([execution], owner="test")


def item(event, at, server_id="", **data):
    return {
        "logDateTime": at,
        "event": event,
        "eventData": {**({"sourceServerID": server_id} if server_id else {}), **data},
    }


def test_failure_events_are_every_failure_of_drs_model():
    """Every failure event of botocore's JobLogEvent enum is mapped, and nothing else is."""
    enum = botocore.session.get_session().get_service_model("drs").shape_for("JobLogEvent").enum
    failures = {name for name in enum if name.endswith(("_FAIL", "_FAILED"))} | {"SERVER_SKIPPED", "JOB_CANCEL"}
    assert failures == FAILURE_LOG_EVENTS


@pytest.mark.parametrize(
    "event",
    sorted(
        {
            "SERVER_SKIPPED",
            "CLEANUP_FAIL",
            "JOB_CANCEL",
            "DEPLOY_NETWORK_CONFIGURATION_FAILED",
            "UPDATE_NETWORK_CONFIGURATION_FAILED",
            "UPDATE_LAUNCH_TEMPLATE_FAILED",
            "NETWORK_RECOVERY_FAIL",
        }
    ),
)
def test_failure_events_give_the_launch_its_reason(clock, make_plan, event):
    execution, job = started_drill(make_plan)
    db1, db2 = execution.server_launches.order_by("hostname")
    # JOB_CANCEL names no server: it is the reason of every server of the job.
    server_id = "" if event == "JOB_CANCEL" else db1.source_server_id
    apply_as_a_tick(
        execution,
        job,
        [
            item("JOB_START", "2026-11-28T12:00:01Z"),
            item(event, "2026-11-28T12:00:05Z", server_id, rawError=f"{event} said why"),
        ],
    )

    db1.refresh_from_db()
    db2.refresh_from_db()
    assert db1.error == f"{event}: {event} said why"
    assert db2.error == (db1.error if event == "JOB_CANCEL" else "")
    messages = list(
        ExecutionEvent.objects.filter(execution=execution, kind=EventKind.DRS).values_list("message", flat=True)
    )
    assert any(event in m and f"{event} said why" in m for m in messages)


def test_a_failure_event_without_raw_error_still_says_what_failed(clock, make_plan):
    execution, job = started_drill(make_plan)
    launch = execution.server_launches.first()
    apply_as_a_tick(execution, job, [item("SERVER_SKIPPED", "2026-11-28T12:00:05Z", launch.source_server_id)])
    launch.refresh_from_db()
    assert launch.error == "SERVER_SKIPPED: DRS skipped the server"


def test_job_log_is_deduplicated_by_content_not_position(clock, make_plan):
    execution, job = started_drill(make_plan)
    server = execution.server_launches.first().source_server_id
    first = [
        item("JOB_START", "2026-11-28T12:00:01Z"),
        item("SNAPSHOT_START", "2026-11-28T12:00:02Z", server),
        item("SNAPSHOT_END", "2026-11-28T12:00:09Z", server),
    ]
    apply_as_a_tick(execution, job, first)
    # DRS lists them in another order and inserts an item among them.
    second = [first[2], item("CONVERSION_START", "2026-11-28T12:00:10Z", server), first[0], first[1]]
    apply_as_a_tick(execution, job, second)

    names = [
        m.split(": ", 1)[1].split(" ")[0]
        for m in ExecutionEvent.objects.filter(
            execution=execution, kind=EventKind.DRS, message__startswith=f"{job.job_id}: "
        ).values_list("message", flat=True)
    ]
    copied = [n for n in names if n in {"JOB_START", "SNAPSHOT_START", "SNAPSHOT_END", "CONVERSION_START"}]
    assert sorted(copied) == sorted(["JOB_START", "SNAPSHOT_START", "SNAPSHOT_END", "CONVERSION_START"])


def test_a_relaunch_says_the_previous_instance_was_replaced(clock, drive, make_plan):
    first = drive(
        execution_start(plan=make_plan("First", [("Database", ["db-01"], {})]), mode="DRILL", requested_by=None)
    )
    old = first.server_launches.get().recovery_instance_id
    second = drive(execution_start(plan=first.plan, mode="DRILL", requested_by=None))
    assert second.server_launches.get().recovery_instance_id != old
    replaced = [
        e.message
        for e in ExecutionEvent.objects.filter(execution=second, kind=EventKind.DRS)
        if "CLEANUP_" in e.message
    ]
    assert len(replaced) == 2 and all(
        f"previous recovery instance {old}, replaced by this launch" in m for m in replaced
    )


def test_launch_start_names_the_instance_when_the_job_does_not(clock, drive, make_plan):
    sandbox_configure(omit_instance_ids=True)
    execution = drive(
        execution_start(plan=make_plan("Omitted", [("Database", ["db-01"], {})]), mode="DRILL", requested_by=None)
    )
    assert execution.server_launches.get().recovery_instance_id.startswith("i-")


# --- lags ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("P1W", 604800),
        ("P2WT1H", 1213200),
        ("P1Y", None),
        ("P2M", None),
        ("P1Y2M3D", None),
        ("P1DT", None),
    ],
)
def test_lag_durations_in_weeks_are_read_and_years_or_months_are_unknown(value, seconds):
    assert parse_duration_seconds(value) == seconds


def stored_lag(server, lag_duration):
    """The server as the inventory sync stores a DRS record with this lagDuration."""
    raw = dict(server.raw)
    raw["dataReplicationInfo"] = {**raw.get("dataReplicationInfo", {}), "lagDuration": lag_duration}
    SourceServer.objects.filter(pk=server.pk).update(raw=raw, lag_seconds=parse_duration_seconds(lag_duration))


def test_a_lag_of_a_week_is_over_the_rpo_and_an_unreadable_lag_is_unknown(clock, make_plan):
    plan = make_plan("Lagging", [("Database", ["db-01", "db-02"], {})])
    db1, db2 = SourceServer.objects.filter(hostname__in=["db-01", "db-02"]).order_by("hostname")
    stored_lag(db1, "P1W")
    stored_lag(db2, "P1Y")

    codes = {(c.code, c.server.hostname if c.server else None) for c in plan_readiness(plan=plan).warnings}

    assert ("lag_above_rpo", "db-01") in codes
    assert ("lag_unknown", "db-02") in codes and ("lag_above_rpo", "db-02") not in codes


def test_the_inventory_shows_an_unreadable_lag_as_unknown(clock, make_plan, client, make_user):
    make_plan("Lagging", [("Database", ["db-01"], {})])
    stored_lag(SourceServer.objects.get(hostname="db-01"), "P1Y")
    client.force_login(make_user(role="Viewer"))
    page = client.get("/servers/").content.decode()
    assert 'title="DRS reported P1Y">unknown</span>' in page


# --- active jobs ---------------------------------------------------------------------------------


def test_readiness_sees_an_active_job_started_days_ago(clock, make_plan):
    plan = make_plan("Held", [("Database", ["db-01"], {})])
    sandbox_configure(busy=["db-01"], busy_seconds=3600)
    # A job that runs for days (stuck in DRS): the outside job started three days ago still holds db-01.
    SandboxJob.objects.update(ends_at=timezone.now() + dt.timedelta(days=5))
    clock.shift(dt.timedelta(days=3).total_seconds())

    codes = {check.code for check in plan_readiness(plan=plan).warnings}

    assert "server_in_active_job" in codes
