"""Drill schedules of recovery plans: 5-field cron expressions read in UTC, through croniter.

Only the expression's validation and its next run times live here; starting the drills is
the worker's job.
"""

import datetime as dt

from croniter import croniter
from croniter.croniter import CroniterError
from django.core.exceptions import ValidationError

DRILL_SCHEDULE_MAX_LENGTH = 100
CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")


def validate_drill_schedule(value: str) -> None:
    """Refuse anything but a 5-field cron expression that fires at least once (UTC).

    croniter also reads seconds, years and "@daily"-style nicknames; the contract's schedule
    is the classic 5 fields, so those are refused with the reason."""
    fields = value.split()
    if len(fields) != len(CRON_FIELDS):
        raise ValidationError(
            "Enter a cron expression of 5 fields (minute hour day-of-month month day-of-week), "
            "e.g. '0 3 * * 1'; got %(count)d field(s) in %(value)r.",
            code="cron_fields",
            params={"count": len(fields), "value": value},
        )
    try:
        croniter(value, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).get_next(dt.datetime)
    except CroniterError as exc:
        raise ValidationError(
            "%(value)r is not a valid cron expression: %(reason)s.",
            code="cron_invalid",
            params={"value": value, "reason": _reason(exc)},
        ) from exc


def _reason(exc: CroniterError) -> str:
    text = str(exc)
    if "failed to find next date" in text:
        return "it never fires (no such date)"
    # croniter's messages start with the expression in brackets; our message names it already.
    reason = text.split("] ", 1)[-1].removeprefix("is not acceptable, ")
    if reason in ("", "is not acceptable"):
        return "each field must be a number, a range, a list, a step or *"
    return reason


def next_drill_times(plan, *, now: dt.datetime, count: int = 3) -> list[dt.datetime]:
    """The next `count` times after `now` (UTC, aware) at which the plan's drill schedule
    fires; empty when the plan has no schedule or an expression croniter cannot read."""
    if not plan.drill_schedule:
        return []
    try:
        times = croniter(plan.drill_schedule, now.astimezone(dt.UTC))
        return [times.get_next(dt.datetime) for _ in range(count)]
    except CroniterError:
        return []


def last_drill_time(plan, *, now: dt.datetime) -> dt.datetime | None:
    """The latest time at or before `now` (UTC, aware) at which the plan's drill schedule
    fires (a cron slot, on a whole minute); None when the plan has no schedule or an
    expression croniter cannot read."""
    if not plan.drill_schedule:
        return None
    # croniter's get_prev is strictly before its base: the base is the next whole minute, so a
    # slot exactly at `now` (or earlier in the same minute) is the one found.
    base = now.astimezone(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    try:
        return croniter(plan.drill_schedule, base).get_prev(dt.datetime)
    except CroniterError:
        return None
