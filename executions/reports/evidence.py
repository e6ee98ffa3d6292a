"""The evidence of one execution, read once and shared by the report page, its PDF and its CSV.

Every time here is on DRS's clock where DRS gave one (job creation and end, the launch, the
recovery snapshot, the clean-up job's end); the event log's times are drsorch's own, and the
report says so. The reads are a fixed number of queries whatever the number of servers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.utils import timezone

from executions.choices import EXECUTION_CAN_MEET_TARGETS, EventKind, LaunchStatus
from executions.models import ActionRun, Execution, ExecutionEvent, LaunchAttempt, ServerLaunch, WaveRun

REPORT_LAUNCH_FIELDS = [
    "execution_id",
    "wave_run_id",
    "source_server_id",
    "hostname",
    "critical",
    "status",
    "phase",
    "recovery_instance_id",
    "launched_at",
    "snapshot_at",
    "error",
    "terminated_at",
    "job__job_id",
    "job__drs_created_at",
    "job__drs_ended_at",
    "cleanup_job__job_id",
    "cleanup_job__drs_ended_at",
]


@dataclass
class ServerEvidence:
    """One server of the execution: its launch row, every attempt DRS made, and its measures."""

    launch: ServerLaunch
    wave: WaveRun
    attempts: list[LaunchAttempt]
    launch_seconds: float | None  # from DRS creating the job to DRS launching the server
    rpo_seconds: float | None  # the start (or point in time) minus the snapshot it came from

    @property
    def name(self) -> str:
        return self.launch.hostname or self.launch.source_server_id

    @property
    def failed_attempts(self) -> list[LaunchAttempt]:
        return [a for a in self.attempts if a.launch_status == LaunchStatus.FAILED]

    @property
    def was_launched(self) -> bool:
        """DRS launched it (its instance may have been cleaned up since)."""
        return self.launch.launched_at is not None

    @property
    def failed(self) -> bool:
        return self.launch.status == LaunchStatus.FAILED


@dataclass
class CleanupEvidence:
    """What became of one drill instance: terminated by a DRS job (and when DRS ended it), found
    already gone, or still running."""

    server: ServerEvidence
    outcome: str  # "terminated", "gone", "running", "terminating"
    job_id: str | None
    confirmed_at: datetime | None


@dataclass
class WaveEvidence:
    """One wave as it ran, with its frozen settings."""

    run: WaveRun
    servers: list[ServerEvidence] = field(default_factory=list)
    actions: list[ActionRun] = field(default_factory=list)

    @property
    def duration_seconds(self) -> float | None:
        if not (self.run.started_at and self.run.finished_at):
            return None
        return (self.run.finished_at - self.run.started_at).total_seconds()

    @property
    def launched(self) -> int:
        return sum(1 for s in self.servers if s.was_launched)

    @property
    def failed(self) -> int:
        return sum(1 for s in self.servers if s.failed)


@dataclass
class ExecutionReport:
    """Everything an auditor is shown of one execution."""

    execution: Execution
    frozen_plan: dict[str, Any]
    waves: list[WaveEvidence]
    servers: list[ServerEvidence]
    human_actions: list[ExecutionEvent]
    error_events: list[ExecutionEvent]
    events: list[ExecutionEvent]
    cleanup: list[CleanupEvidence]
    generated_at: datetime

    @property
    def launched(self) -> int:
        return sum(wave.launched for wave in self.waves)

    @property
    def failed(self) -> int:
        return sum(wave.failed for wave in self.waves)

    @property
    def has_actions(self) -> bool:
        return any(wave.actions for wave in self.waves)

    @property
    def failed_attempts(self) -> list[tuple[ServerEvidence, LaunchAttempt]]:
        return [(s, a) for s in self.servers for a in s.failed_attempts]

    @property
    def retried(self) -> list[ServerEvidence]:
        """Servers that failed at least once, with the attempts that followed."""
        return [s for s in self.servers if s.failed_attempts]

    @property
    def failed_servers(self) -> list[ServerEvidence]:
        return [s for s in self.servers if s.failed or s.launch.error]

    @property
    def verdict_note(self) -> str:
        """Why a verdict is not met although the measure may be inside the target."""
        execution = self.execution
        if not execution.is_terminal:
            return "still running"
        if execution.status not in EXECUTION_CAN_MEET_TARGETS:
            return f"the execution ended {execution.get_status_display()}"
        return ""

    @property
    def cleanup_summary(self) -> str:
        execution = self.execution
        if not execution.is_drill:
            return "not applicable: a recovery keeps its instances"
        terminated = sum(1 for item in self.cleanup if item.outcome in ("terminated", "gone"))
        total = len(self.cleanup)
        if not total:
            return "no instance was launched"
        if terminated == total:
            last = max((item.confirmed_at for item in self.cleanup if item.confirmed_at), default=None)
            when = f", the last confirmed {last:%Y-%m-%d %H:%M:%S} UTC" if last else ""
            return f"all {total} drill instance(s) terminated{when}"
        if not terminated:
            return f"drill instances not cleaned up: {total} still running"
        return f"{terminated} of {total} drill instance(s) terminated; {total - terminated} still running"


def execution_report(*, execution_id: Any, event_log: bool = True) -> ExecutionReport:
    """Read the evidence of one execution (404 when unknown) in eight queries. Without
    `event_log` (the PDF and the CSV do not print it) only the human actions and the errors
    are read of its events, not the thousands of DRS log lines a large drill records."""
    execution = get_object_or_404(Execution.objects.select_related("plan"), pk=execution_id)
    runs = list(WaveRun.objects.filter(execution=execution).select_related("approved_by").order_by("index"))
    launches = list(
        ServerLaunch.objects.filter(execution=execution)
        .select_related("job", "cleanup_job")
        .only(*REPORT_LAUNCH_FIELDS)
        .order_by("wave_run__index", "hostname", "source_server_id")
        .prefetch_related(
            Prefetch(
                "launch_attempts",
                to_attr="attempt_list",
                queryset=LaunchAttempt.objects.select_related("job").order_by("started_at", "pk"),
            )
        )
    )
    events = ExecutionEvent.objects.filter(execution=execution).order_by("created_at", "pk")
    if not event_log:
        events = events.filter(kind__in=[EventKind.ACTION, EventKind.ERROR])
    events = list(events)

    waves = {run.pk: WaveEvidence(run=run) for run in runs}
    servers = []
    for launch in launches:
        wave = waves[launch.wave_run_id]
        evidence = ServerEvidence(
            launch=launch,
            wave=wave.run,
            attempts=launch.attempt_list,
            launch_seconds=_launch_seconds(launch, wave.run),
            rpo_seconds=_rpo_seconds(execution, launch),
        )
        wave.servers.append(evidence)
        servers.append(evidence)
    # Only an execution whose waves have actions reads them (the report's query count stays).
    if any(run.before_actions or run.after_actions for run in runs):
        for action in ActionRun.objects.filter(execution=execution):
            waves[action.wave_run_id].actions.append(action)
    return ExecutionReport(
        execution=execution,
        frozen_plan=execution.plan_snapshot or {},
        waves=list(waves.values()),
        servers=servers,
        human_actions=[e for e in events if e.kind == EventKind.ACTION],
        error_events=[e for e in events if e.kind == EventKind.ERROR],
        events=events if event_log else [],
        cleanup=[_cleanup(s) for s in servers if s.was_launched and s.launch.recovery_instance_id]
        if execution.is_drill
        else [],
        generated_at=timezone.now(),
    )


def _launch_seconds(launch: ServerLaunch, wave: WaveRun) -> float | None:
    start = (launch.job.drs_created_at if launch.job else None) or wave.started_at
    if not (launch.launched_at and start):
        return None
    return max(0.0, (launch.launched_at - start).total_seconds())


def _rpo_seconds(execution: Execution, launch: ServerLaunch) -> float | None:
    point = execution.point_in_time or execution.started_at
    if not (point and launch.snapshot_at):
        return None
    return max(0.0, (point - launch.snapshot_at).total_seconds())


def _cleanup(server: ServerEvidence) -> CleanupEvidence:
    launch = server.launch
    job = launch.cleanup_job
    if launch.status == LaunchStatus.TERMINATED:
        if job is not None:
            return CleanupEvidence(
                server=server,
                outcome="terminated",
                job_id=job.job_id,
                confirmed_at=job.drs_ended_at or launch.terminated_at,
            )
        # Found already gone (replaced by a later launch of the same server): nothing for DRS
        # to confirm; the time is when drsorch found out.
        return CleanupEvidence(server=server, outcome="gone", job_id=None, confirmed_at=launch.terminated_at)
    if job is not None:
        return CleanupEvidence(server=server, outcome="terminating", job_id=job.job_id, confirmed_at=None)
    return CleanupEvidence(server=server, outcome="running", job_id=None, confirmed_at=None)


def wave_numbers(indexes: list[int]) -> str:
    """The frozen plan's 0-based dependency indexes as the 1-based numbers everyone reads."""
    return ", ".join(str(index + 1) for index in indexes) or "none"
