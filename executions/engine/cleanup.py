"""Clean-up of a drill: its recovery instances terminated by the worker, throttling or not.

`execution_cleanup` only records what to clean up: the launches go to phase TERMINATING and
each target gets a clean-up request (a TERMINATE DrsJob in state INTENDED). Every tick then,
per target:

1. follows the TERMINATE jobs already sent (one DescribeJobs) and marks their launches
   TERMINATED once DRS completes them;
2. sends what a request still holds: the recovery instance ids come from the launch row, else
   the launch job's participatingServers, else its LAUNCH_START log event, else
   DescribeRecoveryInstances (same source server and launch job), so none is left behind when
   DRS omits them. TerminateRecoveryInstances fails the whole batch for one id it does not
   know (a replaced instance: DRS keeps one per source server) or one already terminating:
   those ids are dropped, as already gone, and the rest is sent again. A throttled call waits
   for the next tick.

Terminating twice is harmless (DRS answers a conflict naming the instance, read as "already
terminating"), so unlike StartRecovery no intent is needed before the call; the TERMINATE job
and the launches it carries are written together at once, under a renewed lease.

May import: rows, lease (and drs, models, choices). Never jobs, job_log, launching, waves or ticks.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.db import transaction

from drsorch.drs import errors as drs_errors
from drsorch.drs import gateway
from drsorch.drs.constants import MAX_INSTANCES_PER_TERMINATE, JobStatus
from drsorch.drs.times import parse_drs_time
from executions.choices import JOB_OPEN, EventKind, JobState, JobType, LaunchPhase, LaunchStatus
from executions.models import DrsJob, Execution, ServerLaunch
from plans.models import Target

from .lease import LeaseLost, renew_lease
from .rows import TickRows

logger = logging.getLogger(__name__)

GONE_NOTE = "already gone (replaced by a later launch / not found)"
FAILED_PREFIX = "Clean-up failed"
TERMINATING_NOTE = "already terminated or being terminated by DRS"
_INSTANCE_ID_RE = re.compile(r"\bi-[0-9a-f]{8,}\b")


def step_cleanups(rows: TickRows) -> None:
    """Follow the sent TERMINATE jobs and send the pending clean-ups, target by target. DRS
    throttling (or a server held by another job) waits for the next tick; a refusal for good
    ends that clean-up request, its instances left for a new clean-up."""
    by_target: defaultdict[object, list[DrsJob]] = defaultdict(list)
    for job in rows.jobs.values():
        if job.type == JobType.TERMINATE and job.state in JOB_OPEN:
            by_target[job.target_id].append(job)
    touched = {job.execution_id for jobs in by_target.values() for job in jobs}
    for target_id, jobs in by_target.items():
        target = rows.targets[target_id]
        try:
            _follow_sent(rows, target, [job for job in jobs if job.state == JobState.ACTIVE])
        except (BotoCoreError, ClientError) as exc:
            # The jobs run on in DRS whatever we read; they are read again next tick.
            logger.info("Could not follow the clean-up jobs of target %s: %s", target.name, drs_errors.describe(exc))
        for request in (job for job in jobs if job.state == JobState.INTENDED):
            try:
                _send(rows, target, request)
            except LeaseLost:
                rows.lost.add(request.execution_id)
            except (BotoCoreError, ClientError) as exc:
                if _wait_for_next_tick(exc):
                    logger.info(
                        "Clean-up for target %s waits for the next tick: %s", target.name, drs_errors.describe(exc)
                    )
                    break
                _abandon(rows, request, drs_errors.describe(exc))
    for execution_id in touched:
        if execution_id not in rows.lost:
            _finish_if_done(rows, rows.executions[execution_id])


def _wait_for_next_tick(exc: BaseException) -> bool:
    """Throttling, a 5xx, the network, or a server held by another DRS job (DRS's conflict
    names no server): it passes by itself."""
    return drs_errors.is_worth_retrying_soon(exc) or _is_unnamed_conflict(exc)


def _is_unnamed_conflict(exc: BaseException) -> bool:
    return drs_errors.is_conflict(exc) and not _named_instance_ids(exc)


def _named_instance_ids(exc: BaseException) -> set[str]:
    """The recovery instance ids an error answer names (message, fieldList, resourceId)."""
    if not hasattr(exc, "response"):
        return set()
    response = exc.response
    texts = [drs_errors.error_message(exc), str(response.get("resourceId", ""))]
    texts += [str(field.get("message", "")) for field in response.get("fieldList") or []]
    return {match for text in texts for match in _INSTANCE_ID_RE.findall(text)}


# --- following the TERMINATE jobs --------------------------------------------------------------


def _follow_sent(rows: TickRows, target: Target, jobs: list[DrsJob]) -> None:
    if not jobs:
        return
    found = gateway.describe_jobs(target=target, job_ids=[job.job_id for job in jobs])
    for job in jobs:
        data = found.get(job.job_id)
        if data is None:
            continue
        if job.drs_status != data.get("status", job.drs_status):
            job.drs_status = data["status"]
            rows.touch(job)
        if data.get("status") == JobStatus.COMPLETED:
            _finish_terminate_job(rows, job, data)


def _finish_terminate_job(rows: TickRows, job: DrsJob, data: dict[str, Any]) -> None:
    # The clean-up proof is on DRS's clock: the instance terminated when DRS ended the job,
    # not when this tick noticed.
    confirmed_at = parse_drs_time(data.get("endDateTime")) or rows.now
    outcome = {p.get("sourceServerID"): p.get("launchStatus") for p in data.get("participatingServers", [])}
    for launch in rows.launches[job.execution_id]:
        if launch.cleanup_job_id != job.pk or launch.status == LaunchStatus.TERMINATED:
            continue
        if outcome.get(launch.source_server_id, LaunchStatus.TERMINATED) == LaunchStatus.TERMINATED:
            rows.set_status(launch, LaunchStatus.TERMINATED, phase=LaunchPhase.TERMINATED, terminated_at=confirmed_at)
        else:
            _not_terminated(rows, launch, f"DRS job {job.job_id} did not terminate {launch.recovery_instance_id}.")
    job.state = JobState.COMPLETED
    job.drs_ended_at = confirmed_at
    rows.touch(job)


def _not_terminated(rows: TickRows, launch: ServerLaunch, reason: str) -> None:
    """The instance is still there: the launch may be cleaned up again."""
    launch.phase = LaunchPhase.READY
    launch.cleanup_job = None
    launch.error = f"{FAILED_PREFIX}: {reason}"
    rows.touch(launch)
    rows.event(
        launch.execution_id,
        EventKind.ERROR,
        f"Server {launch.hostname or launch.source_server_id}: clean-up failed: {reason}",
        source_server_id=launch.source_server_id,
    )


def _gone(rows: TickRows, launch: ServerLaunch, note: str) -> None:
    rows.set_status(
        launch,
        LaunchStatus.TERMINATED,
        f"Server {launch.hostname or launch.source_server_id}: recovery instance "
        f"{launch.recovery_instance_id or '(unknown)'} {note}; nothing to terminate.",
        phase=LaunchPhase.TERMINATED,
        terminated_at=rows.now,
    )


# --- sending -----------------------------------------------------------------------------------


def _pending(rows: TickRows, request: DrsJob) -> list[ServerLaunch]:
    return [
        launch
        for launch in rows.launches[request.execution_id]
        if launch.target_id == request.target_id
        and launch.phase == LaunchPhase.TERMINATING
        and launch.status == LaunchStatus.LAUNCHED
        and launch.cleanup_job_id is None
    ]


def _send(rows: TickRows, target: Target, request: DrsJob) -> None:
    """Send what `request` still holds; done (COMPLETED) once nothing is left to send."""
    pending = _pending(rows, request)
    _find_instance_ids(rows, target, [launch for launch in pending if not launch.recovery_instance_id])
    for launch in pending:
        if not launch.recovery_instance_id:
            _gone(rows, launch, GONE_NOTE)
    pending = [launch for launch in pending if launch.recovery_instance_id]
    for start in range(0, len(pending), MAX_INSTANCES_PER_TERMINATE):
        _terminate(rows, target, request, pending[start : start + MAX_INSTANCES_PER_TERMINATE])
    request.state = JobState.COMPLETED
    rows.touch(request)


def _terminate(rows: TickRows, target: Target, request: DrsJob, batch: list[ServerLaunch]) -> None:
    """TerminateRecoveryInstances for `batch`, dropping the ids DRS no longer has (or already
    terminates) and sending the rest again. Any other error propagates to step_cleanups."""
    execution = rows.executions[request.execution_id]
    while batch:
        if not renew_lease(execution, owner=rows.owner):
            raise LeaseLost(execution.pk)
        try:
            data = gateway.terminate_recovery_instances(
                target=target, recovery_instance_ids=[launch.recovery_instance_id for launch in batch]
            )
        except Exception as exc:
            named = _named_instance_ids(exc)
            dropped = [launch for launch in batch if launch.recovery_instance_id in named]
            if dropped and (drs_errors.is_permanent(exc) or drs_errors.is_conflict(exc)):
                note = TERMINATING_NOTE if drs_errors.is_conflict(exc) else GONE_NOTE
                for launch in dropped:
                    _gone(rows, launch, note)
                batch = [launch for launch in batch if launch not in dropped]
                continue
            raise
        _record_sent(rows, request, batch, data)
        return


def _record_sent(rows: TickRows, request: DrsJob, batch: list[ServerLaunch], data: dict[str, Any]) -> None:
    # Written at once, together: the job id is what lets a later tick follow the termination.
    with transaction.atomic():
        job = DrsJob.objects.create(
            execution_id=request.execution_id,
            target_id=request.target_id,
            type=JobType.TERMINATE,
            job_id=data["jobID"],
            state=JobState.ACTIVE,
            drs_status=data.get("status", ""),
            is_drill=True,
            server_count=len(batch),
            requested_at=rows.now,
            drs_created_at=parse_drs_time(data.get("creationDateTime")),
        )
        ServerLaunch.objects.filter(pk__in=[launch.pk for launch in batch]).update(cleanup_job=job)
    for launch in batch:
        launch.cleanup_job = job
    rows.jobs[job.pk] = job
    rows.remember([job])
    rows.event(
        request.execution_id,
        EventKind.ENGINE,
        f"DRS job {job.job_id} terminates {len(batch)} recovery instance(s).",
        data={"job_id": job.job_id, "recovery_instance_ids": [launch.recovery_instance_id for launch in batch]},
    )


def _abandon(rows: TickRows, request: DrsJob, reason: str) -> None:
    request.state = JobState.ABANDONED
    request.error = reason
    rows.touch(request)
    for launch in _pending(rows, request):
        _not_terminated(rows, launch, f"DRS refused: {reason}")


# --- finding instance ids ----------------------------------------------------------------------


def _find_instance_ids(rows: TickRows, target: Target, launches: list[ServerLaunch]) -> None:
    """Fill in the recovery instance ids DRS did not give with the launch: the launch job's
    participatingServers, else its LAUNCH_START log event, else DescribeRecoveryInstances."""
    if not launches:
        return
    launch_jobs = DrsJob.objects.in_bulk([launch.job_id for launch in launches if launch.job_id])
    job_id_of = {
        launch.pk: launch_jobs[launch.job_id].job_id
        for launch in launches
        if launch.job_id in launch_jobs and launch_jobs[launch.job_id].job_id
    }
    missing = [launch for launch in launches if launch.pk in job_id_of]
    if not missing:
        return
    found = gateway.describe_jobs(target=target, job_ids=set(job_id_of.values()))
    for launch in missing:
        for participant in (found.get(job_id_of[launch.pk]) or {}).get("participatingServers", []):
            if participant.get("sourceServerID") == launch.source_server_id:
                _found(rows, launch, participant.get("recoveryInstanceID"))
    for job_id in {job_id_of[launch.pk] for launch in missing if not launch.recovery_instance_id}:
        started = {
            (item.get("eventData") or {}).get("sourceServerID"): (item.get("eventData") or {}).get("targetInstanceID")
            for item in gateway.job_log_items(target=target, job_id=job_id)
            if item.get("event") == "LAUNCH_START"
        }
        for launch in missing:
            if job_id_of[launch.pk] == job_id and not launch.recovery_instance_id:
                _found(rows, launch, started.get(launch.source_server_id))
    still = [launch for launch in missing if not launch.recovery_instance_id]
    if still:
        # Only the instance of *this* launch job: a later launch's instance is another drill's.
        instances = {
            (item.get("sourceServerID"), item.get("jobID")): item.get("recoveryInstanceID")
            for item in gateway.recovery_instances(
                target=target, source_server_ids=[la.source_server_id for la in still]
            )
            if item.get("ec2InstanceState") != "TERMINATED"
        }
        for launch in still:
            _found(rows, launch, instances.get((launch.source_server_id, job_id_of[launch.pk])))


def _found(rows: TickRows, launch: ServerLaunch, instance_id: str | None) -> None:
    if instance_id and not launch.recovery_instance_id:
        launch.recovery_instance_id = instance_id
        rows.touch(launch)


# --- the end -----------------------------------------------------------------------------------


def _finish_if_done(rows: TickRows, execution: Execution) -> None:
    """Once no clean-up job of the execution is open, say how the clean-up ended."""
    if any(
        job.execution_id == execution.pk and job.type == JobType.TERMINATE and job.state in JOB_OPEN
        for job in rows.jobs.values()
    ):
        return
    if execution.cleaned_up_at:
        return
    loaded = {launch.pk: launch for launch in rows.launches[execution.pk]}
    failed = {
        launch.pk
        for launch in loaded.values()
        if launch.status == LaunchStatus.LAUNCHED and launch.error.startswith(FAILED_PREFIX)
    }
    # Failures of an earlier tick are no longer loaded (their phase went back to READY).
    failed |= set(
        ServerLaunch.objects.filter(execution=execution, status=LaunchStatus.LAUNCHED, error__startswith=FAILED_PREFIX)
        .exclude(pk__in=list(loaded))
        .values_list("pk", flat=True)
    )
    if failed:
        rows.event(
            execution.pk,
            EventKind.ERROR,
            f"Clean-up ended: {len(failed)} recovery instance(s) could not be terminated; clean up again "
            "once the cause is fixed.",
        )
        return
    execution.cleaned_up_at = rows.now
    rows.touch(execution)
    rows.event(execution.pk, EventKind.STATUS, "Clean-up finished: the drill's recovery instances are terminated.")
