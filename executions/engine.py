"""The execution engine: turns waves into DRS jobs and follows every server to its end.

One `tick()` is one pass: claim the executions that need work, poll their DRS jobs (one
DescribeJobs call per target for all of them), apply what DRS says, move waves and
executions along, start the jobs that are due, and save everything in bulk.

Safety rules, each explained where it is enforced:
- An execution is advanced by one process at a time: a tick *claims* it with a conditional
  UPDATE of its lease, so two workers (or a worker and `drill --wait`) never both act on it.
- A launch is recorded (DrsJob INTENDED, with a launch token) and its servers are claimed
  with a conditional UPDATE *before* StartRecovery is called, and the lease is renewed just
  before the call. A crash after the call leaves the intent; the next tick finds the job by
  its launch-token tag and adopts it. DRS's own rule (one active job per server) is the last
  guard: a ConflictException means "look again", never "launch again".
- Every decision is derived from the stored launch rows, so running a tick twice, or after a
  crash at any line, recomputes the same state instead of repeating actions.
"""

import logging
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.constants import OnConflict
from django.utils import timezone

from drsorch.drs import constants as drs_constants
from drsorch.drs import errors as drs_errors
from drsorch.drs import gateway
from drsorch.drs.constants import MAX_ACTIVE_JOBS_PER_TARGET, MAX_SERVERS_IN_ACTIVE_JOBS, MAX_SERVERS_PER_JOB
from drsorch.drs.times import parse_drs_time
from plans.models import Target

from .choices import (
    EXECUTION_ACTIVE,
    JOB_OPEN,
    WAVE_SATISFIES_DEPENDENTS,
    EventKind,
    ExecutionStatus,
    JobState,
    JobType,
    LaunchPhase,
    LaunchStatus,
    WaveStatus,
)
from .models import DrsJob, Execution, ExecutionEvent, ServerLaunch, WaveRun

logger = logging.getLogger(__name__)

LEASE_SECONDS = 60
# An intent not found in DRS this long after it was recorded never reached DRS: StartRecovery
# is made in a single attempt (no botocore retries) bounded by the connect and read timeouts
# (35 s), so a call made under a renewed lease has ended before the lease can pass to another.
INTENT_GRACE_SECONDS = LEASE_SECONDS
# The share of a poll interval a tick may spend starting DRS jobs (at least one a tick).
LAUNCH_SHARE_OF_POLL = 0.4
# A StartRecovery is one attempt bounded by connect (5 s) and read (30 s) timeouts.
MAX_START_RECOVERY_SECONDS = 35
LOG_REFRESH_SECONDS = 10
LOG_READS_PER_TARGET_PER_TICK = 2
ENGINE_ACTOR = "drsorch"
WAVES_ON_THE_MOVE = frozenset({WaveStatus.LAUNCHING, WaveStatus.WAITING})

PHASE_OF_LOG_EVENT = {
    "JOB_START": LaunchPhase.STARTING,
    "SNAPSHOT_START": LaunchPhase.SNAPSHOT,
    "SNAPSHOT_END": LaunchPhase.SNAPSHOT,
    "USING_PREVIOUS_SNAPSHOT": LaunchPhase.SNAPSHOT,
    "CONVERSION_START": LaunchPhase.CONVERSION,
    "CONVERSION_END": LaunchPhase.CONVERSION,
    "LAUNCH_START": LaunchPhase.LAUNCHING,
}
FAILURE_LOG_EVENTS = {"LAUNCH_FAILED", "SNAPSHOT_FAIL", "CONVERSION_FAIL", "USING_PREVIOUS_SNAPSHOT_FAILED"}

LAUNCH_FIELDS = ["status", "phase", "job", "recovery_instance_id", "launched_at", "post_launch_status", "error",
                 "attempts", "terminated_at"]
WAVE_FIELDS = ["status", "approved_at", "started_at", "deadline_at", "wait_until", "finished_at"]
JOB_FIELDS = ["state", "drs_status", "job_id", "drs_created_at", "drs_ended_at", "log_items_seen", "log_read_at",
              "error"]
EXECUTION_FIELDS = ["status", "started_at", "finished_at", "cleaned_up_at"]


# Host and pid repeat after a container restart; the token makes each process's identity new.
_PROCESS_TOKEN = uuid.uuid4().hex[:8]


def worker_identity():
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{_PROCESS_TOKEN}"


@dataclass
class TickResult:
    """What one tick did, for the poller loop and the benchmark."""

    claimed: int = 0
    remaining: int = 0
    jobs_started: int = 0
    drs_calls: int = 0


class LeaseLost(Exception):
    """Another process took the execution over; stop acting on it."""


def tick(*, execution_ids=None, owner=None):
    """Advance every execution that needs work (or only `execution_ids`) by one step."""
    owner = owner or worker_identity()
    calls_before = gateway.calls_made()
    claimed = claim_executions(execution_ids=execution_ids, owner=owner)
    result = TickResult(claimed=len(claimed))
    if claimed:
        try:
            state = TickState(claimed, owner=owner)
            state.run()
            result.jobs_started = state.jobs_started
        finally:
            release_executions(claimed, owner=owner)
    result.remaining = executions_needing_work(execution_ids=execution_ids).count()
    result.drs_calls = gateway.calls_made() - calls_before
    return result


def executions_needing_work(*, execution_ids=None):
    """Active executions, and ended ones whose DRS jobs (e.g. cleanup) are still open."""
    open_job_executions = DrsJob.objects.filter(state__in=JOB_OPEN).values("execution_id")
    queryset = Execution.objects.filter(Q(status__in=EXECUTION_ACTIVE) | Q(pk__in=open_job_executions))
    if execution_ids is not None:
        queryset = queryset.filter(pk__in=execution_ids)
    return queryset


def _lease_is_free(owner, now):
    return Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now) | Q(lease_owner=owner)


def claim_executions(*, execution_ids=None, owner):
    """Take the lease of every execution needing work that nobody else holds.

    The UPDATE ... WHERE lease is free is the claim: when two processes race, the database
    applies one UPDATE per row first and the other no longer matches the WHERE clause."""
    now = timezone.now()
    candidates = list(executions_needing_work(execution_ids=execution_ids).values_list("pk", flat=True))
    if not candidates:
        return []
    Execution.objects.filter(pk__in=candidates).filter(_lease_is_free(owner, now)).update(
        lease_owner=owner, lease_expires_at=now + timedelta(seconds=LEASE_SECONDS)
    )
    return list(Execution.objects.filter(pk__in=candidates, lease_owner=owner).order_by("created_at"))


def claim_execution(execution_id, *, owner):
    """Take one execution's lease whatever its status (human actions use it); True if taken."""
    now = timezone.now()
    return Execution.objects.filter(pk=execution_id).filter(_lease_is_free(owner, now)).update(
        lease_owner=owner, lease_expires_at=now + timedelta(seconds=LEASE_SECONDS)
    ) == 1


def release_executions(executions, *, owner):
    Execution.objects.filter(pk__in=[e.pk for e in executions], lease_owner=owner).update(
        lease_owner="", lease_expires_at=None
    )


def renew_lease(execution, *, owner):
    """Extend our lease, or report that it was lost. Called right before StartRecovery."""
    now = timezone.now()
    return Execution.objects.filter(pk=execution.pk, lease_owner=owner, lease_expires_at__gt=now).update(
        lease_expires_at=now + timedelta(seconds=LEASE_SECONDS)
    ) == 1


def update_rows(model, objects, fields):
    """UPDATE `fields` of `objects` with one prepared statement run for every row.

    Django's bulk_update builds a CASE expression per row and field, which costs more than
    the rest of a tick at a few thousand servers; executemany reuses one statement and is
    still a single round trip (one query in Django's log), whatever the number of rows."""
    if not objects or not fields:
        return
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name) for name in fields]
    pk = model._meta.pk
    sql = "UPDATE {} SET {} WHERE {} = %s".format(
        quote(model._meta.db_table), ", ".join(f"{quote(f.column)} = %s" for f in columns), quote(pk.column)
    )
    rows = [
        [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in columns]
        + [pk.get_db_prep_value(obj.pk, connection)]
        for obj in objects
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def insert_rows_ignoring_duplicates(model, objects):
    """INSERT `objects` with one prepared statement, skipping rows that break a unique
    constraint (events already copied from a DRS job log). bulk_create would split the rows
    into batches under SQLite's parameter limit: a number of queries growing with servers."""
    if not objects:
        return
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    sql = "{} {} ({}) VALUES ({}){}".format(
        connection.ops.insert_statement(on_conflict=OnConflict.IGNORE),
        quote(model._meta.db_table),
        ", ".join(quote(f.column) for f in fields),
        ", ".join(["%s"] * len(fields)),
        connection.ops.on_conflict_suffix_sql(fields, OnConflict.IGNORE, [], []),
    )
    rows = [[f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields] for obj in objects]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _execution_id(obj):
    return obj.pk if isinstance(obj, Execution) else obj.execution_id


def _values(obj, fields):
    return {name: getattr(obj, f"{name}_id" if name == "job" else name) for name in fields}


class TickState:
    """The rows of the claimed executions, loaded once, changed in memory, saved in bulk."""

    def __init__(self, executions, *, owner):
        self.owner = owner
        self.now = timezone.now()
        # A burst of launches must not stretch one tick over the next poll: every other
        # execution waits for the tick to end. What does not fit starts in the next tick.
        self.launch_deadline = time.monotonic() + LAUNCH_SHARE_OF_POLL * settings.DRSORCH_POLL_SECONDS
        self.executions = {e.pk: e for e in executions}
        ids = list(self.executions)
        self.waves = defaultdict(list)
        for wave in WaveRun.objects.filter(execution_id__in=ids).order_by("index"):
            self.waves[wave.execution_id].append(wave)
        self.jobs = {job.pk: job for job in DrsJob.objects.filter(execution_id__in=ids, state__in=JOB_OPEN)}
        # Only waves on the move need their servers; waves that start during the tick are
        # loaded before launching (load_started_waves), ended waves only for open jobs.
        self.loaded_waves = {w.pk for group in self.waves.values() for w in group if w.status in WAVES_ON_THE_MOVE}
        self.launches = defaultdict(list)
        self.launches_by_job = defaultdict(dict)
        self.original = {}
        self._add_launches(ServerLaunch.objects.filter(execution_id__in=ids).filter(
            Q(wave_run_id__in=list(self.loaded_waves)) | Q(job_id__in=list(self.jobs))
            | Q(phase=LaunchPhase.TERMINATING)))
        self.targets = Target.objects.in_bulk()  # a handful of rows
        self.budget = self._load_budget()
        self._remember([w for group in self.waves.values() for w in group], WAVE_FIELDS)
        self._remember(self.jobs.values(), JOB_FIELDS)
        self._remember(self.executions.values(), EXECUTION_FIELDS)
        self.dirty = {"launch": {}, "wave": {}, "job": {}, "execution": {}}
        self.events = []
        self.new_intents = set()
        self.final_log_due = set()
        # claim_executions just set every lease: count that as a renewal.
        self.lease_renewed_at = dict.fromkeys(self.executions, time.monotonic())
        self.jobs_started = 0
        self.lost = set()

    # --- bookkeeping ----------------------------------------------------------------------

    def touch(self, kind, obj):
        self.dirty[kind][obj.pk] = obj

    def event(self, execution_id, kind, message, *, wave=None, source_server_id="", data=None, dedupe_key=None,
              at=None):
        self.events.append(ExecutionEvent(
            execution_id=execution_id, kind=kind, message=message, actor_name=ENGINE_ACTOR,
            wave_index=wave.index if wave else None, source_server_id=source_server_id, data=data or {},
            dedupe_key=dedupe_key, created_at=at or timezone.now(),
        ))

    def set_status(self, kind, obj, status, message=None, **fields):
        """Move `obj` to `status` through its declared transitions, and log it."""
        if obj.status == status:
            return False
        obj.check_transition(status)
        old = obj.status
        obj.status = status
        for name, value in fields.items():
            setattr(obj, name, value)
        self.touch(kind, obj)
        execution_id = obj.pk if kind == "execution" else obj.execution_id
        wave = obj if kind == "wave" else None
        if kind == "launch":
            wave = next((w for w in self.waves[execution_id] if w.pk == obj.wave_run_id), None)
        self.event(
            execution_id, EventKind.STATUS,
            message or f"{self._label(kind, obj)}: {old} → {status}",
            wave=wave, source_server_id=obj.source_server_id if kind == "launch" else "",
            data={"from": old, "to": status},
        )
        return True

    @staticmethod
    def _label(kind, obj):
        if kind == "execution":
            return "Execution"
        if kind == "wave":
            return f"Wave {obj.index} '{obj.name}'"
        return f"Server {obj.hostname or obj.source_server_id}"

    def _load_budget(self):
        """Jobs and servers in active DRS jobs per target, over every execution."""
        rows = (
            DrsJob.objects.filter(state__in=JOB_OPEN, type=JobType.LAUNCH)
            .exclude(drs_status="COMPLETED")
            .values("target_id")
            .annotate(jobs=Count("pk"), servers=Sum("server_count"))
        )
        budget = defaultdict(lambda: {"jobs": 0, "servers": 0})
        for row in rows:
            budget[row["target_id"]] = {"jobs": row["jobs"], "servers": row["servers"] or 0}
        return budget

    # --- the pass -------------------------------------------------------------------------

    def run(self):
        self.poll_jobs()
        self.step_executions()
        # Logs last: no decision waits on them, so the next wave's StartRecovery does not either.
        self.read_all_logs()
        self.save()

    def step_executions(self):
        moving = [execution for execution in self.executions.values() if self.step_waves(execution)]
        self.load_started_waves()
        for execution in moving:
            try:
                self.submit_launches(execution)
                self.step_execution_status(execution)
            except LeaseLost:
                logger.warning("Lost the lease of execution %s mid-tick; another worker continues it.", execution.pk)
                self.lost.add(execution.pk)

    def read_all_logs(self):
        by_target = defaultdict(list)
        for job in self.jobs.values():
            by_target[job.target_id].append(job)
        for target_id, jobs in by_target.items():
            try:
                self.read_logs(self.targets[target_id], jobs)
            except Exception as exc:
                if not drs_errors.is_transient(exc):
                    raise
                logger.info("DRS did not answer a log read for target %s: %s", self.targets[target_id].name, exc)

    def save(self):
        """Write the tick's changes, but only for executions whose lease we still hold: a tick
        that ran past its lease must not overwrite the worker that took over."""
        with transaction.atomic():
            held = self._renew_leases()
            for model, objects, fields in (
                (ServerLaunch, self.dirty["launch"], LAUNCH_FIELDS),
                (WaveRun, self.dirty["wave"], WAVE_FIELDS),
                (DrsJob, self.dirty["job"], JOB_FIELDS),
                (Execution, self.dirty["execution"], EXECUTION_FIELDS),
            ):
                kept = [obj for obj in objects.values() if _execution_id(obj) in held]
                changed, names = self._changes(kept, fields)
                update_rows(model, changed, names)
            insert_rows_ignoring_duplicates(ExecutionEvent, [e for e in self.events if e.execution_id in held])
        for execution_id in set(self.executions) - held:
            logger.warning("Lease of execution %s expired during the tick; its changes were dropped.", execution_id)

    def _renew_leases(self):
        # Inside the save transaction the UPDATE holds the rows (PostgreSQL row locks, SQLite's
        # write lock) until commit, so no other worker can claim them between check and write.
        now = timezone.now()
        mine = Execution.objects.filter(pk__in=list(self.executions), lease_owner=self.owner,
                                        lease_expires_at__gt=now).exclude(pk__in=self.lost)
        mine.update(lease_expires_at=now + timedelta(seconds=LEASE_SECONDS))
        return set(Execution.objects.filter(pk__in=list(self.executions), lease_owner=self.owner,
                                            lease_expires_at__gt=now).exclude(pk__in=self.lost)
                   .values_list("pk", flat=True))

    def _add_launches(self, launches):
        launches = list(launches)
        for launch in launches:
            self.launches[launch.execution_id].append(launch)
            if launch.job_id:
                self.launches_by_job[launch.job_id][launch.source_server_id] = launch
        self._remember(launches, LAUNCH_FIELDS)

    def load_started_waves(self):
        """Load, in one query, the servers of every wave that started launching this tick."""
        started = [w.pk for group in self.waves.values() for w in group
                   if w.status in WAVES_ON_THE_MOVE and w.pk not in self.loaded_waves]
        if not started:
            return
        self.loaded_waves.update(started)
        loaded = {launch.pk for group in self.launches.values() for launch in group}
        self._add_launches(launch for launch in ServerLaunch.objects.filter(wave_run_id__in=started)
                           if launch.pk not in loaded)

    def _remember(self, objects, fields):
        for obj in objects:
            self.original[(type(obj), obj.pk)] = _values(obj, fields)

    def _changes(self, objects, fields):
        """The objects that really changed and the union of their changed fields: Django's
        bulk_update builds a CASE per object and field, the costliest part of a tick."""
        changed, names = [], set()
        for obj in objects:
            before = self.original.get((type(obj), obj.pk))
            now = _values(obj, fields)
            diff = set(fields) if before is None else {f for f in fields if before[f] != now[f]}
            if diff:
                changed.append(obj)
                names |= diff
        return changed, [f for f in fields if f in names]

    # --- polling DRS ----------------------------------------------------------------------

    def poll_jobs(self, jobs=None):
        """One DescribeJobs per target for the open jobs; adopt or drop unconfirmed intents;
        read a few job logs for the phase users see."""
        by_target = defaultdict(list)
        for job in (jobs if jobs is not None else self.jobs.values()):
            by_target[job.target_id].append(job)
        for target_id, target_jobs in by_target.items():
            target = self.targets[target_id]
            try:
                self._poll_target(target, target_jobs)
            except Exception as exc:
                if not drs_errors.is_transient(exc):
                    raise
                # Throttling and 5xx never fail an execution: the next tick asks again.
                logger.info("DRS did not answer for target %s this tick: %s", target.name, exc)

    def _poll_target(self, target, jobs):
        active = [j for j in jobs if j.state == JobState.ACTIVE]
        if active:
            found = gateway.describe_jobs(target=target, job_ids=[j.job_id for j in active])
            for job in active:
                if job.job_id in found:
                    self.apply_job(job, found[job.job_id])
        stale_intents = [j for j in jobs if j.state == JobState.INTENDED and j.pk not in self.new_intents]
        if stale_intents:
            self.resolve_intents(target, stale_intents)

    def resolve_intents(self, target, intents):
        """Adopt the jobs of intents whose StartRecovery reached DRS; drop the others."""
        tokens = {str(job.launch_token) for job in intents}
        since = min(job.requested_at for job in intents)
        found = gateway.find_jobs_by_launch_token(target=target, since=since, tokens=tokens)
        for job in intents:
            data = found.get(str(job.launch_token))
            if data:
                self.adopt(job, data, how="found by its launch token")
            elif (self.now - job.requested_at).total_seconds() > INTENT_GRACE_SECONDS:
                self.abandon(job, "StartRecovery never reached DRS; the servers will be launched again.")

    def adopt(self, job, data, *, how):
        job.job_id = data["jobID"]
        job.state = JobState.ACTIVE
        job.drs_status = data.get("status", "")
        job.drs_created_at = parse_drs_time(data.get("creationDateTime"))
        self.touch("job", job)
        # Written at once: the job id is the one fact that must survive a crash of this tick.
        DrsJob.objects.filter(pk=job.pk, state=JobState.INTENDED).update(
            job_id=job.job_id, state=JobState.ACTIVE, drs_status=job.drs_status, drs_created_at=job.drs_created_at
        )
        wave = self._wave_of(job)
        self.event(job.execution_id, EventKind.ENGINE,
                   f"DRS job {job.job_id} ({how}) launches {job.server_count} server(s) of wave '{wave.name}'.",
                   wave=wave, data={"job_id": job.job_id, "launch_token": str(job.launch_token)})
        self.apply_job(job, data)

    def abandon(self, job, reason, *, fail_servers=False):
        job.state = JobState.ABANDONED
        job.error = reason
        self.touch("job", job)
        for launch in self.launches_by_job.pop(job.pk, {}).values():
            launch.job = None
            if fail_servers:
                self.set_status("launch", launch, LaunchStatus.FAILED, phase=LaunchPhase.FAILED, error=reason)
            else:
                launch.phase = LaunchPhase.QUEUED
                launch.error = ""
                self.touch("launch", launch)
        wave = self._wave_of(job)
        self.event(job.execution_id, EventKind.ENGINE, f"Launch of {job.server_count} server(s) not done: {reason}",
                   wave=wave, data={"launch_token": str(job.launch_token)})

    def _wave_of(self, job):
        return next((w for w in self.waves[job.execution_id] if w.pk == job.wave_run_id), None)

    def apply_job(self, job, data):
        """Copy what DRS says of a job and its servers onto our rows."""
        if job.drs_status != data.get("status", job.drs_status):
            if data["status"] == "COMPLETED" and job.type == JobType.LAUNCH and job.state == JobState.ACTIVE:
                # Its servers leave DRS's active-job quota now: the next wave may use the room
                # in this very tick rather than the next.
                self.budget[job.target_id]["jobs"] -= 1
                self.budget[job.target_id]["servers"] -= job.server_count
            job.drs_status = data["status"]
            self.touch("job", job)
        execution = self.executions[job.execution_id]
        if job.type == JobType.TERMINATE:
            if data.get("status") == "COMPLETED":
                self._finish_terminate_job(job, data)
            return
        launches = self.launches_by_job.get(job.pk, {})
        for participant in data.get("participatingServers", []):
            launch = launches.get(participant.get("sourceServerID"))
            if launch:
                self.apply_participant(execution, launch, participant)
        if data.get("status") == "COMPLETED":
            for launch in launches.values():
                if launch.status not in (LaunchStatus.LAUNCHED, LaunchStatus.FAILED, LaunchStatus.TERMINATED):
                    self.set_status("launch", launch, LaunchStatus.FAILED, phase=LaunchPhase.FAILED,
                                    error=launch.error or f"DRS completed job {job.job_id} without launching it.")
            if all(self.launch_settled(execution, launch) for launch in launches.values()):
                # Done for the state machine; the job closes once its final log is read
                # (read_logs), so its events are complete without costing this tick a call.
                job.drs_ended_at = job.drs_ended_at or parse_drs_time(data.get("endDateTime")) or self.now
                self.final_log_due.add(job.pk)
                self.touch("job", job)

    def apply_participant(self, execution, launch, participant):
        status = participant.get("launchStatus")
        instance_id = participant.get("recoveryInstanceID")
        if instance_id and launch.recovery_instance_id != instance_id:
            launch.recovery_instance_id = instance_id
            self.touch("launch", launch)
        if status in (LaunchStatus.PENDING, LaunchStatus.IN_PROGRESS) and launch.status == LaunchStatus.NOT_STARTED:
            self.set_status("launch", launch, LaunchStatus(status))
        elif status == LaunchStatus.IN_PROGRESS and launch.status == LaunchStatus.PENDING:
            self.set_status("launch", launch, LaunchStatus.IN_PROGRESS)
        elif status == LaunchStatus.LAUNCHED:
            if launch.status != LaunchStatus.LAUNCHED:
                self.set_status("launch", launch, LaunchStatus.LAUNCHED, launched_at=self.now,
                                phase=LaunchPhase.READY, error="")
            self._apply_post_launch(execution, launch, participant)
        elif status == LaunchStatus.FAILED and launch.status != LaunchStatus.FAILED:
            self.set_status("launch", launch, LaunchStatus.FAILED, phase=LaunchPhase.FAILED,
                            error=launch.error or "DRS reported the launch as FAILED.")

    def _apply_post_launch(self, execution, launch, participant):
        runs = (participant.get("launchActionsStatus") or {}).get("runs") or []
        statuses = {run.get("status") for run in runs}
        if not runs:
            state = ""
        elif "IN_PROGRESS" in statuses:
            state = "IN_PROGRESS"
        elif "FAILED" in statuses:
            state = "FAILED"
        else:
            state = "SUCCEEDED"
        if state == launch.post_launch_status:
            return
        launch.post_launch_status = state
        if not execution.is_drill:
            if state == "IN_PROGRESS":
                launch.phase = LaunchPhase.POST_LAUNCH
            elif state == "FAILED":
                reasons = "; ".join(r.get("failureReason", "") for r in runs if r.get("status") == "FAILED")
                launch.phase = LaunchPhase.FAILED
                launch.error = f"Post-launch actions failed: {reasons or 'no reason given'}"
            else:
                launch.phase = LaunchPhase.READY
        self.touch("launch", launch)

    def _finish_terminate_job(self, job, data):
        terminated = {p.get("sourceServerID") for p in data.get("participatingServers", [])}
        for launch in self.launches[job.execution_id]:
            if launch.phase == LaunchPhase.TERMINATING and launch.target_id == job.target_id and (
                not terminated or launch.source_server_id in terminated
            ):
                self.set_status("launch", launch, LaunchStatus.TERMINATED, phase=LaunchPhase.TERMINATED,
                                terminated_at=self.now)
        job.state = JobState.COMPLETED
        job.drs_ended_at = parse_drs_time(data.get("endDateTime")) or self.now
        self.touch("job", job)
        execution = self.executions[job.execution_id]
        still_open = [j for j in self.jobs.values()
                      if j.execution_id == execution.pk and j.type == JobType.TERMINATE and j.state in JOB_OPEN]
        if not still_open:
            execution.cleaned_up_at = self.now
            self.touch("execution", execution)
            self.event(execution.pk, EventKind.STATUS,
                       "Clean-up finished: the drill's recovery instances are terminated.")

    def read_logs(self, target, jobs):
        """Read a few job logs per target and tick: first those of finished jobs (their last
        events, then the job closes), then the active jobs read longest ago (DRS shows the
        snapshot/conversion/launch phase only in the log). Nothing waits on a log, so the
        cap keeps a tick short when many jobs finish at once."""
        readable = [j for j in jobs if j.job_id and j.type == JobType.LAUNCH and j.state == JobState.ACTIVE]
        final = [j for j in readable if j.pk in self.final_log_due]
        stale = sorted(
            (j for j in readable if j.pk not in self.final_log_due and (
                j.log_read_at is None or (self.now - j.log_read_at).total_seconds() >= LOG_REFRESH_SECONDS)),
            key=lambda j: j.log_read_at or datetime.min.replace(tzinfo=self.now.tzinfo),
        )
        for job in (final + stale)[:LOG_READS_PER_TARGET_PER_TICK]:
            self.apply_log(job, gateway.job_log_items(target=target, job_id=job.job_id))
            if job.pk in self.final_log_due:
                job.state = JobState.COMPLETED

    def apply_log(self, job, items):
        launches = self.launches_by_job.get(job.pk, {})
        wave = self._wave_of(job)
        for position, item in enumerate(items):
            name = item.get("event", "")
            server_id = (item.get("eventData") or {}).get("sourceServerID", "")
            launch = launches.get(server_id)
            targets = [launch] if launch else (list(launches.values()) if not server_id else [])
            for each in targets:
                if name in FAILURE_LOG_EVENTS and each.status != LaunchStatus.LAUNCHED:
                    # The log holds the reason DRS gives nowhere else; it may arrive after the
                    # job already reported the server FAILED.
                    raw = (item.get("eventData") or {}).get("rawError") or name
                    each.error = f"{name}: {raw}"
                    self.touch("launch", each)
                elif (name in PHASE_OF_LOG_EVENT and each.phase != PHASE_OF_LOG_EVENT[name]
                      and each.status not in (LaunchStatus.LAUNCHED, LaunchStatus.FAILED, LaunchStatus.TERMINATED)):
                    each.phase = PHASE_OF_LOG_EVENT[name]
                    self.touch("launch", each)
            if position >= job.log_items_seen:
                who = (launch.hostname or server_id) if launch else server_id
                self.event(
                    job.execution_id, EventKind.DRS, f"{job.job_id}: {name}" + (f" ({who})" if who else ""),
                    wave=wave, source_server_id=server_id, data=item.get("eventData") or {},
                    dedupe_key=f"{job.job_id}:{position}", at=parse_drs_time(item.get("logDateTime")),
                )
        job.log_items_seen = max(job.log_items_seen, len(items))
        job.log_read_at = self.now
        self.touch("job", job)

    # --- the state machine ----------------------------------------------------------------

    def launch_settled(self, execution, launch):
        """Done or failed for good: LAUNCHED (a drill), LAUNCHED with post-launch actions
        finished (a recovery), or FAILED."""
        if launch.status in (LaunchStatus.FAILED, LaunchStatus.TERMINATED):
            return True
        if launch.status != LaunchStatus.LAUNCHED:
            return False
        if execution.is_drill:
            return True
        if launch.post_launch_status in ("SUCCEEDED", "FAILED"):
            return True
        job = self.jobs.get(launch.job_id)
        return launch.post_launch_status == "" and (job is None or job.drs_status == "COMPLETED")

    def launch_failed(self, execution, launch):
        return launch.status == LaunchStatus.FAILED or (
            not execution.is_drill and launch.post_launch_status == "FAILED"
        )

    def step_waves(self, execution):
        """Move the execution's waves along; False for an ended execution (only its open
        jobs are followed)."""
        if execution.status == ExecutionStatus.PENDING:
            self.set_status("execution", execution, ExecutionStatus.RUNNING, "Execution started.",
                            started_at=execution.started_at or self.now)
        if execution.is_terminal:
            return False
        waves = self.waves[execution.pk]
        # A wave that ends can release its dependents in the same tick.
        for _ in range(len(waves) + 1):
            changed = [self.step_wave(execution, wave) for wave in waves]  # step every wave, no short-circuit
            if not any(changed):
                break
        return True

    def step_wave(self, execution, wave):
        cancelling = execution.status == ExecutionStatus.CANCELLING
        by_index = {w.index: w for w in self.waves[execution.pk]}
        if wave.status == WaveStatus.PENDING:
            if cancelling:
                return self.set_status("wave", wave, WaveStatus.CANCELLED, finished_at=self.now)
            deps = [by_index[i] for i in wave.depends_on if i in by_index]
            blocked = [d for d in deps if d.is_terminal and d.status not in WAVE_SATISFIES_DEPENDENTS]
            if blocked:
                return self.set_status(
                    "wave", wave, WaveStatus.SKIPPED,
                    f"Wave {wave.index} '{wave.name}' skipped: wave '{blocked[0].name}' ended {blocked[0].status}.",
                    finished_at=self.now)
            if all(d.status in WAVE_SATISFIES_DEPENDENTS for d in deps):
                if wave.approval_required and not wave.approved_at:
                    if not execution.auto_approve:
                        return self.set_status("wave", wave, WaveStatus.WAITING_APPROVAL,
                                               f"Wave {wave.index} '{wave.name}' waits for approval.")
                    wave.approved_at = self.now
                    self.event(execution.pk, EventKind.ACTION,
                               f"Gate of wave '{wave.name}' approved automatically (auto-approve).", wave=wave)
                return self.start_wave(wave)
            return False
        if wave.status == WaveStatus.WAITING_APPROVAL:
            if cancelling:
                return self.set_status("wave", wave, WaveStatus.CANCELLED, finished_at=self.now)
            return False
        if wave.status == WaveStatus.LAUNCHING:
            return self.step_launching_wave(execution, wave, cancelling)
        if wave.status == WaveStatus.WAITING and (cancelling or (wave.wait_until and self.now >= wave.wait_until)):
            return self.set_status("wave", wave, self.wave_outcome(execution, wave), finished_at=self.now)
        return False

    def start_wave(self, wave):
        return self.set_status(
            "wave", wave, WaveStatus.LAUNCHING, f"Wave {wave.index} '{wave.name}' is launching.",
            started_at=wave.started_at or self.now,
            deadline_at=self.now + timedelta(minutes=wave.timeout_minutes),
        )

    def wave_launches(self, execution, wave):
        return [launch for launch in self.launches[execution.pk] if launch.wave_run_id == wave.pk]

    def wave_outcome(self, execution, wave):
        failed = [launch for launch in self.wave_launches(execution, wave) if self.launch_failed(execution, launch)]
        if any(launch.critical for launch in failed):
            return WaveStatus.FAILED
        return WaveStatus.PARTIAL if failed else WaveStatus.SUCCEEDED

    def step_launching_wave(self, execution, wave, cancelling):
        launches = self.wave_launches(execution, wave)
        if launches and all(self.launch_settled(execution, launch) for launch in launches):
            outcome = self.wave_outcome(execution, wave)
            if outcome != WaveStatus.FAILED and wave.wait_after_minutes and not cancelling:
                return self.set_status(
                    "wave", wave, WaveStatus.WAITING,
                    f"Wave {wave.index} '{wave.name}' is done; waiting {wave.wait_after_minutes} min before "
                    "its dependents.", wait_until=self.now + timedelta(minutes=wave.wait_after_minutes))
            return self.set_status("wave", wave, outcome, finished_at=self.now)
        if cancelling and not any(launch.job_id for launch in launches if not launch.is_terminal):
            return self.set_status("wave", wave, WaveStatus.CANCELLED, finished_at=self.now)
        if wave.deadline_at and self.now >= wave.deadline_at:
            return self.time_out_wave(execution, wave, launches)
        return False

    def time_out_wave(self, execution, wave, launches):
        """Read DRS once more for the truth before declaring the wave TIMED_OUT."""
        open_jobs = [self.jobs[launch.job_id] for launch in launches
                     if launch.job_id in self.jobs and self.jobs[launch.job_id].state in JOB_OPEN]
        if open_jobs:
            self.poll_jobs(list({job.pk: job for job in open_jobs}.values()))
        if all(self.launch_settled(execution, launch) for launch in launches):
            return self.set_status("wave", wave, self.wave_outcome(execution, wave), finished_at=self.now)
        for launch in launches:
            if not self.launch_settled(execution, launch):
                phase = launch.get_phase_display() if launch.phase else "not started"
                launch.error = f"Timed out after {wave.timeout_minutes} min ({phase})."
                self.touch("launch", launch)
        return self.set_status("wave", wave, WaveStatus.TIMED_OUT,
                               f"Wave {wave.index} '{wave.name}' timed out after {wave.timeout_minutes} min.",
                               finished_at=self.now)

    def step_execution_status(self, execution):
        waves = self.waves[execution.pk]
        if not all(wave.is_terminal for wave in waves):
            if execution.status == ExecutionStatus.CANCELLING:
                return
            waiting = any(w.status == WaveStatus.WAITING_APPROVAL for w in waves)
            moving = any(w.status in (WaveStatus.LAUNCHING, WaveStatus.WAITING) for w in waves)
            wanted = ExecutionStatus.WAITING_APPROVAL if waiting and not moving else ExecutionStatus.RUNNING
            self.set_status("execution", execution, wanted)
            return
        statuses = {wave.status for wave in waves}
        if execution.status == ExecutionStatus.CANCELLING:
            final = ExecutionStatus.CANCELLED
        elif WaveStatus.TIMED_OUT in statuses:
            final = ExecutionStatus.TIMED_OUT
        elif WaveStatus.FAILED in statuses:
            final = ExecutionStatus.FAILED
        elif statuses & {WaveStatus.PARTIAL, WaveStatus.SKIPPED}:
            final = ExecutionStatus.PARTIAL
        else:
            final = ExecutionStatus.SUCCEEDED
        elapsed = (self.now - (execution.started_at or self.now)).total_seconds()
        verdict = "met" if elapsed <= execution.rto_target_minutes * 60 else "missed"
        self.set_status(
            "execution", execution, final,
            f"Execution ended {final} after {elapsed / 60:.1f} min; RTO target of "
            f"{execution.rto_target_minutes} min {verdict}.",
            finished_at=self.now,
        )

    # --- launching ------------------------------------------------------------------------

    def submit_launches(self, execution):
        """Start DRS jobs for the servers of launching waves, in jobs of at most 100 servers,
        while the target's budget of 20 active jobs and 500 servers in active jobs allows."""
        if execution.status == ExecutionStatus.CANCELLING:
            return
        for wave in self.waves[execution.pk]:
            if wave.status != WaveStatus.LAUNCHING:
                continue
            waiting = defaultdict(list)
            for launch in self.wave_launches(execution, wave):
                if launch.status == LaunchStatus.NOT_STARTED and launch.job_id is None:
                    waiting[launch.target_id].append(launch)
            for target_id, launches in waiting.items():
                self._submit_for_target(execution, wave, self.targets[target_id], launches)

    def _submit_for_target(self, execution, wave, target, launches):
        budget = self.budget[target.pk]
        while launches:
            room = min(MAX_SERVERS_PER_JOB, MAX_SERVERS_IN_ACTIVE_JOBS - budget["servers"])
            out_of_time = self.jobs_started and time.monotonic() > self.launch_deadline
            if budget["jobs"] >= MAX_ACTIVE_JOBS_PER_TARGET or room <= 0 or out_of_time:
                for launch in launches:
                    if launch.phase != LaunchPhase.QUEUED:
                        launch.phase = LaunchPhase.QUEUED
                        self.touch("launch", launch)
                return
            batch, launches = launches[:room], launches[room:]
            budget["jobs"] += 1
            budget["servers"] += len(batch)
            self.launch_batch(execution, wave, target, batch)

    def launch_batch(self, execution, wave, target, batch):
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
        self.adopt(job, data, how="started")

    def _ensure_lease(self, execution):
        """Renew the lease before a StartRecovery unless it was renewed in the last 20 s: the
        call ends within MAX_START_RECOVERY_SECONDS, so such a lease still outlives it."""
        renewed = self.lease_renewed_at.get(execution.pk)
        if renewed and time.monotonic() - renewed < LEASE_SECONDS - MAX_START_RECOVERY_SECONDS - 5:
            return
        if not renew_lease(execution, owner=self.owner):
            raise LeaseLost(execution.pk)
        self.lease_renewed_at[execution.pk] = time.monotonic()

    def _record_intent(self, execution, wave, target, batch):
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
        self.jobs[job.pk] = job
        self.new_intents.add(job.pk)
        for launch in batch:
            launch.job = job
            launch.phase = LaunchPhase.STARTING
            launch.attempts += 1
            launch.error = ""
            self.launches_by_job[job.pk][launch.source_server_id] = launch
        # The UPDATE above wrote these rows: later changes are diffed from what it wrote.
        self._remember(batch, LAUNCH_FIELDS)
        return job

    def _launch_refused(self, job, target, exc):
        message = getattr(exc, "response", {}).get("Error", {}).get("Message") or str(exc)
        if drs_errors.is_conflict(exc):
            # A server is in an active job: maybe ours, from an answer we never saw. Look first.
            found = gateway.find_jobs_by_launch_token(target=target, since=job.requested_at,
                                                  tokens={str(job.launch_token)})
            if str(job.launch_token) in found:
                self.adopt(job, found[str(job.launch_token)], how="found after a conflict")
            else:
                self.abandon(job, f"DRS refused: {message}. The servers are retried on the next poll.")
        elif drs_errors.is_rejected(exc):
            self.abandon(job, f"DRS refused for now ({drs_errors.error_code(exc)}): {message}. "
                              "Retrying on the next poll.")
        elif drs_errors.is_permanent(exc):
            self.abandon(job, f"DRS cannot launch these servers: {message}", fail_servers=True)
        else:
            # The call may or may not have reached DRS: keep the intent; the next tick looks the
            # job up by its launch token and adopts it, or drops the intent after the grace time.
            logger.warning("StartRecovery outcome unknown for intent %s: %s", job.launch_token, exc)
            self.event(job.execution_id, EventKind.ENGINE,
                       f"StartRecovery answer lost ({exc}); the job will be looked up by its launch token.",
                       wave=self._wave_of(job))
