"""Drill schedules: which cron expressions are accepted, and the next run times (UTC)."""

from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone as django_timezone
from hypothesis import given
from hypothesis import strategies as st

from plans.models import RecoveryPlan
from plans.schedules import next_drill_times, validate_drill_schedule


@pytest.mark.parametrize("expression", ["* * * * *", "0 3 * * 1", "*/15 8-18 * * mon-fri", "30 2 1,15 * *"])
def test_five_field_expressions_are_accepted(expression):
    validate_drill_schedule(expression)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("@daily", "got 1 field(s) in '@daily'"),
        ("* * * * * *", "got 6 field(s)"),
        ("0 3 * *", "got 4 field(s)"),
        ("61 * * * *", "out of range"),
        ("*/0 * * * *", "step '0'"),
        ("a b c d e", "each field must be a number, a range, a list, a step or *"),
        ("0 0 31 2 *", "it never fires"),
    ],
)
def test_a_bad_expression_is_refused_with_the_reason(expression, message):
    with pytest.raises(ValidationError) as raised:
        validate_drill_schedule(expression)
    assert message in raised.value.messages[0]


def test_the_next_three_runs_follow_now_in_utc():
    plan = RecoveryPlan(name="p", drill_schedule="0 3 * * 1")
    # A Monday, 02:59 in UTC: the first run is a minute later, then a week apart.
    with time_machine.travel(datetime(2026, 3, 2, 2, 59, tzinfo=UTC), tick=False):
        times = next_drill_times(plan, now=django_timezone.now(), count=3)
    assert times == [datetime(2026, 3, d, 3, 0, tzinfo=UTC) for d in (2, 9, 16)]
    assert all(when.utcoffset() == timedelta(0) for when in times)


def test_runs_are_strictly_after_now_and_now_in_another_zone_is_read_as_utc():
    plan = RecoveryPlan(name="p", drill_schedule="*/30 * * * *")
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), tick=False):
        # 10:00 at UTC+1 is 09:00 UTC: the schedule is UTC whatever zone `now` comes in.
        now = django_timezone.now().astimezone(timezone(timedelta(hours=1)))
        times = next_drill_times(plan, now=now, count=2)
    assert times == [datetime(2026, 3, 2, 9, 30, tzinfo=UTC), datetime(2026, 3, 2, 10, 0, tzinfo=UTC)]


def test_no_schedule_has_no_runs():
    assert next_drill_times(RecoveryPlan(name="p"), now=datetime(2026, 3, 2, tzinfo=UTC), count=3) == []


@given(
    minute=st.integers(0, 59),
    hour=st.integers(0, 23),
    now=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)),
)
def test_daily_runs_are_at_the_given_time_a_day_apart_and_after_now(minute, hour, now):
    plan = RecoveryPlan(name="p", drill_schedule=f"{minute} {hour} * * *")
    times = next_drill_times(plan, now=now, count=3)
    assert now < times[0] <= now + timedelta(days=1)
    assert [(when.hour, when.minute, when.second) for when in times] == [(hour, minute, 0)] * 3
    assert [later - earlier for earlier, later in pairwise(times)] == [timedelta(days=1)] * 2
