"""Following DRS jobs: one DescribeJobs per target, copied onto the tick's rows.

Polls the open jobs, adopts or abandons the intents of StartRecovery calls, applies each
participating server's launch status, recovery instance and post-launch runs (clean-up jobs
are cleanup.py's). Also says when a launch is settled or failed, which both a job's
end and the wave state machine depend on.

May import: account, rows, lease, evidence, times (and drs, models, choices). Never job_log, launching, waves or ticks.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from drsorch.drs import errors as drs_errors
from drsorch.drs import gateway
from drsorch.drs.concurrency import per_target
from drsorch.drs.constants import JobStatus, LaunchActionRunStatus
from drsorch.drs.errors import ErrorKind
from drsorch.drs.times import parse_drs_time
from executions.choices import JOB_OPEN, EventKind, JobState, JobType, LaunchPhase, LaunchStatus, WaveStatus
from executions.models import DrsJob, Execution, ServerLaunch
from plans.models import Target

from . import evidence
from .account import apply_target_jobs, fetch_target_jobs
from .lease import LEASE_SECONDS
from .rows import TickRows

logger = logging.getLogger(__name__)

# An intent not found in DRS this long after it was recorded never reached DRS: StartRecovery
# is made in a single attempt (no botocore retries) bounded by the connect and read timeouts
# (35 s), so a call made under a renewed lease has ended before the lease can pass to another.
INTENT_GRACE_SECONDS = LEASE_SECONDS

# How long DRS may stay unreachable (endpoint, credentials, a permission to read jobs) for an
# execution before the engine stops waiting for it on that target: at least this many
# consecutive failed ticks and this much time, so one blip never fails anything and a cancel
# or a failing drill still ends within a few minutes.
UNREACHABLE_GIVE_UP_SECONDS = 120
UNREACHABLE_GIVE_UP_TICKS = 3


def launch_settled(rows: TickRows, execution: Execution, launch: ServerLaunch) -> bool:
    """Done or failed for good: LAUNCHED (a drill), LAUNCHED with post-launch actions
    finished (a recovery), or FAILED."""
    if launch.status in (LaunchStatus.FAILED, LaunchStatus.TERMINATED):
        return True
    if launch.status != LaunchStatus.LAUNCHED:
        return False
    if execution.is_drill:
        return True
    if launch.post_launch_status in (LaunchActionRunStatus.SUCCEEDED, LaunchActionRunStatus.FAILED):
        return True
    job = rows.jobs.get(launch.job_id)
    return launch.post_launch_status == "" and (job is None or job.drs_status == JobStatus.COMPLETED)


def launch_failed(execution: Execution, launch: ServerLaunch) -> bool:
    """The launch failed, or (in a recovery) its post-launch actions did."""
    return launch.status == LaunchStatus.FAILED or (
        not execution.is_drill and launch.post_launch_status == LaunchActionRunStatus.FAILED
    )


def poll_jobs(
    rows: TickRows, jobs: Iterable[DrsJob] | None = None, *, instances_later: bool = False
) -> evidence.InstanceReads | None:
    """One DescribeJobs per target for the open jobs (or `jobs`); adopt or drop unconfirmed
    intents. A target DRS does not answer is noted against the executions of its jobs. Then
    the recovery instances of the servers that just launched are read, one call per target.

    The targets are asked at once (drsorch.drs.concurrency): what to ask is decided here, the
    calls return plain data, and the answers are applied here, in the tick's thread. With
    `instances_later` the instance reads are only started and returned, for the caller to
    apply (evidence.apply_instance_reads) once it has started the next waves' jobs."""
    by_target = defaultdict(list)
    for job in jobs if jobs is not None else rows.jobs.values():
        by_target[job.target_id].append(job)
    asks = {target_id: _TargetAsk.of(rows, target_jobs) for target_id, target_jobs in by_target.items()}
    for ask in asks.values():
        ask.list_account = _may_launch(rows, ask.executions)
    answers = per_target(
        {
            target_id: functools.partial(ask.fetch, rows.targets[target_id])
            for target_id, ask in asks.items()
            if ask.active or ask.stale_intents
        }
    )
    instance_reads = {}
    for target_id, ask in asks.items():
        outcome = answers.get(target_id)
        try:
            if outcome is not None:
                answer = outcome.get()
                if answer.listing is not None:
                    # The launcher reads the account's jobs from this listing: no second DescribeJobs.
                    apply_target_jobs(rows, rows.targets[target_id], answer.listing)
                instance_reads[target_id] = ask.apply(rows, answer)
                if answer.token_error is not None:
                    raise answer.token_error
        except Exception as exc:
            if ask.list_account and target_id not in rows.drs_views:
                # The launcher would list the account again this tick: it waits for the next.
                rows.drs_views[target_id] = None
                rows.drs_view_errors[target_id] = exc
            _not_answered(rows, rows.targets[target_id], ask.executions, exc)
        else:
            for execution_id in ask.executions:
                rows.call_answered(execution_id, target_id)
    # The servers that just launched: their recovery instances, one call per target, at once.
    reads = evidence.start_instance_reads(rows, instance_reads)
    if instances_later:
        return reads
    evidence.apply_instance_reads(rows, reads)
    return None


def _may_launch(rows: TickRows, execution_ids: set[object]) -> bool:
    """Whether one of these executions may start DRS jobs this tick: it has a wave that has not
    finished launching. Broad on purpose: a wave whose turn comes in this very tick counts."""
    return any(
        wave.status in (WaveStatus.PENDING, WaveStatus.BEFORE_ACTIONS, WaveStatus.LAUNCHING)
        for execution_id in execution_ids
        for wave in rows.waves.get(execution_id, ())
    )


def _not_answered(rows: TickRows, target: Target, executions: set[object], exc: Exception) -> None:
    kind = drs_errors.classify(exc)
    if kind in (ErrorKind.RETRY, ErrorKind.QUOTA):
        # Throttling and 5xx never fail an execution: the next tick asks again.
        logger.info("DRS did not answer for target %s this tick: %s", target.name, exc)
        return
    # Unreachable, failing credentials, or a permission missing to read jobs or their
    # tags: the jobs exist (or may) in DRS, so nothing is failed now; after a bounded
    # time give_up_unreachable() ends the wait, naming this cause.
    logger.warning("Cannot follow the DRS jobs of target %s: %s", target.name, exc)
    for execution_id in executions:
        rows.call_failed(execution_id, target.pk, drs_errors.explain(exc, operation="DescribeJobs"))


@dataclass
class _TargetAnswer:
    """What DRS said of one target's jobs: the active jobs by id, and the jobs carrying the
    launch tokens of stale intents (or the error of that lookup, the jobs being answered)."""

    found: dict[str, dict[str, Any]]
    by_token: dict[str, dict[str, Any]]
    token_error: Exception | None = None
    # The account's recent jobs, when the poll listed them (account.fetch_target_jobs).
    listing: list[dict[str, Any]] | None = None


@dataclass
class _TargetAsk:
    """What to ask DRS about one target's jobs, decided in the tick's thread."""

    active: list[DrsJob]
    stale_intents: list[DrsJob]
    executions: set[object]
    job_ids: list[str] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    since: Any = None
    # Poll by listing the account's recent jobs (the launcher needs that listing this tick)
    # instead of by job id: one DescribeJobs for the target, not two.
    list_account: bool = False
    now: Any = None

    @classmethod
    def of(cls, rows: TickRows, jobs: list[DrsJob]) -> _TargetAsk:
        """The active jobs to describe and the stale intents to look up by launch token."""
        active = [j for j in jobs if j.state == JobState.ACTIVE]
        stale = [j for j in jobs if j.state == JobState.INTENDED and j.pk not in rows.new_intents]
        return cls(
            active=active,
            stale_intents=stale,
            executions={job.execution_id for job in jobs},
            job_ids=[j.job_id for j in active],
            tokens={str(j.launch_token) for j in stale},
            since=min((j.requested_at for j in stale), default=None),
            now=rows.now,
        )

    def fetch(self, target: Target) -> _TargetAnswer:
        """The DRS calls (safe in a pool thread: no row is read or written)."""
        listing = None
        if self.list_account:
            # Reaching back to the stale intents, which are looked for in this listing too.
            reach_back = self.since - timedelta(minutes=2) if self.since else None
            listing = fetch_target_jobs(target, now=self.now, reach_back=reach_back)
            listed = {job["jobID"]: job for job in listing}
            found = {job_id: listed[job_id] for job_id in self.job_ids if job_id in listed}
            # A job the listing lacks (older than its fromDate, or DRS's clock far behind ours)
            # is still asked for by id.
            missing = [job_id for job_id in self.job_ids if job_id not in listed]
            if missing:
                found.update(gateway.describe_jobs(target=target, job_ids=missing))
        else:
            found = gateway.describe_jobs(target=target, job_ids=self.job_ids) if self.job_ids else {}
        answer = _TargetAnswer(found=found, by_token={}, listing=listing)
        if self.tokens:
            try:
                answer.by_token = gateway.find_jobs_by_launch_token(
                    target=target, since=self.since, tokens=self.tokens, jobs=listing
                )
            except Exception as exc:
                answer.token_error = exc
        return answer

    def apply(self, rows: TickRows, answer: _TargetAnswer) -> list[ServerLaunch]:
        """Apply DRS's answer to the rows; the launched servers whose instances are to be read.
        Intents are resolved only when their lookup was answered."""
        for job in self.active:
            if job.job_id in answer.found:
                apply_job(rows, job, answer.found[job.job_id])
        due = evidence.instance_reads_due(rows, self.active)
        if self.stale_intents and answer.token_error is None:
            _resolve(rows, self.stale_intents, answer.by_token)
        return due


def resolve_intents(rows: TickRows, target: Target, intents: list[DrsJob]) -> None:
    """Adopt the jobs of intents whose StartRecovery reached DRS; drop the others."""
    tokens = {str(job.launch_token) for job in intents}
    since = min(job.requested_at for job in intents)
    _resolve(rows, intents, gateway.find_jobs_by_launch_token(target=target, since=since, tokens=tokens))


def _resolve(rows: TickRows, intents: list[DrsJob], found: dict[str, dict[str, Any]]) -> None:
    for job in intents:
        data = found.get(str(job.launch_token))
        if data:
            adopt(rows, job, data, how="found by its launch token")
        elif (rows.now - job.requested_at).total_seconds() > INTENT_GRACE_SECONDS:
            abandon(rows, job, "StartRecovery never reached DRS; the servers will be launched again.")


def adopt(rows: TickRows, job: DrsJob, data: dict[str, Any], *, how: str) -> None:
    """Make an intent the DRS job `data` describes, and apply what DRS says of it."""
    job.job_id = data["jobID"]
    job.state = JobState.ACTIVE
    job.drs_status = data.get("status", "")
    job.drs_created_at = parse_drs_time(data.get("creationDateTime"))
    rows.touch(job)
    # Written at once: the job id is the one fact that must survive a crash of this tick.
    DrsJob.objects.filter(pk=job.pk, state=JobState.INTENDED).update(
        job_id=job.job_id, state=JobState.ACTIVE, drs_status=job.drs_status, drs_created_at=job.drs_created_at
    )
    evidence.adopted_start(rows, job)
    # Each server's attempt in this job is recorded from now on (rows.save), whatever follows.
    for launch in rows.launches_by_job.get(job.pk, {}).values():
        rows.touch(launch)
    wave = rows.wave_of(job)
    rows.event(
        job.execution_id,
        EventKind.ENGINE,
        f"DRS job {job.job_id} ({how}) launches {job.server_count} server(s) of wave '{wave.name}'.",
        wave=wave,
        data={"job_id": job.job_id, "launch_token": str(job.launch_token)},
    )
    apply_job(rows, job, data)


def abandon(rows: TickRows, job: DrsJob, reason: str, *, fail_servers: bool = False) -> None:
    """Drop an intent DRS did not act on: its servers wait for a later launch (or fail)."""
    job.state = JobState.ABANDONED
    job.error = reason
    rows.touch(job)
    for launch in rows.launches_by_job.pop(job.pk, {}).values():
        launch.job = None
        if fail_servers:
            rows.set_status(launch, LaunchStatus.FAILED, phase=LaunchPhase.FAILED, error=reason)
        else:
            launch.phase = LaunchPhase.QUEUED
            launch.error = ""
            rows.touch(launch)
    wave = rows.wave_of(job)
    rows.event(
        job.execution_id,
        EventKind.ENGINE,
        f"Launch of {job.server_count} server(s) not done: {reason}",
        wave=wave,
        data={"launch_token": str(job.launch_token)},
    )


def give_up_unreachable(rows: TickRows) -> None:
    """End the wait for targets DRS has not answered for longer than the bound: fail the
    servers still waiting to launch there and close the open launch jobs and intents as
    "outcome unknown", so every execution (a cancelled one too) ends and a retry is allowed.

    Exactly once: an intent may be *abandoned* (its servers launched again automatically) only
    when DRS proved it created nothing, or when DRS, reachable, shows no job with its token
    after the grace time. Here DRS cannot be asked, so neither holds: the StartRecovery may
    have created a job. The intent is recorded as UNKNOWN and its servers FAILED, never
    relaunched by the engine; a person's retry (which sees the recorded cause) decides."""
    for execution in rows.executions.values():
        trouble = execution.drs_trouble or {}
        due = {
            key: entry
            for key, entry in trouble.items()
            if entry.get("ticks", 0) >= UNREACHABLE_GIVE_UP_TICKS
            and (rows.now - parse_drs_time(entry["since"])).total_seconds() >= UNREACHABLE_GIVE_UP_SECONDS
        }
        for key, entry in due.items():
            _give_up_target(rows, execution, int(key) if key.isdigit() else key, entry)
        if due:
            execution.drs_trouble = {key: entry for key, entry in trouble.items() if key not in due}
            rows.touch(execution)


def _give_up_target(rows: TickRows, execution: Execution, target_id: object, entry: dict[str, Any]) -> None:
    since = parse_drs_time(entry["since"])
    cause = (
        f"DRS of target '{rows.targets[target_id].name}' could not be reached for "
        f"{(rows.now - since).total_seconds() / 60:.0f} min: {entry.get('error', 'no answer')}"
    )
    for job in list(rows.jobs.values()):
        if (
            job.execution_id != execution.pk
            or job.target_id != target_id
            or job.type != JobType.LAUNCH
            or job.state not in JOB_OPEN
        ):
            continue
        what = f"DRS job {job.job_id}" if job.job_id else "The StartRecovery of this launch"
        reason = (
            f"{cause}. {what} may or may not have launched these servers (outcome unknown); "
            "they are not relaunched automatically: check DRS, then retry."
        )
        job.state = JobState.UNKNOWN
        job.error = reason
        rows.touch(job)
        for launch in rows.launches_by_job.pop(job.pk, {}).values():
            if not launch.is_terminal:
                rows.set_status(launch, LaunchStatus.FAILED, phase=LaunchPhase.FAILED, error=reason)
        rows.event(
            execution.pk,
            EventKind.ERROR,
            f"Launch outcome unknown: {reason}",
            wave=rows.wave_of(job),
            data={"launch_token": str(job.launch_token), "job_id": job.job_id or ""},
        )
    waves = {w.pk: w for w in rows.waves[execution.pk] if w.status == WaveStatus.LAUNCHING}
    failed = 0
    for launch in rows.launches[execution.pk]:
        if (
            launch.wave_run_id in waves
            and launch.target_id == target_id
            and launch.job_id is None
            and launch.status == LaunchStatus.NOT_STARTED
        ):
            rows.set_status(launch, LaunchStatus.FAILED, phase=LaunchPhase.FAILED, error=f"{cause}. Not launched.")
            failed += 1
    if failed:
        rows.event(execution.pk, EventKind.ERROR, f"{failed} server(s) not launched: {cause}.")


def apply_job(rows: TickRows, job: DrsJob, data: dict[str, Any]) -> None:
    """Copy what DRS says of a job and its servers onto our rows."""
    if job.drs_status != data.get("status", job.drs_status):
        if data["status"] == JobStatus.COMPLETED and job.type == JobType.LAUNCH and job.state == JobState.ACTIVE:
            # Its servers leave DRS's active-job quota now: the next wave may use the room
            # in this very tick rather than the next.
            rows.quota_use[job.target_id]["jobs"] -= 1
            rows.quota_use[job.target_id]["servers"] -= job.server_count
        job.drs_status = data["status"]
        rows.touch(job)
    execution = rows.executions[job.execution_id]
    if job.type == JobType.TERMINATE:
        return  # clean-up jobs are cleanup.py's (ticks.py does not pass them here)
    launches = rows.launches_by_job.get(job.pk, {})
    ended = parse_drs_time(data.get("endDateTime"))
    for participant in data.get("participatingServers", []):
        launch = launches.get(participant.get("sourceServerID"))
        if launch:
            apply_participant(rows, execution, launch, participant, job_ended_at=ended)
    if data.get("status") == JobStatus.COMPLETED:
        for launch in launches.values():
            if launch.status not in (LaunchStatus.LAUNCHED, LaunchStatus.FAILED, LaunchStatus.TERMINATED):
                rows.set_status(
                    launch,
                    LaunchStatus.FAILED,
                    phase=LaunchPhase.FAILED,
                    ended_at=ended or rows.now,
                    error=launch.error or f"DRS completed job {job.job_id} without launching it.",
                )
        if all(launch_settled(rows, execution, launch) for launch in launches.values()):
            # Done for the state machine; the job closes once its final log is read
            # (job_log.read_logs), so its events are complete without costing this tick a call.
            job.drs_ended_at = job.drs_ended_at or ended or rows.now
            rows.final_log_due.add(job.pk)
            rows.touch(job)


def apply_participant(
    rows: TickRows, execution: Execution, launch: ServerLaunch, participant: dict[str, Any], *, job_ended_at: Any = None
) -> None:
    """Copy one participating server's launch status and recovery instance onto its launch.
    Times are DRS's where the job gives one; otherwise the tick's, until the recovery instance
    (evidence.read_instances, this tick) or the job log (LAUNCH_FAILED) gives DRS's own."""
    status = participant.get("launchStatus")
    instance_id = participant.get("recoveryInstanceID")
    if instance_id and launch.recovery_instance_id != instance_id:
        launch.recovery_instance_id = instance_id
        rows.touch(launch)
    if status in (LaunchStatus.PENDING, LaunchStatus.IN_PROGRESS) and launch.status == LaunchStatus.NOT_STARTED:
        rows.set_status(launch, LaunchStatus(status))
    elif status == LaunchStatus.IN_PROGRESS and launch.status == LaunchStatus.PENDING:
        rows.set_status(launch, LaunchStatus.IN_PROGRESS)
    elif status == LaunchStatus.LAUNCHED:
        if launch.status != LaunchStatus.LAUNCHED:
            at = evidence.participant_launch_time(participant) or rows.now
            rows.set_status(
                launch, LaunchStatus.LAUNCHED, launched_at=at, ended_at=at, phase=LaunchPhase.READY, error=""
            )
        _apply_post_launch(rows, execution, launch, participant)
    elif status == LaunchStatus.FAILED and launch.status != LaunchStatus.FAILED:
        rows.set_status(
            launch,
            LaunchStatus.FAILED,
            phase=LaunchPhase.FAILED,
            ended_at=launch.ended_at or job_ended_at or rows.now,
            error=launch.error or "DRS reported the launch as FAILED.",
        )


def _action_label(run: dict[str, Any]) -> str:
    action = run.get("action") or {}
    name, code = action.get("name"), action.get("actionCode")
    label = f"'{name}' ({code})" if name and code else f"'{name or code or run.get('runId', 'unnamed')}'"
    return f"{label}: {run.get('failureReason') or 'no reason given'}"


def _apply_post_launch(rows: TickRows, execution: Execution, launch: ServerLaunch, participant: dict[str, Any]) -> None:
    """Follow a launched server's post-launch actions (drs-facts 6). In a recovery the server
    is done when they end: a failed mandatory action fails it, naming the action(s); a failed
    action DRS marks `optional` does not (it is recorded). A drill records the status only."""
    runs = (participant.get("launchActionsStatus") or {}).get("runs") or []
    statuses = {run.get("status") for run in runs}
    failed = [run for run in runs if run.get("status") == LaunchActionRunStatus.FAILED]
    mandatory = [run for run in failed if not (run.get("action") or {}).get("optional")]
    optional = [run for run in failed if run not in mandatory]
    if not runs:
        state = ""
    elif LaunchActionRunStatus.IN_PROGRESS in statuses:
        state = LaunchActionRunStatus.IN_PROGRESS
    elif mandatory:
        state = LaunchActionRunStatus.FAILED
    else:
        state = LaunchActionRunStatus.SUCCEEDED
    if state == launch.post_launch_status:
        return
    launch.post_launch_status = state
    rows.touch(launch)
    if state == LaunchActionRunStatus.IN_PROGRESS:
        if not execution.is_drill:
            launch.phase = LaunchPhase.POST_LAUNCH
        return
    wave = next((w for w in rows.waves[execution.pk] if w.pk == launch.wave_run_id), None)
    who = launch.hostname or launch.source_server_id
    if mandatory:
        failures = "; ".join(_action_label(run) for run in mandatory)
        message = f"Post-launch action(s) failed: {failures}"
        if not execution.is_drill:
            launch.phase = LaunchPhase.FAILED
            launch.error = message
        rows.event(
            execution.pk,
            EventKind.ERROR if not execution.is_drill else EventKind.ENGINE,
            f"{who}: {message}" + (" (a drill: the launch is what counts)" if execution.is_drill else ""),
            wave=wave,
            source_server_id=launch.source_server_id,
        )
    elif not execution.is_drill:
        launch.phase = LaunchPhase.READY
    if optional:
        rows.event(
            execution.pk,
            EventKind.ENGINE,
            f"{who}: optional post-launch action(s) failed, which does not fail the server: "
            + "; ".join(_action_label(run) for run in optional),
            wave=wave,
            source_server_id=launch.source_server_id,
        )
