"""What /healthz reports: the database, django-q2's broker and the poller's last tick.

status is `down` when the database does not answer (nothing works without it), `degraded`
when the broker does not answer (human actions are not advanced at once, schedules stop) or
the poller is stale: no tick ever, or none for `poller_stale_after_seconds()` while some
execution needs work. The core imports no app, so "some execution needs work" is asked of
the checks apps register (`register_work_check`; executions registers its own).
"""

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection

from drsorch.metrics import POLLER_LAST_TICK
from drsorch.models import MetricSample

OK, DEGRADED, DOWN = "ok", "degraded", "down"
# A stale poller misses several ticks in a row, never one slow tick; and the minute schedule
# of django-q2 can leave a few seconds between two poll tasks.
STALE_AFTER_POLLS = 3
MIN_STALE_SECONDS = 30.0
BROKER_TIMEOUT_SECONDS = 2.0

_work_checks: list[Callable[[], bool]] = []


def register_work_check(check: Callable[[], bool]) -> None:
    """Add an app's "does some work wait for the poller?" query (idempotent)."""
    if check not in _work_checks:
        _work_checks.append(check)


def poller_stale_after_seconds() -> float:
    """How old the last tick may be while work waits: STALE_AFTER_POLLS poll intervals, at least 30 s."""
    return max(STALE_AFTER_POLLS * float(settings.DRSORCH_POLL_SECONDS), MIN_STALE_SECONDS)


def check_database() -> str:
    """"ok" when the default database answers a query, else why not (one line)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return f"unreachable: {exc}".splitlines()[0]
    return "ok"


def check_broker() -> str:
    """"ok" when django-q2's broker (the ORM, or Redis when REDIS_URL is set) answers a ping
    within BROKER_TIMEOUT_SECONDS, else why not: a ping of an unreachable host must not hang
    the health check, so it runs in a daemon thread."""
    from django_q.brokers import get_broker

    answer: dict[str, Any] = {}

    def ping():
        try:
            answer["ok"] = bool(get_broker().ping())
        except Exception as exc:  # any broker library's error means the same: unreachable
            answer["error"] = str(exc) or type(exc).__name__

    thread = threading.Thread(target=ping, name="healthz-broker-ping", daemon=True)
    thread.start()
    thread.join(BROKER_TIMEOUT_SECONDS)
    if thread.is_alive():
        return f"unreachable: no answer within {BROKER_TIMEOUT_SECONDS:g} s"
    if "error" in answer:
        return f"unreachable: {answer['error']}".splitlines()[0]
    return "ok" if answer.get("ok") else "unreachable: the broker refused the ping"


def poller_state() -> dict[str, Any]:
    """The poller's last tick (any process's), its age, whether work waits and whether it is stale."""
    last = MetricSample.objects.filter(name=POLLER_LAST_TICK).values_list("value", flat=True).first()
    work_waiting = any(check() for check in _work_checks)
    stale_after = poller_stale_after_seconds()
    if last is None:
        return {"last_tick_at": None, "age_seconds": None, "work_waiting": work_waiting, "stale": True,
                "stale_after_seconds": stale_after}
    age = max(0.0, time.time() - last)
    return {
        "last_tick_at": datetime.fromtimestamp(last, tz=UTC).isoformat(),
        "age_seconds": round(age, 1),
        "work_waiting": work_waiting,
        "stale": work_waiting and age > stale_after,
        "stale_after_seconds": stale_after,
    }


def health_report() -> dict[str, Any]:
    """The /healthz body: {"status", "database", "broker", "poller", "problems"}."""
    problems = []
    database = check_database()
    if database != "ok":
        return {"status": DOWN, "database": database, "broker": "unknown", "poller": None,
                "problems": [f"database {database}"]}
    broker = check_broker()
    if broker != "ok":
        problems.append(f"broker {broker}")
    try:
        poller = poller_state()
    except DatabaseError as exc:  # the database went away between the two checks
        return {"status": DOWN, "database": f"unreachable: {exc}".splitlines()[0], "broker": broker,
                "poller": None, "problems": [*problems, "database unreachable"]}
    if poller["last_tick_at"] is None:
        problems.append("poller: no engine tick recorded yet (is a django-q2 worker running?)")
    elif poller["stale"]:
        problems.append(f"poller: last tick {poller['age_seconds']:g} s ago while executions need work "
                        f"(stale after {poller['stale_after_seconds']:g} s)")
    return {"status": DEGRADED if problems else OK, "database": database, "broker": broker, "poller": poller,
            "problems": problems}
