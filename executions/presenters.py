"""The execution JSON of the contract: one function serves the API detail and `--json`."""

from django.db.models import Prefetch

from .models import Execution, ServerLaunch, WaveRun


def _iso(value):
    return value.isoformat().replace("+00:00", "Z") if value else None


def executions_for_json():
    """A queryset that renders any number of executions in a constant number of queries."""
    return Execution.objects.select_related("plan").prefetch_related(
        Prefetch("wave_runs", queryset=WaveRun.objects.order_by("index")),
        Prefetch("server_launches", queryset=ServerLaunch.objects.select_related("job").order_by(
            "wave_run__index", "hostname", "source_server_id")),
    )


def server_launch_as_json(launch):
    return {
        "source_server_id": launch.source_server_id,
        "hostname": launch.hostname,
        "critical": launch.critical,
        "launch_status": launch.status,
        "phase": launch.phase,
        "job_id": launch.job.job_id if launch.job_id and launch.job else None,
        "recovery_instance_id": launch.recovery_instance_id or None,
        "launched_at": _iso(launch.launched_at),
        "error": launch.error or None,
    }


def execution_as_json(execution, now=None):
    """The contract's execution object. Use `executions_for_json()` to fetch `execution`."""
    launches_by_wave = {}
    for launch in execution.server_launches.all():
        launches_by_wave.setdefault(launch.wave_run_id, []).append(launch)
    return {
        "id": str(execution.pk),
        "plan": {"id": execution.plan_id, "name": execution.plan_name},
        "mode": execution.mode,
        "status": execution.status,
        "requested_by": execution.requested_by_username,
        "started_at": _iso(execution.started_at),
        "finished_at": _iso(execution.finished_at),
        "rto_target_minutes": execution.rto_target_minutes,
        "elapsed_seconds": round(execution.elapsed_seconds(now), 1),
        "waves": [
            {
                "index": wave.index,
                "name": wave.name,
                "status": wave.status,
                "depends_on": list(wave.depends_on),
                "started_at": _iso(wave.started_at),
                "finished_at": _iso(wave.finished_at),
                "servers": [server_launch_as_json(launch) for launch in launches_by_wave.get(wave.pk, [])],
            }
            for wave in execution.wave_runs.all()
        ],
    }


def event_as_json(event):
    return {
        "id": event.pk,
        "created_at": _iso(event.created_at),
        "kind": event.kind,
        "actor": event.actor_name or None,
        "wave_index": event.wave_index,
        "source_server_id": event.source_server_id or None,
        "message": event.message,
        "data": event.data,
    }
