"""The status-change hook point: executions.signals, sent on commit by the engine and the services."""

import pytest
from django.db import connection

from executions import engine
from executions.engine.rows import TickRows
from executions.models import Execution, WaveRun
from executions.services import execution_approve, execution_cancel, execution_start
from executions.signals import execution_status_changed, notable_events, wave_status_changed
from executions.tasks import launch_budget_seconds

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)

TWO_WAVES = [("Database", ["db-01"], {}), ("Web", ["web-01"], {})]


class Heard(list):
    """The changes heard, and for each whether a transaction was still open when it was sent."""

    inside_transaction: list[bool]


@pytest.fixture
def heard():
    """Every status change announced while the test runs: (model name, pk, execution pk, old, new)."""
    changes = Heard()
    changes.inside_transaction = []

    def receiver(sender, *, pk, execution_id, old_status, new_status, **kwargs):
        changes.append((sender.__name__, pk, execution_id, old_status, new_status))
        changes.inside_transaction.append(connection.in_atomic_block)

    execution_status_changed.connect(receiver, weak=False, dispatch_uid="test-execution")
    wave_status_changed.connect(receiver, weak=False, dispatch_uid="test-wave")
    yield changes
    execution_status_changed.disconnect(dispatch_uid="test-execution")
    wave_status_changed.disconnect(dispatch_uid="test-wave")


def of(changes, obj):
    return [(old, new) for model, pk, _, old, new in changes if model == type(obj).__name__ and pk == obj.pk]


def test_a_drill_announces_every_status_change_after_commit(clock, drive, make_plan, heard):
    execution = drive(execution_start(plan=make_plan("Heard", TWO_WAVES), mode="DRILL", requested_by=None))
    assert execution.status == "SUCCEEDED"
    assert of(heard, execution) == [(None, "PENDING"), ("PENDING", "RUNNING"), ("RUNNING", "SUCCEEDED")]
    for wave in execution.wave_runs.all():
        assert of(heard, wave) == [(None, "PENDING"), ("PENDING", "LAUNCHING"), ("LAUNCHING", "SUCCEEDED")]
    assert {change[2] for change in heard} == {execution.pk}
    assert not any(heard.inside_transaction)  # sent once the save had committed


def test_a_tick_that_lost_its_lease_announces_nothing(clock, make_plan, heard):
    execution = execution_start(plan=make_plan("Slow", TWO_WAVES), mode="DRILL", requested_by=None)
    heard.clear()
    (claimed,) = engine.claim_executions(owner="slow")
    rows = TickRows([claimed], owner="slow")
    clock.shift(engine.LEASE_SECONDS + 1)
    assert engine.claim_executions(owner="fast")  # another worker took over
    rows.set_status(rows.executions[execution.pk], "RUNNING")
    rows.set_status(rows.waves[execution.pk][0], "LAUNCHING")
    rows.save()
    assert heard == []

    engine.tick(execution_ids=[execution.pk], owner="fast", launch_budget_seconds=launch_budget_seconds())
    database = execution.wave_runs.get(index=0)
    assert of(heard, Execution(pk=execution.pk)) == [("PENDING", "RUNNING")]
    assert of(heard, database) == [("PENDING", "LAUNCHING")]


def test_a_cancel_is_announced_and_so_is_its_end(clock, drive, make_plan, heard):
    execution = execution_start(plan=make_plan("Cancelled", TWO_WAVES), mode="DRILL", requested_by=None)
    engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    heard.clear()
    execution_cancel(execution=execution, user=None)
    assert heard == [("Execution", execution.pk, execution.pk, "RUNNING", "CANCELLING")]
    execution = drive(execution)
    web = execution.wave_runs.get(name="Web")
    assert of(heard, execution)[-1] == ("CANCELLING", "CANCELLED")
    assert of(heard, web) == [("PENDING", "CANCELLED")]


def test_an_approval_is_announced(clock, drive, make_plan, heard):
    plan = make_plan("Gate", [("Database", ["db-01"], {}), ("Web", ["web-01"], {"approval_required": True})])
    execution = drive(
        execution_start(plan=plan, mode="DRILL", requested_by=None), until=lambda e: e.status == "WAITING_APPROVAL"
    )
    web = execution.wave_runs.get(name="Web")
    assert of(heard, web)[-1] == ("PENDING", "WAITING_APPROVAL")
    heard.clear()
    execution_approve(execution=execution, user=None)
    assert heard == [
        ("WaveRun", web.pk, execution.pk, "WAITING_APPROVAL", "LAUNCHING"),
        ("Execution", execution.pk, execution.pk, "WAITING_APPROVAL", "RUNNING"),
    ]


def test_a_failing_receiver_changes_nothing(clock, make_plan):
    execution = execution_start(plan=make_plan("Broken receiver", TWO_WAVES), mode="DRILL", requested_by=None)

    def broken(sender, **kwargs):
        raise RuntimeError("mail server down")

    execution_status_changed.connect(broken, weak=False, dispatch_uid="test-broken")
    try:
        engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    finally:
        execution_status_changed.disconnect(dispatch_uid="test-broken")
    execution.refresh_from_db()
    assert execution.status == "RUNNING"
    assert WaveRun.objects.get(execution=execution, index=0).status == "LAUNCHING"


@pytest.fixture
def notable():
    """Every notable event sent while the test runs: (event, plan id, execution id), and for
    each batch whether it was sent inside a transaction."""
    events = Heard()
    events.inside_transaction = []

    def receiver(sender, *, events: list, **kwargs):
        received.extend((e.event, e.plan_id, e.execution_id) for e in events)
        events_inside.append(connection.in_atomic_block)

    received, events_inside = events, events.inside_transaction
    notable_events.connect(receiver, weak=False, dispatch_uid="test-notable")
    yield events
    notable_events.disconnect(dispatch_uid="test-notable")


def test_a_drill_sends_its_started_and_finished_events_inside_the_transactions_that_made_them(
    clock, drive, make_plan, notable
):
    plan = make_plan("Notable", TWO_WAVES)
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    assert execution.status == "SUCCEEDED"
    assert notable == [("execution.started", plan.pk, execution.pk), ("execution.finished", plan.pk, execution.pk)]
    assert all(notable.inside_transaction)  # so an outbox row commits with its change


def test_a_gate_sends_waiting_approval_once_and_the_approval_sends_nothing(clock, drive, make_plan, notable):
    plan = make_plan("Gate", [("Database", ["db-01"], {}), ("Web", ["web-01"], {"approval_required": True})])
    execution = drive(
        execution_start(plan=plan, mode="DRILL", requested_by=None), until=lambda e: e.status == "WAITING_APPROVAL"
    )
    assert [event for event, *_ in notable] == ["execution.started", "execution.waiting_approval"]
    execution_approve(execution=execution, user=None)
    drive(execution)
    assert [event for event, *_ in notable] == ["execution.started", "execution.waiting_approval", "execution.finished"]


def test_a_tick_that_lost_its_lease_sends_no_event(clock, make_plan, notable):
    execution = execution_start(plan=make_plan("Slow", TWO_WAVES), mode="DRILL", requested_by=None)
    notable.clear()
    (claimed,) = engine.claim_executions(owner="slow")
    rows = TickRows([claimed], owner="slow")
    clock.shift(engine.LEASE_SECONDS + 1)
    assert engine.claim_executions(owner="fast")
    rows.set_status(rows.executions[execution.pk], "FAILED")
    rows.save()
    assert notable == []
