"""The django-q2 schedules drsorch needs, declared once.

A value may be a callable, read when schedules_setup runs: the watch's `minutes` follow
DRSORCH_READINESS_WATCH_MINUTES each time `setup_schedules` (or `make run`) runs."""

from django.conf import settings
from django.db import transaction
from django_q.models import Schedule

SCHEDULES = [
    {
        "name": "drsorch: poll executions",
        "func": "executions.tasks.poll_executions",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        # Scheduled drills and drill instance time-to-live (executions/unattended/): slots are
        # cron minutes, so it must run every minute.
        "name": "drsorch: unattended drills",
        "func": "executions.tasks.run_unattended",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
    {
        "name": "drsorch: sync source-server inventory",
        "func": "plans.tasks.sync_inventory",
        "schedule_type": Schedule.MINUTES,
        "minutes": 5,
    },
    {
        "name": "drsorch: readiness watch",
        "func": "executions.tasks.watch_plans",
        "schedule_type": Schedule.MINUTES,
        "minutes": lambda: settings.DRSORCH_READINESS_WATCH_MINUTES,
    },
    {
        "name": "drsorch: deliver notifications",
        "func": "notifications.tasks.deliver_notifications",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
    },
]


@transaction.atomic
def schedules_setup() -> list[tuple[Schedule, bool]]:
    """Create or update every schedule by name; running it again changes nothing. Returns each
    schedule with whether it was created."""
    results = []
    for spec in SCHEDULES:
        defaults = {k: v() if callable(v) else v for k, v in spec.items() if k != "name"}
        defaults["repeats"] = -1
        schedule, created = Schedule.objects.update_or_create(name=spec["name"], defaults=defaults)
        results.append((schedule, created))
    return results
