"""Reads of executions shared by the API, the pages and the commands."""

from django.db.models import Count, Prefetch, Q, QuerySet

from plans.models import RecoveryPlan

from .choices import EXECUTION_TERMINAL, LaunchStatus
from .models import Execution, LaunchAttempt, ServerLaunch, WaveRun

# How many ended executions the plan page's trend charts show.
TREND_LIMIT = 30


def executions_for_json() -> QuerySet[Execution]:
    """Executions with what the execution JSON shows (waves, their servers and jobs), in a
    constant number of queries for any number of executions and servers."""
    attempts = LaunchAttempt.objects.select_related("job").order_by("started_at", "pk")
    launches = (
        ServerLaunch.objects.select_related("job")
        .order_by("hostname", "source_server_id")
        .prefetch_related(Prefetch("launch_attempts", queryset=attempts))
    )
    waves = WaveRun.objects.order_by("index").prefetch_related(Prefetch("server_launches", queryset=launches))
    return Execution.objects.select_related("plan").prefetch_related(Prefetch("wave_runs", queryset=waves))


def plan_history(*, plan: RecoveryPlan, mode: str | None = None) -> QuerySet[Execution]:
    """The ended executions of `plan` (of `mode` when given), newest first, with their server
    counts (`server_total`, `server_launched`, `server_failed`) in the same query.

    Only ended executions make the trend: a running one has no achieved RTO or worst RPO yet
    and no verdict, so it would only add nulls. A retried execution counts again once its
    retry ends. Creation order is also end order, since a plan runs one execution at a time."""
    launched = Q(server_launches__status=LaunchStatus.LAUNCHED) | Q(
        server_launches__status=LaunchStatus.TERMINATED, server_launches__launched_at__isnull=False
    )
    executions = Execution.objects.filter(plan=plan, status__in=EXECUTION_TERMINAL)
    if mode:
        executions = executions.filter(mode=mode)
    return executions.annotate(
        server_total=Count("server_launches"),
        server_launched=Count("server_launches", filter=launched),
        server_failed=Count("server_launches", filter=Q(server_launches__status=LaunchStatus.FAILED)),
    ).order_by("-created_at", "-pk")


def plan_trend(*, plan: RecoveryPlan, limit: int = TREND_LIMIT) -> list[Execution]:
    """The last `limit` ended executions of `plan`, drills and recoveries, oldest first (the
    order a chart reads left to right), in one query without server counts."""
    latest = Execution.objects.filter(plan=plan, status__in=EXECUTION_TERMINAL).order_by("-created_at", "-pk")
    return list(reversed(latest[:limit]))
