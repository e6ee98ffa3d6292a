"""Starting DRS jobs: quota budget, batches, intents, StartRecovery.

The servers of launching waves go to DRS in jobs of at most MAX_SERVERS_PER_JOB, while the
target has room under DRS's quotas and while the tick's launch budget (a share of the poll
interval, given by the caller of `tick`) lasts. Each launch is recorded (DrsJob INTENDED,
with a launch token) and its servers are claimed with a conditional UPDATE *before*
StartRecovery is called, and the lease is renewed just before the call. A crash after the
call leaves the intent; a later tick finds the job by its launch-token tag and adopts it
(jobs.resolve_intents). DRS's own rule (one active job per server) is the last guard: a
ConflictException means "look again", never "launch again".

The quota limits are module globals read at call time (tests lower them with monkeypatch).

May import: jobs, rows, lease (and drs, models, choices). Never job_log, waves or ticks.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from drsorch.drs import constants as drs_constants
from drsorch.drs import errors as drs_errors
from drsorch.drs import gateway
from drsorch.drs.constants import MAX_ACTIVE_JOBS_PER_TARGET, MAX_SERVERS_IN_ACTIVE_JOBS, MAX_SERVERS_PER_JOB
from executions.choices import EventKind, ExecutionStatus, JobState, JobType, LaunchPhase, LaunchStatus, WaveStatus
from executions.models import DrsJob, Execution, ServerLaunch, WaveRun
from plans.models import Target

from .jobs import abandon, adopt
from .lease import LEASE_SECONDS, LeaseLost, renew_lease
from .rows import TickRows

logger = logging.getLogger(__name__)

# A StartRecovery is one attempt bounded by connect (5 s) and read (30 s) timeouts.
MAX_START_RECOVERY_SECONDS = 35


class Launcher:
    """Starts the DRS jobs of one tick, within the quotas and the tick's launch deadline."""

    def __init__(self, rows: TickRows, *, deadline: float | None = None) -> None:
        """`deadline` is a time.monotonic() after which no further job starts this tick
        (at least one always does); None means no time limit."""
        self.rows = rows
        self.deadline = deadline
        self.jobs_started = 0

    def submit_launches(self, execution: Execution) -> None:
        """Start DRS jobs for the servers of launching waves, in jobs of at most 100 servers,
        while the target's budget of 20 active jobs and 500 servers in active jobs allows."""
        if execution.status == ExecutionStatus.CANCELLING:
            return
        for wave in self.rows.waves[execution.pk]:
            if wave.status != WaveStatus.LAUNCHING:
                continue
            waiting = defaultdict(list)
            for launch in self.rows.wave_launches(execution, wave):
                if launch.status == LaunchStatus.NOT_STARTED and launch.job_id is None:
                    waiting[launch.target_id].append(launch)
            for target_id, launches in waiting.items():
                self._submit_for_target(execution, wave, self.rows.targets[target_id], launches)

    def _out_of_time(self) -> bool:
        # A burst of launches must not stretch one tick over the next poll: every other
        # execution waits for the tick to end. What does not fit starts in the next tick.
        return bool(self.jobs_started) and self.deadline is not None and time.monotonic() > self.deadline

    def _submit_for_target(self, execution: Execution, wave: WaveRun, target: Target,
                           launches: list[ServerLaunch]) -> None:
        use = self.rows.quota_use[target.pk]
        while launches:
            room = min(MAX_SERVERS_PER_JOB, MAX_SERVERS_IN_ACTIVE_JOBS - use["servers"])
            if use["jobs"] >= MAX_ACTIVE_JOBS_PER_TARGET or room <= 0 or self._out_of_time():
                for launch in launches:
                    if launch.phase != LaunchPhase.QUEUED:
                        launch.phase = LaunchPhase.QUEUED
                        self.rows.touch(launch)
                return
            batch, launches = launches[:room], launches[room:]
            use["jobs"] += 1
            use["servers"] += len(batch)
            self.launch_batch(execution, wave, target, batch)

    def launch_batch(self, execution: Execution, wave: WaveRun, target: Target, batch: list[ServerLaunch]) -> None:
        """Renew the lease, record the intent, then call StartRecovery once for `batch`."""
        self._ensure_lease(execution)
        job = self._record_intent(execution, wave, target, batch)
        if job is None:
            return
        tags = {drs_constants.TAG_EXECUTION: str(execution.pk), drs_constants.TAG_WAVE: str(wave.index),
                drs_constants.TAG_LAUNCH_TOKEN: str(job.launch_token)}
        try:
            data = gateway.start_recovery(target=target,
                                          source_server_ids=[launch.source_server_id for launch in batch],
                                          is_drill=execution.is_drill, tags=tags)
        except Exception as exc:
            self._launch_refused(job, target, exc)
            return
        self.jobs_started += 1
        adopt(self.rows, job, data, how="started")

    def _ensure_lease(self, execution: Execution) -> None:
        """Renew the lease before a StartRecovery unless it was renewed in the last 20 s: the
        call ends within MAX_START_RECOVERY_SECONDS, so such a lease still outlives it."""
        renewed = self.rows.lease_renewed_at.get(execution.pk)
        if renewed and time.monotonic() - renewed < LEASE_SECONDS - MAX_START_RECOVERY_SECONDS - 5:
            return
        if not renew_lease(execution, owner=self.rows.owner):
            raise LeaseLost(execution.pk)
        self.rows.lease_renewed_at[execution.pk] = time.monotonic()

    def _record_intent(self, execution: Execution, wave: WaveRun, target: Target,
                       batch: list[ServerLaunch]) -> DrsJob | None:
        """Store the job we are about to ask for and claim its servers, before any call."""
        with transaction.atomic():
            job = DrsJob.objects.create(
                execution=execution, wave_run=wave, target=target, type=JobType.LAUNCH,
                launch_token=uuid.uuid4(), state=JobState.INTENDED, is_drill=execution.is_drill,
                server_count=len(batch), requested_at=timezone.now(),
            )
            claimed = ServerLaunch.objects.filter(
                pk__in=[launch.pk for launch in batch], job__isnull=True, status=LaunchStatus.NOT_STARTED
            ).update(job=job, phase=LaunchPhase.STARTING, attempts=F("attempts") + 1, error="")
            if claimed != len(batch):
                # Someone else claimed a server meanwhile: launch nothing, let the next tick re-read.
                transaction.set_rollback(True)
                logger.warning("Servers of wave %s were claimed elsewhere; skipping this launch.", wave.pk)
                return None
        self.rows.jobs[job.pk] = job
        self.rows.new_intents.add(job.pk)
        for launch in batch:
            launch.job = job
            launch.phase = LaunchPhase.STARTING
            launch.attempts += 1
            launch.error = ""
            self.rows.launches_by_job[job.pk][launch.source_server_id] = launch
        # The UPDATE above wrote these rows: later changes are diffed from what it wrote.
        self.rows.remember(batch)
        return job

    def _launch_refused(self, job: DrsJob, target: Target, exc: Exception) -> None:
        """Decide from StartRecovery's error whether DRS acted: adopt, drop, fail or keep the intent."""
        message = getattr(exc, "response", {}).get("Error", {}).get("Message") or str(exc)
        if drs_errors.is_conflict(exc):
            # A server is in an active job: maybe ours, from an answer we never saw. Look first.
            found = gateway.find_jobs_by_launch_token(target=target, since=job.requested_at,
                                                  tokens={str(job.launch_token)})
            if str(job.launch_token) in found:
                adopt(self.rows, job, found[str(job.launch_token)], how="found after a conflict")
            else:
                abandon(self.rows, job, f"DRS refused: {message}. The servers are retried on the next poll.")
        elif drs_errors.is_rejected(exc):
            abandon(self.rows, job,
                    f"DRS refused for now ({drs_errors.error_code(exc)}): {message}. Retrying on the next poll.")
        elif drs_errors.is_permanent(exc):
            abandon(self.rows, job, f"DRS cannot launch these servers: {message}", fail_servers=True)
        else:
            # The call may or may not have reached DRS: keep the intent; the next tick looks the
            # job up by its launch token and adopts it, or drops the intent after the grace time.
            logger.warning("StartRecovery outcome unknown for intent %s: %s", job.launch_token, exc)
            self.rows.event(job.execution_id, EventKind.ENGINE,
                            f"StartRecovery answer lost ({exc}); the job will be looked up by its launch token.",
                            wave=self.rows.wave_of(job))
