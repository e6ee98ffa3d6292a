"""Drill age: a plan is OVERDUE when its last SUCCEEDED drill is older than drill_max_age_days,
and the worker says so (drill.overdue) once a day while it is."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from drsorch.sandbox.services import sandbox_configure
from executions.choices import ExecutionMode, ExecutionStatus
from executions.services import execution_start
from executions.signals import notable_events
from executions.unattended.overdue import plans_overdue_notify
from plans.models import PlanOverdueNotice, RecoveryPlan
from plans.selectors import DRILL_MODE, SUCCEEDED_STATUS, plan_drill_age, plans_with_drill_age

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

DAY = 24 * 3600
ONE_WAVE = [("Database", ["db-01"], {})]


@pytest.fixture
def notable():
    """Every notable event sent while the test runs."""
    events = []

    def receiver(sender, *, events: list, **kwargs):
        received.extend(events)

    received = events
    notable_events.connect(receiver, weak=False, dispatch_uid="test-overdue-notable")
    yield events
    notable_events.disconnect(dispatch_uid="test-overdue-notable")


def overdue_events(events):
    return [e for e in events if e.event == "drill.overdue"]


def test_the_selector_names_the_executions_values_it_reads():
    assert DRILL_MODE == ExecutionMode.DRILL
    assert SUCCEEDED_STATUS == ExecutionStatus.SUCCEEDED


def test_a_plan_never_drilled_is_overdue_once_older_than_its_max_age(clock, make_plan):
    plan = make_plan("Never drilled", ONE_WAVE, drill_max_age_days=7)
    age = plan_drill_age(plan, now=timezone.now())
    assert not age.overdue and age.last_success_at is None and age.due_in_days == 7
    clock.shift(7 * DAY)
    assert not plan_drill_age(plan, now=timezone.now()).overdue  # exactly the max age: not yet older
    clock.shift(1)
    age = plan_drill_age(RecoveryPlan.objects.get(pk=plan.pk), now=timezone.now())
    assert age.overdue and age.age_days is None and age.due_in_days == 0


def test_an_overdue_plan_notifies_once_a_day_until_a_successful_drill(clock, drive, make_plan, notable):
    plan = make_plan("Overdue", ONE_WAVE, drill_max_age_days=3)
    clock.shift(4 * DAY)  # 2026-12-02 12:00
    for _ in range(3):  # the watch runs many times a day
        plans_overdue_notify(now=timezone.now())
        clock.shift(3600)
    (event,) = overdue_events(notable)
    assert event.plan_id == plan.pk
    assert event.dedupe_key == f"drill.overdue:{plan.pk}:2026-12-02"
    assert event.details["max_age_days"] == 3
    assert event.details["last_drill_at"] is None and event.details["last_drill_id"] is None

    clock.shift(DAY)  # the next day: once again
    assert plans_overdue_notify(now=timezone.now()) == [plan.pk]
    assert plans_overdue_notify(now=timezone.now()) == []
    assert [e.dedupe_key for e in overdue_events(notable)] == [
        f"drill.overdue:{plan.pk}:2026-12-02",
        f"drill.overdue:{plan.pk}:2026-12-03",
    ]
    assert list(PlanOverdueNotice.objects.filter(plan=plan).values_list("day", flat=True).order_by("day")) == [
        timezone.datetime(2026, 12, 2).date(),
        timezone.datetime(2026, 12, 3).date(),
    ]

    drill = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    assert drill.status == "SUCCEEDED"
    notable.clear()
    clock.shift(DAY)
    assert plans_overdue_notify(now=timezone.now()) == []
    age = plan_drill_age(RecoveryPlan.objects.get(pk=plan.pk), now=timezone.now())
    assert not age.overdue and age.last_success_at == drill.finished_at and age.last_success_id == drill.pk
    assert age.due_in_days == 2 and age.age_days == 1

    clock.shift(2 * DAY + 3600)  # three days after the drill: overdue again, naming it
    assert plans_overdue_notify(now=timezone.now()) == [plan.pk]
    (event,) = overdue_events(notable)
    assert event.details["last_drill_id"] == str(drill.pk)
    assert event.details["age_days"] == 3


def test_a_failed_drill_does_not_reset_the_age(clock, drive, make_plan, notable):
    plan = make_plan("Failing", ONE_WAVE, drill_max_age_days=1)
    clock.shift(2 * DAY)
    sandbox_configure(fail_launch=["db-01"])
    assert drive(execution_start(plan=plan, mode="DRILL", requested_by=None)).status == "FAILED"
    assert plan_drill_age(RecoveryPlan.objects.get(pk=plan.pk), now=timezone.now()).overdue
    assert plans_overdue_notify(now=timezone.now()) == [plan.pk]


def test_plans_without_a_limit_or_within_it_are_never_notified(clock, make_plan, notable):
    make_plan("No limit", ONE_WAVE)
    make_plan("Young", [("Web", ["web-01"], {})], drill_max_age_days=30)
    clock.shift(10 * DAY)
    assert plans_overdue_notify(now=timezone.now()) == []
    assert overdue_events(notable) == []
    assert plan_drill_age(RecoveryPlan.objects.get(name="No limit"), now=timezone.now()) is None


def test_the_drill_age_of_many_plans_takes_one_query(clock, make_plan):
    for number in range(4):
        make_plan(f"Plan {number}", [("Wave", [f"srv-{number}"], {})], drill_max_age_days=2)
    clock.shift(3 * DAY)
    with CaptureQueriesContext(connection) as queries:
        plans = list(plans_with_drill_age(RecoveryPlan.objects.order_by("name")))
        ages = [plan_drill_age(plan, now=timezone.now()) for plan in plans]
    assert len(queries) == 1
    assert all(age.overdue for age in ages)


def test_a_notice_rolled_back_by_a_receiver_is_sent_again(clock, make_plan):
    """The notice row and the event commit together: a receiver that fails (the outbox) leaves
    no record, so the next run tries again rather than losing the day's notice."""
    plan = make_plan("Rolled back", ONE_WAVE, drill_max_age_days=1)
    clock.shift(2 * DAY)

    def failing(sender, **kwargs):
        raise RuntimeError("outbox down")

    notable_events.connect(failing, weak=False, dispatch_uid="test-failing-outbox")
    try:
        assert plans_overdue_notify(now=timezone.now()) == []
    finally:
        notable_events.disconnect(dispatch_uid="test-failing-outbox")
    assert not PlanOverdueNotice.objects.exists()
    clock.shift(timedelta(minutes=30))
    assert plans_overdue_notify(now=timezone.now()) == [plan.pk]
