"""DRS timestamps as datetimes: the one place the engine parses them."""

from __future__ import annotations

from datetime import datetime


def parse_drs_time(value: str | datetime | None) -> datetime | None:
    """An ISO 8601 time from a DRS answer (or the datetime boto3 already parsed), or None."""
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
