"""DRS's datetimes and durations: ISO-8601 strings (`2026-11-28T04:20:38Z`, `PT5M30S`)."""

import re
from datetime import datetime

from django.utils.dateparse import parse_datetime

# Weeks, days, hours, minutes, seconds. Years and months are left out on purpose: their length
# in seconds depends on the calendar, and DRS does not use them for lags, so such a value is
# unreadable (None: "unknown"), never guessed and never 0.
_DURATION_RE = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?"
    r"(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_drs_time(value: str | datetime | None) -> datetime | None:
    """A DRS datetime as an aware datetime; None when absent or unreadable."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def format_drs_time(value: datetime) -> str:
    """A datetime as DRS's filters take it (`fromDate`, `toDate`)."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration_seconds(value: str | None) -> int | None:
    """Seconds of an ISO-8601 duration such as PT5M30S, P1DT2H or P1W; None when absent or
    unreadable (years and months included: see _DURATION_RE)."""
    match = _DURATION_RE.match(value or "")
    if not match or value in ("P", "PT") or value.endswith("T"):
        return None
    parts = {key: float(number or 0) for key, number in match.groupdict().items()}
    return int(parts["weeks"] * 604800 + parts["days"] * 86400 + parts["hours"] * 3600
               + parts["minutes"] * 60 + parts["seconds"])
