"""The outbox: a notable event becomes one row per channel that wants it, written in the
transaction that made the change, for one query per batch of events."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from executions import engine
from executions.api.serializers import ExecutionSerializer
from executions.notable import NotableEvent, notable_events_send
from executions.selectors import executions_for_json
from executions.services import execution_start
from executions.tasks import launch_budget_seconds
from notifications.models import Notification
from notifications.services import notifications_record

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

ONE_WAVE = [("Database", ["db-01"], {})]


def test_a_drill_writes_started_and_finished_rows_for_a_subscribed_channel(clock, drive, make_plan, make_channel):
    plan = make_plan("Billing", ONE_WAVE)
    subscribed = make_channel("Ops")
    make_channel("Approvals only", events=["execution.waiting_approval"])
    other_plan = make_plan("Other", [("Web", ["web-01"], {})])
    make_channel("Other plan", plans=[other_plan])

    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))

    rows = list(Notification.objects.order_by("pk"))
    assert [(row.channel_id, row.event) for row in rows] == [
        (subscribed.pk, "execution.started"), (subscribed.pk, "execution.finished"),
    ]
    started, finished = rows
    assert started.execution_id == finished.execution_id == execution.pk
    assert started.plan_id == plan.pk and started.status == "pending" and started.attempts == 0
    # The payload is the contract's: the execution JSON as the API answers it then, and the plan.
    assert set(finished.payload) >= {"event", "execution", "plan"}
    assert "sent_at" not in finished.payload  # added at each send
    assert finished.payload["execution"] == ExecutionSerializer(executions_for_json().get(pk=execution.pk)).data
    assert started.payload["execution"]["status"] in ("PENDING", "RUNNING")
    assert finished.payload["execution"]["status"] == "SUCCEEDED"
    assert finished.payload["plan"]["id"] == plan.pk and finished.payload["plan"]["name"] == "Billing"
    assert finished.payload["plan"]["url"] == f"http://127.0.0.1:8000/plans/{plan.pk}/"
    assert finished.payload["execution_url"] == f"http://127.0.0.1:8000/executions/{execution.pk}/"


def test_a_channel_of_the_plan_gets_it_and_a_disabled_channel_gets_nothing(clock, make_plan, make_channel):
    plan = make_plan("Billing", ONE_WAVE)
    of_plan = make_channel("Of the plan", plans=[plan])
    make_channel("Disabled", enabled=False)
    execution_start(plan=plan, mode="DRILL", requested_by=None)
    assert list(Notification.objects.values_list("channel_id", "event")) == [(of_plan.pk, "execution.started")]


def test_a_rolled_back_transaction_leaves_no_row(make_channel):
    make_channel("Ops", events=["drill.overdue"])
    with pytest.raises(RuntimeError), transaction.atomic():
        notable_events_send([NotableEvent(event="drill.overdue")])
        assert Notification.objects.count() == 1  # written inside the transaction
        raise RuntimeError("the change failed")
    assert Notification.objects.count() == 0


def test_rows_are_written_inside_the_senders_transaction(clock, make_plan, make_channel):
    make_channel("Ops")
    plan = make_plan("Billing", ONE_WAVE)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        execution_start(plan=plan, mode="DRILL", requested_by=None)
        assert Notification.objects.count() == 1
        raise Boom
    assert Notification.objects.count() == 0


def test_no_channel_costs_one_query_per_batch():
    events = [NotableEvent(event="execution.started", plan_id=n, execution_id=None) for n in range(100)]
    with CaptureQueriesContext(connection) as queries:
        assert notifications_record(events=events) == 0
    assert len(queries) == 1


def test_channels_that_match_nothing_cost_one_query(make_channel):
    make_channel("Approvals", events=["execution.waiting_approval"])
    make_channel("Some plans", plans=[])
    events = [NotableEvent(event="drill.overdue", plan_id=n) for n in range(100)]
    with CaptureQueriesContext(connection) as queries:
        assert notifications_record(events=events) == 0
    assert len(queries) == 1


def test_an_engine_tick_without_channels_pays_one_query_for_notifications(clock, make_plan, monkeypatch):
    """The receiver's whole cost in a tick that ends an execution: its one channel query."""
    from notifications import services

    plan = make_plan("Billing", ONE_WAVE)
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    calls = []
    original = services.channel_subscriptions

    def counted():
        with CaptureQueriesContext(connection) as queries:
            result = original()
        calls.append(len(queries))
        return result

    monkeypatch.setattr(services, "channel_subscriptions", counted)
    for _ in range(50):
        engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
        execution.refresh_from_db()
        if execution.is_terminal:
            break
        clock.shift(5)
    assert execution.status == "SUCCEEDED"
    # Only the tick that ended it sent an event (execution.finished): one query; the other ticks none.
    assert calls == [1]


def test_a_dedupe_key_writes_one_row_per_channel(make_channel):
    first = make_channel("Ops", events=["drill.overdue"])
    second = make_channel("Managers", events=["drill.overdue"])
    event = NotableEvent(event="drill.overdue", dedupe_key="drill.overdue:7:2026-11-28")
    notable_events_send([event])
    notable_events_send([event])
    assert sorted(Notification.objects.values_list("channel_id", flat=True)) == [first.pk, second.pk]
    notable_events_send([NotableEvent(event="drill.overdue", dedupe_key="drill.overdue:7:2026-11-29")])
    assert Notification.objects.count() == 4


def test_readiness_recovered_goes_to_readiness_degraded_subscribers(clock, make_plan, make_channel):
    plan = make_plan("Billing", ONE_WAVE)
    watcher = make_channel("Watch", events=["readiness.degraded"])
    make_channel("Ops")
    notable_events_send([NotableEvent(event="readiness.recovered", plan_id=plan.pk, details={"ready": True})])
    (row,) = Notification.objects.all()
    assert row.channel_id == watcher.pk and row.event == "readiness.recovered"
    assert row.payload["execution"] is None
    assert row.payload["plan"]["ready"] is True and row.payload["plan"]["name"] == "Billing"
