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

May import: account, jobs, rows, lease (and drs, models, choices). Never job_log, waves or ticks.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from drsorch.drs import constants as drs_constants
from drsorch.drs import errors as drs_errors
from drsorch.drs import gateway
from drsorch.drs.concurrency import Outcome, per_target
from drsorch.drs.constants import MAX_ACTIVE_JOBS_PER_TARGET, MAX_SERVERS_IN_ACTIVE_JOBS, MAX_SERVERS_PER_JOB
from drsorch.drs.errors import ErrorKind
from executions.choices import EventKind, ExecutionStatus, JobState, JobType, LaunchPhase, LaunchStatus, WaveStatus
from executions.models import DrsJob, Execution, ServerLaunch, WaveRun
from plans.models import Target

from .account import TargetView, apply_target_jobs, fetch_target_jobs, read_target
from .jobs import abandon, adopt
from .lease import LEASE_SECONDS, LeaseLost, renew_lease
from .rows import TickRows, update_rows

logger = logging.getLogger(__name__)

# A StartRecovery is one attempt bounded by connect (5 s) and read (30 s) timeouts.
MAX_START_RECOVERY_SECONDS = 35
# A throttled StartRecovery is asked again at once this many times within the tick. A tick
# makes its calls in a fixed order (the account's jobs, then StartRecovery), so without this a
# throttle that recurs with that rhythm would refuse every StartRecovery, tick after tick.
THROTTLED_START_RETRIES = 2
# StartRecovery calls one target may have in flight at once within a round: the executions
# that reach a wave together on one account (a dozen drills of one team) start in one round of
# DRS's latency instead of one round each. Their servers differ (each batch claimed its own),
# and the quota room was counted for each batch before the round.
STARTS_PER_TARGET_AT_ONCE = 4
# The holder of a server that conflicts although no listed active job holds it.
UNKNOWN_HOLDER = ""


@dataclass
class _Planned:
    """One StartRecovery to send this round: its intent is recorded, its request built."""

    execution: Execution
    wave: WaveRun
    target: Target
    batch: list[ServerLaunch]
    job: DrsJob
    request: dict[str, Any]


def _start_recovery(request: dict[str, Any]) -> dict[str, Any]:
    """StartRecovery, asked again at once while DRS throttles it (DRS calls only: safe in a
    pool thread). Unlike a lost answer, a ThrottlingException proves DRS created nothing: the
    same intent may be sent again without risking a second launch."""
    for attempt in range(THROTTLED_START_RETRIES + 1):
        try:
            return gateway.start_recovery(**request)
        except Exception as exc:
            if attempt < THROTTLED_START_RETRIES and drs_errors.is_throttled(exc):
                continue
            raise
    raise AssertionError("unreachable: the last attempt returns or raises")


class Launcher:
    """Starts the DRS jobs of one tick, within the quotas and the tick's launch deadline.

    The jobs go out in rounds: each round takes the next batches of every target (up to
    STARTS_PER_TARGET_AT_ONCE each, in the order of the executions), records their intents in
    this thread, sends their StartRecovery calls at once (drsorch.drs.concurrency) and applies
    the answers here. So a tick waits for DRS's latency once per round, not once per job, and
    no round starts that would end past the launch deadline."""

    def __init__(self, rows: TickRows, *, budget_seconds: float | None = None) -> None:
        """`budget_seconds` is how long this tick may spend starting jobs, from its first
        round (at least one job always starts); None means no time limit."""
        self.rows = rows
        self.budget_seconds = budget_seconds
        self.deadline: float | None = None
        # How long the last round of StartRecovery calls took: a round that would end past the
        # deadline is left to the next tick (a burst's round takes several of DRS's latencies).
        self.last_round_seconds = 0.0
        self.jobs_started = 0
        # DRS job id -> how the HELD message names the drsorch execution that asked for the
        # job ("" for a job drsorch did not start), looked up once per tick.
        self.job_holders: dict[str, str] = {}

    def submit_launches(self, execution: Execution) -> None:
        """Start DRS jobs for the servers of one execution's launching waves (see submit_all)."""
        self.submit_all([execution])

    def submit_all(self, executions: list[Execution]) -> None:
        """Start DRS jobs for the servers of launching waves, in jobs of at most 100 servers,
        while each target's budget of 20 active jobs and 500 servers in active jobs allows. An
        execution whose lease is lost meanwhile is added to `rows.lost` and launches no more."""
        work = []
        for execution in executions:
            if execution.status == ExecutionStatus.CANCELLING:
                continue
            for wave in self.rows.waves[execution.pk]:
                if wave.status != WaveStatus.LAUNCHING:
                    continue
                waiting = defaultdict(list)
                for launch in self.rows.wave_launches(execution, wave):
                    if launch.status == LaunchStatus.NOT_STARTED and launch.job_id is None:
                        waiting[launch.target_id].append(launch)
                for target_id, launches in waiting.items():
                    work.append((execution, wave, self.rows.targets[target_id], launches))
        if not work:
            return
        if self.budget_seconds is not None and self.deadline is None:
            self.deadline = time.monotonic() + self.budget_seconds
        self._read_views({target.pk: target for _, _, target, _ in work})
        queues: dict[object, list[tuple[Execution, Iterator[list[ServerLaunch]]]]] = defaultdict(list)
        for execution, wave, target, launches in work:
            queues[target.pk].append((execution, self._batches(execution, wave, target, launches)))
        while queues:
            planned = []
            for target_id in list(queues):
                for _ in range(STARTS_PER_TARGET_AT_ONCE):
                    if target_id not in queues:
                        break
                    item = self._next_batch(queues, target_id)
                    if item is not None:
                        planned.append(item)
            self._send(planned)

    def _read_views(self, targets: dict[object, Target]) -> None:
        """The account's active jobs of every target that has launches to make and was not
        read yet this tick: one listing per target, the targets at once."""
        due = {pk: target for pk, target in targets.items() if pk not in self.rows.drs_views}
        answers = per_target(
            {pk: functools.partial(fetch_target_jobs, target, now=self.rows.now) for pk, target in due.items()}
        )
        for pk, target in due.items():
            outcome = answers[pk]
            if outcome.error is None:
                apply_target_jobs(self.rows, target, outcome.value)
            else:
                self.rows.drs_views[pk] = None
                self.rows.drs_view_errors[pk] = outcome.error

    def _next_batch(self, queues: dict[object, list], target_id: object) -> _Planned | None:
        """The next StartRecovery of `target_id`'s queue, its intent recorded (None when this
        pull planned nothing: no room, no snapshot, claimed elsewhere, or a lost lease)."""
        queue = queues[target_id]
        while queue:
            execution, batches = queue[0]
            batch = next(batches, None)
            if batch is None:
                queue.pop(0)
                continue
            try:
                return self._plan(execution, self._wave_of(batch), self.rows.targets[target_id], batch)
            except LeaseLost:
                self._lost(queues, execution)
                return None
        del queues[target_id]
        return None

    def _wave_of(self, batch: list[ServerLaunch]) -> WaveRun:
        launch = batch[0]
        return next(w for w in self.rows.waves[launch.execution_id] if w.pk == launch.wave_run_id)

    def _lost(self, queues: dict[object, list], execution: Execution) -> None:
        logger.warning("Lost the lease of execution %s mid-tick; another worker continues it.", execution.pk)
        self.rows.lost.add(execution.pk)
        for target_id in list(queues):
            queues[target_id] = [entry for entry in queues[target_id] if entry[0].pk != execution.pk]

    def _plan(self, execution: Execution, wave: WaveRun, target: Target, batch: list[ServerLaunch]) -> _Planned | None:
        """Renew the lease and record the intent of one batch (for a point-in-time execution,
        each server from its recovery snapshot at or before the point); None when nothing is
        to be sent."""
        if execution.point_in_time is not None:
            batch = self._choose_snapshots(execution, wave, target, batch)
            if not batch:
                return None
        # After the lookups (one DRS call per server, which may take a while), so the lease
        # still outlives the StartRecovery.
        self._ensure_lease(execution)
        job = self._record_intent(execution, wave, target, batch)
        if job is None:
            return None
        tags = {
            drs_constants.TAG_EXECUTION: str(execution.pk),
            drs_constants.TAG_WAVE: str(wave.index),
            drs_constants.TAG_LAUNCH_TOKEN: str(job.launch_token),
        }
        snapshot_ids = {
            launch.source_server_id: launch.recovery_snapshot_id for launch in batch if launch.recovery_snapshot_id
        }
        request = {
            "target": target,
            "source_server_ids": [launch.source_server_id for launch in batch],
            "is_drill": execution.is_drill,
            "tags": tags,
            "snapshot_ids": snapshot_ids,
        }
        return _Planned(execution, wave, target, batch, job, request)

    def _send(self, planned: list[_Planned]) -> None:
        """Send the round's StartRecovery calls at once and apply the answers
        in this thread. A crash (BaseException) leaves the other intents for a later tick to
        adopt by their launch token."""
        started = time.monotonic()
        answers = per_target({n: functools.partial(_start_recovery, item.request) for n, item in enumerate(planned)})
        self.last_round_seconds = time.monotonic() - started
        for n, item in enumerate(planned):
            outcome = answers[n]
            if item.execution.pk in self.rows.lost:
                # Another worker holds the execution now; still store a job DRS created (the
                # conditional UPDATE of adopt), so it need not look it up by its token.
                if outcome.error is None:
                    adopt(self.rows, item.job, outcome.value, how="started")
                continue
            try:
                self._apply(item, outcome)
            except LeaseLost:
                logger.warning(
                    "Lost the lease of execution %s mid-tick; another worker continues it.", item.execution.pk
                )
                self.rows.lost.add(item.execution.pk)

    def _apply(self, item: _Planned, outcome: Outcome[dict[str, Any]]) -> None:
        if outcome.error is not None:
            self._launch_refused(item.execution, item.wave, item.target, item.job, item.batch, outcome.error)
            return
        self.rows.call_answered(item.execution.pk, item.target.pk)
        self.jobs_started += 1
        adopt(self.rows, item.job, outcome.value, how="started")

    def _out_of_time(self) -> bool:
        # A burst of launches must not stretch one tick over the next poll: every other
        # execution waits for the tick to end. What does not fit starts in the next tick.
        return (
            bool(self.jobs_started)
            and self.deadline is not None
            and time.monotonic() + self.last_round_seconds > self.deadline
        )

    def _batches(
        self, execution: Execution, wave: WaveRun, target: Target, launches: list[ServerLaunch]
    ) -> Iterator[list[ServerLaunch]]:
        """The batches of one wave on one target, each taken when the round asks for it, so
        the quota room and the deadline are those of that moment; the servers held by another
        job wait for it, and what does not fit waits (phase QUEUED)."""
        view = self._view(execution, wave, target, launches)
        if view is None:
            return
        free = []
        for launch in launches:
            holder = view.busy.get(launch.source_server_id)
            if holder:
                self._hold(execution, wave, launch, holder)
            else:
                free.append(launch)
        launches = free
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
            yield batch

    def _view(
        self, execution: Execution, wave: WaveRun, target: Target, launches: list[ServerLaunch]
    ) -> TargetView | None:
        """The account's active jobs on `target`, read at most once per tick (None when DRS did
        not answer: the servers wait, or fail at once when the answer is final)."""
        if target.pk in self.rows.drs_views:
            view = self.rows.drs_views[target.pk]
        else:
            try:
                view = read_target(self.rows, target)
            except Exception as exc:
                self.rows.drs_views[target.pk] = view = None
                self.rows.drs_view_errors[target.pk] = exc
        if view is not None:
            self.rows.call_answered(execution.pk, target.pk)
            return view
        exc = self.rows.drs_view_errors[target.pk]
        self._not_launched(execution, wave, target, launches, exc, operation="DescribeJobs")
        return None

    def _not_launched(
        self,
        execution: Execution,
        wave: WaveRun,
        target: Target,
        launches: list[ServerLaunch],
        exc: Exception,
        *,
        operation: str,
    ) -> None:
        """What happens to servers whose launch a DRS error stopped before any job was made."""
        kind = drs_errors.classify(exc)
        cause = drs_errors.explain(exc, operation=operation)
        if kind == ErrorKind.FINAL:
            for launch in launches:
                self.rows.set_status(
                    launch, LaunchStatus.FAILED, phase=LaunchPhase.FAILED, error=f"Not launched: {cause}"
                )
            self.rows.event(
                execution.pk,
                EventKind.ERROR,
                f"{len(launches)} server(s) of wave '{wave.name}' not launched: {cause}",
                wave=wave,
                data={"operation": operation},
            )
            return
        if kind == ErrorKind.UNREACHABLE:
            self.rows.call_failed(execution.pk, target.pk, cause)
        for launch in launches:
            wanted = cause if kind in (ErrorKind.UNREACHABLE, ErrorKind.QUOTA) else launch.error
            if launch.phase != LaunchPhase.QUEUED or launch.error != wanted:
                launch.phase, launch.error = LaunchPhase.QUEUED, wanted
                self.rows.touch(launch)

    def _holder_execution(self, job_id: str) -> str:
        """How to name the drsorch execution that asked for DRS job `job_id` (a launch, or a
        clean-up's TERMINATE job, which DRS cannot tag): "" when drsorch did not start it."""
        if job_id not in self.job_holders:
            job = DrsJob.objects.filter(job_id=job_id).select_related("execution").first()
            self.job_holders[job_id] = (
                f" (the {'clean-up' if job.type == JobType.TERMINATE else 'launch'} of drsorch execution "
                f"{job.execution_id}, {job.execution.get_mode_display().lower()} of '{job.execution.plan_name}')"
                if job is not None
                else ""
            )
        return self.job_holders[job_id]

    def _hold(self, execution: Execution, wave: WaveRun, launch: ServerLaunch, holder: str) -> None:
        """`launch` waits for DRS job `holder` to end: DRS runs one active job per server. The
        message names the drsorch execution behind the job when there is one."""
        error = (
            f"Waiting for DRS job {holder}{self._holder_execution(holder)}, which holds this server; "
            "it is launched once that job ends."
            if holder != UNKNOWN_HOLDER
            else "Held by a DRS job not found among the account's recent jobs; tried again on the next poll."
        )
        if launch.phase == LaunchPhase.HELD and launch.error == error:
            return
        launch.phase, launch.error = LaunchPhase.HELD, error
        self.rows.touch(launch)
        self.rows.event(
            execution.pk,
            EventKind.ENGINE,
            f"{launch.hostname or launch.source_server_id}: {error}",
            wave=wave,
            source_server_id=launch.source_server_id,
            data={"held_by": holder},
        )

    def launch_batch(self, execution: Execution, wave: WaveRun, target: Target, batch: list[ServerLaunch]) -> None:
        """Renew the lease, record the intent, then call StartRecovery once for `batch`, in
        this thread (a conflict's remaining or split batch)."""
        item = self._plan(execution, wave, target, batch)
        if item is not None:
            self._apply(item, per_target({target.pk: functools.partial(_start_recovery, item.request)})[target.pk])

    def _choose_snapshots(
        self, execution: Execution, wave: WaveRun, target: Target, batch: list[ServerLaunch]
    ) -> list[ServerLaunch]:
        """Find, for each server of `batch` not looked up before, its latest recovery snapshot
        at or before the execution's point in time (one DescribeRecoverySnapshots per server,
        only in point-in-time executions), and keep its id on the launch at once, so a retry or
        a later batch does not ask again. A server without a snapshot that old fails: launching
        it from a newer one could bring back what the point in time is meant to avoid. Returns
        the servers to launch; those DRS did not answer for wait (or fail) as after any refusal."""
        point = execution.point_in_time
        stamp = point.strftime("%Y-%m-%dT%H:%M:%SZ")
        found, missing, unanswered, error = [], [], [], None
        for launch in batch:
            if launch.recovery_snapshot_id:
                continue
            if error is not None:
                unanswered.append(launch)
                continue
            try:
                snapshot = gateway.latest_recovery_snapshot(
                    target=target, source_server_id=launch.source_server_id, at_or_before=point
                )
            except Exception as exc:
                # The rest of the batch would meet the same error: it waits (or fails) with this one.
                error = exc
                unanswered.append(launch)
                continue
            if snapshot is None:
                missing.append(launch)
                continue
            launch.recovery_snapshot_id = snapshot["snapshotID"]
            found.append(launch)
            self.rows.event(
                execution.pk,
                EventKind.ENGINE,
                f"{launch.hostname or launch.source_server_id}: launching from recovery snapshot "
                f"{snapshot['snapshotID']} taken {snapshot.get('timestamp')}, the latest at or before "
                f"{stamp}.",
                wave=wave,
                source_server_id=launch.source_server_id,
                data={
                    "snapshot_id": snapshot["snapshotID"],
                    "snapshot_at": snapshot.get("timestamp"),
                    "point_in_time": stamp,
                },
            )
        # One statement for the batch; kept outside the tick's save so that even a tick that
        # crashes before saving does not ask DRS again for what it already found.
        update_rows(ServerLaunch, found, ["recovery_snapshot_id"])
        for launch in missing:
            self.rows.set_status(
                launch,
                LaunchStatus.FAILED,
                phase=LaunchPhase.FAILED,
                error=f"Not launched: DRS holds no recovery snapshot of this server taken at or "
                f"before the point in time {stamp}; it is not launched from a newer one.",
            )
        if missing:
            self.rows.event(
                execution.pk,
                EventKind.ERROR,
                f"{len(missing)} server(s) of wave '{wave.name}' not launched: no recovery snapshot at "
                f"or before {stamp}.",
                wave=wave,
                data={"source_server_ids": [launch.source_server_id for launch in missing]},
            )
        if error is not None:
            self._not_launched(execution, wave, target, unanswered, error, operation="DescribeRecoverySnapshots")
        return [launch for launch in batch if launch.recovery_snapshot_id]

    def _ensure_lease(self, execution: Execution) -> None:
        """Renew the lease before a StartRecovery unless it was renewed in the last 20 s: the
        call ends within MAX_START_RECOVERY_SECONDS, so such a lease still outlives it."""
        renewed = self.rows.lease_renewed_at.get(execution.pk)
        if renewed and time.monotonic() - renewed < LEASE_SECONDS - MAX_START_RECOVERY_SECONDS - 5:
            return
        if not renew_lease(execution, owner=self.rows.owner):
            raise LeaseLost(execution.pk)
        self.rows.lease_renewed_at[execution.pk] = time.monotonic()

    def _record_intent(
        self, execution: Execution, wave: WaveRun, target: Target, batch: list[ServerLaunch]
    ) -> DrsJob | None:
        """Store the job we are about to ask for and claim its servers, before any call."""
        with transaction.atomic():
            job = DrsJob.objects.create(
                execution=execution,
                wave_run=wave,
                target=target,
                type=JobType.LAUNCH,
                launch_token=uuid.uuid4(),
                state=JobState.INTENDED,
                is_drill=execution.is_drill,
                server_count=len(batch),
                requested_at=timezone.now(),
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

    def _launch_refused(
        self,
        execution: Execution,
        wave: WaveRun,
        target: Target,
        job: DrsJob,
        batch: list[ServerLaunch],
        exc: Exception,
    ) -> None:
        """Decide from StartRecovery's error whether DRS acted: adopt, drop, fail or keep the intent."""
        kind = drs_errors.classify(exc)
        cause = drs_errors.explain(exc, operation="StartRecovery")
        if kind == ErrorKind.CONFLICT:
            self._conflict(execution, wave, target, job, batch, exc)
        elif kind == ErrorKind.QUOTA:
            # DRS counts jobs we cannot see (another region's console, a job older than the
            # lookback): nothing more starts on this target this tick.
            self.rows.quota_use[target.pk]["jobs"] = MAX_ACTIVE_JOBS_PER_TARGET
            abandon(self.rows, job, f"{cause} Retrying on the next poll.")
            self._not_launched(execution, wave, target, batch, exc, operation="StartRecovery")
        elif kind == ErrorKind.FINAL:
            # Tags are never dropped to get past a TagResource denial or a tag the request
            # cannot carry: without its launch-token tag a job whose answer is lost (a crash)
            # could not be adopted, and its servers would be launched twice. The permission is
            # what to fix (docs/architecture.md, "Exactly once").
            abandon(self.rows, job, cause, fail_servers=True)
            self.rows.event(
                execution.pk,
                EventKind.ERROR,
                f"StartRecovery refused for good: {cause}",
                wave=wave,
                data={"error_code": drs_errors.error_code(exc), "action": drs_errors.denied_action(exc)},
            )
        elif drs_errors.unsent(exc):
            # Throttled, or the request never left (endpoint unreachable, no credentials):
            # DRS created nothing, so the servers simply wait; unreachability is counted
            # towards the bound after which they fail (jobs.give_up_unreachable).
            abandon(self.rows, job, f"{cause} Retrying on the next poll.")
            self._not_launched(execution, wave, target, batch, exc, operation="StartRecovery")
        else:
            # The call may or may not have reached DRS: keep the intent; the next tick looks the
            # job up by its launch token and adopts it, or drops the intent after the grace time.
            logger.warning("StartRecovery outcome unknown for intent %s: %s", job.launch_token, exc)
            self.rows.event(
                job.execution_id,
                EventKind.ENGINE,
                f"StartRecovery answer lost ({exc}); the job will be looked up by its launch token.",
                wave=self.rows.wave_of(job),
            )

    def _conflict(
        self,
        execution: Execution,
        wave: WaveRun,
        target: Target,
        job: DrsJob,
        batch: list[ServerLaunch],
        exc: Exception,
    ) -> None:
        """A server of `batch` is in an active DRS job, and DRS does not say which. Perhaps it
        is ours, from an answer we never saw: look the launch token up first. Otherwise find
        the held servers among the account's active jobs (read again now), let them wait for
        their job, and launch the rest of the batch in this tick; when no listed job holds any
        of them, split the batch in two and launch each half (each a new intent)."""
        try:
            view = read_target(self.rows, target)
            found = gateway.find_jobs_by_launch_token(
                target=target, since=job.requested_at, tokens={str(job.launch_token)}, jobs=view.jobs
            )
        except Exception as read_exc:
            # ConflictException proves DRS created nothing for this call: dropping is safe.
            abandon(self.rows, job, f"DRS refused: {drs_errors.error_message(exc)}. Retrying on the next poll.")
            self._not_launched(execution, wave, target, batch, read_exc, operation="DescribeJobs")
            return
        if str(job.launch_token) in found:
            adopt(self.rows, job, found[str(job.launch_token)], how="found after a conflict")
            return
        self._release(job, batch, f"DRS refused: {drs_errors.error_message(exc)}.")
        held = [launch for launch in batch if launch.source_server_id in view.busy]
        rest = [launch for launch in batch if launch.source_server_id not in view.busy]
        use = self.rows.quota_use[target.pk]
        if held:
            for launch in held:
                self._hold(execution, wave, launch, view.busy[launch.source_server_id])
            if rest:
                use["jobs"] += 1
                use["servers"] += len(rest)
                self.launch_batch(execution, wave, target, rest)
        elif len(batch) == 1:
            self._hold(execution, wave, batch[0], UNKNOWN_HOLDER)
        else:
            middle = len(batch) // 2
            for half in (batch[:middle], batch[middle:]):
                use["jobs"] += 1
                use["servers"] += len(half)
                self.launch_batch(execution, wave, target, half)

    def _release(self, job: DrsJob, batch: list[ServerLaunch], reason: str) -> None:
        """Drop an intent DRS refused and free its servers in the database at once, so that
        they can be claimed by a new intent in this very tick (a conflict's split batch)."""
        abandon(self.rows, job, f"{reason} The servers not held by another job are launched again now.")
        with transaction.atomic():
            DrsJob.objects.filter(pk=job.pk, state=JobState.INTENDED).update(state=JobState.ABANDONED, error=job.error)
            ServerLaunch.objects.filter(pk__in=[launch.pk for launch in batch], job=job).update(
                job=None, phase=LaunchPhase.QUEUED, error=""
            )
        self.rows.remember([job, *batch])
