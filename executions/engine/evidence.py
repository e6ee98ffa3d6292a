"""The evidence on DRS's clock: when DRS launched each server, from which snapshot, and the
RTO and RPO an execution achieved.

A poller notices a launch up to a poll interval late, and a worker that adopts a job after a
crash notices it later still; the evidence a drill exists to produce must not count that. So
times come from DRS (job creationDateTime/endDateTime, job log items, the recovery instance's
pointInTimeSnapshotDateTime), with the tick's own time only where DRS gives none.

May import: rows, times (and drs, models, choices). Never jobs, job_log, launching, waves or ticks.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from drsorch.drs import errors as drs_errors
from drsorch.drs import gateway
from drsorch.drs.concurrency import Outcome, per_target_started
from drsorch.drs.times import parse_drs_time
from executions.choices import JobState, JobType, LaunchStatus, WaveStatus
from executions.models import DrsJob, Execution, ServerLaunch, WaveRun
from plans.models import Target

from .rows import TickRows

logger = logging.getLogger(__name__)


def adopted_start(rows: TickRows, job: DrsJob) -> None:
    """An execution and a wave started no later than DRS created their job: after a crash the
    adopting tick must not stamp them with its own, later, time."""
    created = job.drs_created_at
    if created is None:
        return
    execution = rows.executions.get(job.execution_id)
    if execution is not None and (execution.started_at is None or execution.started_at > created):
        execution.started_at = created
        rows.touch(execution)
    wave = rows.wave_of(job)
    if wave is not None and (wave.started_at is None or wave.started_at > created):
        wave.started_at = created
        rows.touch(wave)


def participant_launch_time(participant: dict[str, Any]) -> datetime | None:
    """The launch time a participating server carries itself: DRS stamps the SSM agent's
    discovery on the launched instance when it has post-launch actions."""
    return parse_drs_time((participant.get("launchActionsStatus") or {}).get("ssmAgentDiscoveryDatetime"))


def instance_reads_due(rows: TickRows, jobs: Iterable[DrsJob]) -> list[ServerLaunch]:
    """Launched servers of these open jobs whose recovery instance DRS has not been asked
    about yet (no snapshot time): read in one batched call per target, then never again."""
    due = []
    for job in jobs:
        if job.state != JobState.ACTIVE or job.type != JobType.LAUNCH:
            continue
        for launch in rows.launches_by_job.get(job.pk, {}).values():
            if launch.status == LaunchStatus.LAUNCHED and launch.snapshot_at is None:
                due.append(launch)
    return due


@dataclass
class InstanceReads:
    """The recovery-instance reads a tick started: the launches each target was asked about,
    and the function that waits for DRS's answers."""

    due: dict[object, list[ServerLaunch]]
    answers: Callable[[], dict[object, Outcome[list[dict[str, Any]]]]]


def start_instance_reads(rows: TickRows, due: dict[object, list[ServerLaunch]]) -> InstanceReads:
    """Start one DescribeRecoveryInstances per target for the launches `due` (target id ->
    launches), all at once, in the background (drsorch.drs.concurrency.per_target_started)."""
    due = {target_id: launches for target_id, launches in due.items() if launches}
    answers = per_target_started(
        {
            target_id: functools.partial(fetch_instances, rows.targets[target_id], launches)
            for target_id, launches in due.items()
        }
    )
    return InstanceReads(due=due, answers=answers)


def apply_instance_reads(rows: TickRows, reads: InstanceReads) -> None:
    """Wait for the reads start_instance_reads began and copy DRS's times onto the launches;
    a target DRS did not answer is asked again next tick. A wave that ended in this tick,
    before the answers were in (the tick starts the next wave's jobs meanwhile), is stamped
    again with DRS's time of its last launch (wave_finished_at), so its end is on DRS's clock
    whatever the order."""
    if not reads.due:
        return
    found = reads.answers()
    for target_id, launches in reads.due.items():
        outcome = found[target_id]
        if outcome.error is not None:
            if not isinstance(outcome.error, BotoCoreError | ClientError):
                raise outcome.error
            instances_unread(rows.targets[target_id], outcome.error)
        else:
            apply_instances(rows, launches, outcome.value)
    read_waves = {launch.wave_run_id for launches in reads.due.values() for launch in launches}
    for execution_id, waves in rows.waves.items():
        for wave in waves:
            if wave.pk in read_waves and _ended_by_launches_this_tick(rows, wave):
                execution = rows.executions[execution_id]
                stamped = wave_finished_at(rows, execution, rows.wave_launches(execution, wave))
                if wave.finished_at != stamped:
                    wave.finished_at = stamped
                    rows.touch(wave)


def _ended_by_launches_this_tick(rows: TickRows, wave: WaveRun) -> bool:
    """Whether `wave` ended in this tick because its launches settled (its end is then its
    last launch's, wave_finished_at), not by a cancel, a skip or a time-out (the tick's time)."""
    before = rows.original.get((WaveRun, wave.pk), {}).get("status")
    # A wave with after actions ends when they do (the tick's time), not at its last launch.
    return before == WaveStatus.LAUNCHING and not wave.after_actions and wave.status in (
        WaveStatus.SUCCEEDED,
        WaveStatus.PARTIAL,
        WaveStatus.FAILED,
    )


def read_instances(rows: TickRows, target: Target, launches: list[ServerLaunch]) -> None:
    """One DescribeRecoveryInstances (200 servers a page) for the launched servers of a target:
    the snapshot each was launched from, and when DRS launched it (fetch_instances, then
    apply_instances)."""
    if not launches:
        return
    try:
        items = fetch_instances(target, launches)
    except (BotoCoreError, ClientError) as exc:
        instances_unread(target, exc)
        return
    apply_instances(rows, launches, items)


def fetch_instances(target: Target, launches: list[ServerLaunch]) -> list[dict[str, Any]]:
    """The recovery instances of these launches' source servers: DRS calls only, safe in a
    pool thread (reads no row: `source_server_id` is a plain field)."""
    return gateway.recovery_instances(target=target, source_server_ids=[x.source_server_id for x in launches])


def instances_unread(target: Target, exc: BaseException) -> None:
    """A DescribeRecoveryInstances DRS did not answer is tried again next tick (the launches
    keep the tick's time meanwhile)."""
    if drs_errors.classify(exc) == drs_errors.ErrorKind.FINAL:
        logger.warning("Cannot read the recovery instances of target %s: %s", target.name, exc)
    else:
        logger.info("DRS did not answer DescribeRecoveryInstances for target %s: %s", target.name, exc)


def apply_instances(rows: TickRows, launches: list[ServerLaunch], items: list[dict[str, Any]]) -> None:
    """Copy each launch's snapshot time and DRS launch time from the instances DRS listed. An
    instance of another job (a later launch of the same server) is not this launch's evidence
    and is ignored."""
    by_key = {(item.get("sourceServerID"), item.get("jobID")): item for item in items}
    for launch in launches:
        job = rows.jobs.get(launch.job_id)
        item = by_key.get((launch.source_server_id, job.job_id if job else None))
        if item is None:
            continue
        snapshot_at = parse_drs_time(item.get("pointInTimeSnapshotDateTime"))
        launched_at = parse_drs_time((item.get("recoveryInstanceProperties") or {}).get("lastUpdatedDateTime"))
        if snapshot_at:
            launch.snapshot_at = snapshot_at
        if launched_at and launch.launched_at != launched_at:
            launch.launched_at = launched_at
            launch.ended_at = launched_at
        rows.touch(launch)


def launch_ended_at(rows: TickRows, execution: Execution, launch: ServerLaunch) -> datetime | None:
    """When DRS was done with a settled launch: its launch or failure time; in a recovery, the
    end of its job when post-launch actions ran after the launch."""
    end = launch.ended_at
    job = rows.jobs.get(launch.job_id)
    if not execution.is_drill and launch.post_launch_status and job is not None and job.drs_ended_at:
        end = max(end, job.drs_ended_at) if end else job.drs_ended_at
    return end


def wave_finished_at(rows: TickRows, execution: Execution, launches: list[ServerLaunch]) -> datetime:
    """A wave that ended because its servers settled ended when DRS settled the last of them;
    the tick's time when DRS gave no time for one of them."""
    ends = [launch_ended_at(rows, execution, launch) for launch in launches]
    if not ends or any(end is None for end in ends):
        return rows.now
    return min(max(ends), rows.now)


def record_verdict_inputs(execution: Execution, launches: Iterable[ServerLaunch]) -> None:
    """Set the achieved RTO (start to the last critical server's launch) and the worst RPO
    (the start, or the requested point in time, minus the snapshot each server came from)."""
    launches = list(launches)
    start = execution.started_at
    launched = [x for x in launches if x.launched_at is not None]
    critical = [x for x in launched if x.critical] or launched
    execution.rto_achieved_seconds = (
        max((x.launched_at - start).total_seconds() for x in critical) if critical and start else None
    )
    point = execution.point_in_time or start
    snapshots = [x.snapshot_at for x in launches if x.snapshot_at is not None]
    execution.rpo_worst_seconds = (
        max(max(0.0, (point - at).total_seconds()) for at in snapshots) if snapshots and point else None
    )
