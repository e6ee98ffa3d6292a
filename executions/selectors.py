"""Reads of executions shared by the API, the pages and the commands."""

from django.db.models import Prefetch, QuerySet

from .models import Execution, LaunchAttempt, ServerLaunch, WaveRun


def executions_for_json() -> QuerySet[Execution]:
    """Executions with what the execution JSON shows (waves, their servers and jobs), in a
    constant number of queries for any number of executions and servers."""
    attempts = LaunchAttempt.objects.select_related("job").order_by("started_at", "pk")
    launches = ServerLaunch.objects.select_related("job").order_by("hostname", "source_server_id").prefetch_related(
        Prefetch("launch_attempts", queryset=attempts))
    waves = WaveRun.objects.order_by("index").prefetch_related(Prefetch("server_launches", queryset=launches))
    return Execution.objects.select_related("plan").prefetch_related(Prefetch("wave_runs", queryset=waves))
