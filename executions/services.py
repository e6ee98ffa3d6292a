"""The only code that changes executions. Views, the API, admin actions, tasks and commands
call these functions; the engine (executions/engine/) does the DRS work they set in motion.

Every status change of an execution or a wave made here is announced through
`engine.hooks.announce_status_changes`, as the engine's own are, so a receiver of
`executions.signals` sees them all."""

import logging
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_q.tasks import async_task

from drsorch.drs.constants import JobStatus
from drsorch.roles import ACTION_PERMISSIONS
from plans.choices import ActionWhen
from plans.models import RecoveryPlan
from plans.services import plan_wave_specs

from . import engine
from .choices import (
    ACTION_RETRYABLE,
    EXECUTION_ACTIVE,
    EXECUTION_RETRYABLE,
    WAVE_RETRYABLE,
    ActionStatus,
    EventKind,
    ExecutionMode,
    ExecutionStatus,
    JobState,
    JobType,
    LaunchPhase,
    LaunchStatus,
    WaveStatus,
)
from .engine.hooks import announce_status_changes, status_change
from .exceptions import (
    ExecutionConflict,
    ExecutionError,
    IdempotencyKeyReused,
    PlanAlreadyRunning,
    PlanNotReady,
    ServerBusy,
)
from .models import ActionRun, DrsJob, Execution, ExecutionEvent, ServerClaim, ServerLaunch, WaveRun
from .readiness import plan_readiness

logger = logging.getLogger(__name__)

SERVICE_LEASE_WAIT_SECONDS = 10
START_PERMISSION = {
    ExecutionMode.DRILL: ACTION_PERMISSIONS["start_drill"],
    ExecutionMode.RECOVERY: ACTION_PERMISSIONS["start_recovery"],
}


# The parts of drsorch that act with no person behind them, by the name the execution JSON's
# `requested_by` and the audit log give them: the drill schedule, and the time-to-live that
# cleans a drill's instances (executions/unattended/).
SCHEDULE_ACTOR = "schedule"
TTL_ACTOR = "ttl"
SYSTEM_ACTORS = (SCHEDULE_ACTOR, TTL_ACTOR)


def _actor_name(user, system_actor=None):
    """Who acts: the user's name, else the system actor's (the schedule, the TTL), else "cli"
    (a command: whoever holds the shell)."""
    if user is not None:
        return user.get_username()
    return system_actor or "cli"


def _check_system_actor(user, system_actor):
    if system_actor is not None and (user is not None or system_actor not in SYSTEM_ACTORS):
        raise ValueError(f"system_actor must be one of {SYSTEM_ACTORS} and comes without a user.")


def _require(user, permission):
    """Commands run with user=None: whoever holds the shell holds the database too."""
    if user is not None and not user.has_perm(permission):
        raise PermissionDenied(f"You need the permission {permission!r} for this action.")


def _record_action(execution, user, message, *, wave=None, system_actor=None, **data):
    """An audit-log entry of a human action, with who did it (and about which wave)."""
    ExecutionEvent.objects.create(
        execution=execution,
        kind=EventKind.ACTION,
        actor=user,
        actor_name=_actor_name(user, system_actor),
        wave_index=wave.index if wave is not None else None,
        message=message,
        data=data,
    )


def _enqueue_advance(execution):
    """Advance at once in a worker, after the commit, so nothing waits for the next minute."""

    def enqueue():
        try:
            async_task("executions.tasks.advance_execution", str(execution.pk), task_name=f"advance {execution.pk}")
        except Exception:  # the minute poller still advances it; a broker hiccup must not fail the request
            logger.exception("Could not enqueue the advance of execution %s", execution.pk)

    transaction.on_commit(enqueue)


@contextmanager
def _execution_lease(execution):
    """Hold the execution's lease while a human action changes it, so the engine's bulk save
    of the same rows cannot overwrite the change. The engine holds it only for one tick."""
    owner = f"service:{uuid.uuid4()}"
    deadline = time.monotonic() + SERVICE_LEASE_WAIT_SECONDS
    while not engine.claim_execution(execution.pk, owner=owner):
        if time.monotonic() > deadline:
            raise ExecutionConflict("The execution is being advanced by a worker right now; try again in a moment.")
        time.sleep(0.1)
    try:
        execution.refresh_from_db()
        yield execution
    finally:
        engine.release_executions([execution], owner=owner)


# --- start ---------------------------------------------------------------------------------

POINT_IN_TIME_EXAMPLE = "2026-11-28T04:00:00Z"
# Execution.comment's column; the comments of approvals and cancellations keep the same limit.
COMMENT_MAX_LENGTH = 1000


def comment_check(*, value: str | None, required: bool = False, why: str = "") -> str:
    """A person's comment on a start, an approval or a cancellation, stripped: a
    ValidationError on `comment` when it is longer than COMMENT_MAX_LENGTH, or empty although
    `required` (then `why` says what needs it)."""
    if value is not None and not isinstance(value, str):
        raise ValidationError({"comment": "The comment must be text."})
    text = (value or "").strip()
    if len(text) > COMMENT_MAX_LENGTH:
        raise ValidationError(
            {"comment": f"The comment has {len(text)} characters; keep it to {COMMENT_MAX_LENGTH} at most."}
        )
    if required and not text:
        raise ValidationError({"comment": f"A comment is required {why}: say why, for the audit trail."})
    return text


def _with_comment(message: str, comment: str) -> str:
    return f"{message} Comment: \u201c{comment}\u201d" if comment else message


def point_in_time_check(*, value: datetime | str) -> datetime:
    """The point in time of a start (an aware datetime, or its ISO-8601 text), in UTC: every
    server is launched from its latest recovery snapshot at or before it. A ValidationError on
    `point_in_time` when it is unreadable, has no timezone (a time without one means something
    else on every machine) or is not in the past (no snapshot can be newer than now)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = parse_datetime(text.replace("z", "Z").replace(" ", "T", 1)) if text else None
        except ValueError:
            parsed = None
        if parsed is None:
            raise ValidationError(
                {"point_in_time": f"{value!r} is not an ISO-8601 date and time; use e.g. {POINT_IN_TIME_EXAMPLE}."}
            )
        value = parsed
    if timezone.is_naive(value):
        raise ValidationError(
            {
                "point_in_time": "The point in time must say its timezone "
                f"(e.g. {POINT_IN_TIME_EXAMPLE} or +02:00 at the end)."
            }
        )
    if value >= timezone.now():
        raise ValidationError(
            {"point_in_time": "The point in time must be in the past: DRS holds no snapshot newer than now."}
        )
    return value.astimezone(UTC)


def execution_start(
    *,
    plan: RecoveryPlan,
    mode: str,
    requested_by: AbstractBaseUser | None,
    auto_approve: bool = False,
    idempotency_key: str | None = None,
    accept_risks: bool = False,
    point_in_time: datetime | None = None,
    comment: str = "",
    system_actor: str | None = None,
) -> Execution:
    """Start `plan` as a DRILL or a RECOVERY and enqueue its first advance.

    Refuses without the start permission of the mode, when readiness finds errors, when it
    finds warnings and `accept_risks` is false, when the plan already runs, or when one of its
    servers is held by another active execution (the database's server claims decide races).
    Accepted warnings are stored on the execution and in its audit log, with who accepted
    them. A repeated `idempotency_key` returns the execution it first created instead of
    starting another, even when the first request is still being served.

    `point_in_time` (aware, in the past: point_in_time_check) launches every server from its
    latest recovery snapshot at or before it (a ransomware recovery); readiness then warns
    about servers without a snapshot that old. `comment` (optional, comment_check) says why
    it was started; it is kept on the execution and in its audit log. `system_actor`
    (SCHEDULE_ACTOR, with requested_by=None) names the part of drsorch that starts it, as
    `requested_by` and in the audit log, instead of "cli"."""
    _check_system_actor(requested_by, system_actor)
    if mode not in ExecutionMode.values:
        raise ValidationError({"mode": f"Unknown mode {mode!r}; use DRILL or RECOVERY."})
    comment = comment_check(value=comment)
    if point_in_time is not None:
        point_in_time = point_in_time_check(value=point_in_time)
    # Whoever may start this mode may accept its risks: this one check covers both.
    _require(requested_by, START_PERMISSION[mode])
    try:
        return _start(
            plan=plan,
            mode=mode,
            user=requested_by,
            auto_approve=auto_approve,
            idempotency_key=idempotency_key,
            accept_risks=accept_risks,
            point_in_time=point_in_time,
            comment=comment,
            system_actor=system_actor,
        )
    except (ExecutionError, IntegrityError):
        # A concurrent request with the same key may have won between two of our checks: it
        # is the same request, so it gets that execution rather than the refusal its win caused.
        if idempotency_key and (existing := _started_with_key(requested_by, idempotency_key, system_actor)):
            return _same_request_or_conflict(
                existing, plan=plan, mode=mode, user=requested_by, point_in_time=point_in_time
            )
        raise


def _start(*, plan, mode, user, auto_approve, idempotency_key, accept_risks, point_in_time, comment, system_actor):
    if idempotency_key:
        existing = _started_with_key(user, idempotency_key, system_actor)
        if existing:
            return _same_request_or_conflict(existing, plan=plan, mode=mode, user=user, point_in_time=point_in_time)
    _refuse_if_running(plan)
    # A start is a POST: it may refresh the inventory, and must, to judge on fresh data.
    report = plan_readiness(plan=plan, refresh=True, point_in_time=point_in_time, launch_actions=False)
    codes = {check.code for check in report.errors}
    if "plan_running" in codes:
        _refuse_if_running(plan)
    if "server_in_other_execution" in codes:
        busy = [check.server for check in report.errors if check.code == "server_in_other_execution"]
        _refuse_if_claimed([(server.target_id, server.drs_id) for server in busy if server])
    if report.errors or (report.warnings and not accept_risks):
        raise PlanNotReady(report)
    try:
        return _create_execution(
            plan=plan,
            mode=mode,
            user=user,
            auto_approve=auto_approve,
            idempotency_key=idempotency_key,
            report=report,
            point_in_time=point_in_time,
            comment=comment,
            system_actor=system_actor,
        )
    except IntegrityError:
        # A concurrent start won the race: the unique constraints say which one.
        _refuse_if_running(plan)
        _refuse_if_claimed([(server.target_id, server.drs_id) for server in report.servers])
        raise


def _refuse_if_running(plan):
    running = Execution.objects.filter(plan=plan, status__in=EXECUTION_ACTIVE).first()
    if running:
        raise PlanAlreadyRunning(running)


def _refuse_if_claimed(servers, *, excluding=None):
    """Raise ServerBusy naming the execution that holds the first claimed of `servers`
    ((target id, source server id) pairs), if another than `excluding` claims one."""
    wanted = set(servers)
    claims = ServerClaim.objects.filter(source_server_id__in={drs_id for _, drs_id in wanted})
    if excluding is not None:
        claims = claims.exclude(execution=excluding)
    claims = [
        claim
        for claim in claims.select_related("execution").order_by("created_at", "source_server_id")
        if (claim.target_id, claim.source_server_id) in wanted
    ]
    if claims:
        holder = claims[0].execution
        names = [claim.source_server_id for claim in claims if claim.execution_id == holder.pk]
        hostnames = dict(
            ServerLaunch.objects.filter(execution=holder, source_server_id__in=names).values_list(
                "source_server_id", "hostname"
            )
        )
        raise ServerBusy(holder, [f"{hostnames.get(name) or name} ({name})" for name in names])


def _claim_servers(execution, launches):
    """Claim `launches`' servers for `execution`: an IntegrityError when another active
    execution holds one (the caller's transaction is then rolled back)."""
    ServerClaim.objects.bulk_create(
        [
            ServerClaim(target_id=launch.target_id, source_server_id=launch.source_server_id, execution=execution)
            for launch in launches
        ]
    )


def _started_with_key(user, idempotency_key, system_actor=None):
    """The execution this requester started with `idempotency_key`: keys are scoped to whoever
    sends them, so another user's request with the same key never gets this one's execution."""
    return Execution.objects.filter(
        requested_by_username=_actor_name(user, system_actor), idempotency_key=idempotency_key
    ).first()


def _same_request_or_conflict(existing, *, plan, mode, user, point_in_time=None):
    # Another point in time is another recovery: the key must not hand back the first one.
    if existing.plan_id != plan.pk or existing.mode != mode or existing.point_in_time != point_in_time:
        raise IdempotencyKeyReused(
            f"This Idempotency-Key was already used to start execution {existing.pk} "
            f"({existing.mode} of '{existing.plan_name}'); use a new key for a different request."
        )
    return existing


@transaction.atomic
def _create_execution(
    *, plan, mode, user, auto_approve, idempotency_key, report, point_in_time=None, comment="", system_actor=None
):
    """Freeze the plan into wave runs and server launches, and claim its servers, all or
    nothing. The report's warnings are the risks the start accepted."""
    specs = plan_wave_specs(plan=plan)
    waves = list(plan.waves.order_by("order").prefetch_related("optional_servers"))
    execution = Execution.objects.create(
        plan=plan,
        plan_name=plan.name,
        mode=mode,
        requested_by=user,
        requested_by_username=_actor_name(user, system_actor),
        auto_approve=auto_approve,
        idempotency_key=idempotency_key or None,
        rto_target_minutes=plan.rto_target_minutes,
        rpo_target_minutes=plan.rpo_target_minutes,
        plan_snapshot=_snapshot(plan, specs, waves),
        accepted_risks=[c.message for c in report.warnings],
        point_in_time=point_in_time,
        comment=comment,
    )
    wave_runs = WaveRun.objects.bulk_create(
        [
            WaveRun(
                execution=execution,
                index=position,
                name=spec.name,
                depends_on=spec.dependencies(position),
                approval_required=spec.approval_required,
                wait_after_minutes=spec.wait_after_minutes,
                timeout_minutes=spec.timeout_minutes,
                before_actions=sum(1 for action in spec.actions if action.when == ActionWhen.BEFORE),
                after_actions=sum(1 for action in spec.actions if action.when == ActionWhen.AFTER),
            )
            for position, spec in enumerate(specs)
        ]
    )
    ActionRun.objects.bulk_create(
        [
            ActionRun(
                execution=execution,
                wave_run=wave_runs[index],
                position=position,
                name=action.name,
                kind=action.kind,
                when=action.when,
                config=action.config,
                timeout_minutes=action.timeout_minutes,
                on_failure=action.on_failure,
            )
            for index, spec in enumerate(specs)
            for position, action in enumerate(spec.actions)
        ]
    )
    launches = []
    for position, spec in enumerate(specs):
        optional = {s.pk for s in waves[position].optional_servers.all()}
        seen = set()
        for group in spec.protection_groups:
            for server in group.resolved_servers():
                if server.pk in seen:
                    continue
                seen.add(server.pk)
                launches.append(
                    ServerLaunch(
                        execution=execution,
                        wave_run=wave_runs[position],
                        target_id=server.target_id,
                        server=server,
                        source_server_id=server.drs_id,
                        hostname=server.hostname,
                        critical=server.pk not in optional,
                    )
                )
    ServerLaunch.objects.bulk_create(launches)
    _claim_servers(execution, launches)
    announce_status_changes([status_change(execution, None)] + [status_change(w, None) for w in wave_runs])
    warnings = [c.message for c in report.warnings]
    _record_action(
        execution,
        user,
        _with_comment(
            f"Started a {mode.lower()} of '{plan.name}' with {len(launches)} servers"
            + (" (gates approved automatically)" if auto_approve else "")
            + ".",
            comment,
        ),
        readiness_warnings=warnings,
        system_actor=system_actor,
        **({"comment": comment} if comment else {}),
    )
    if point_in_time is not None:
        stamp = point_in_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        _record_action(
            execution,
            user,
            f"Point-in-time {mode.lower()}: every server launches from its latest "
            f"recovery snapshot at or before {stamp}.",
            point_in_time=stamp,
            system_actor=system_actor,
        )
    if warnings:
        _record_action(
            execution,
            user,
            f"{_actor_name(user, system_actor)} accepted {len(warnings)} readiness risk(s) to start: "
            + " ".join(warnings),
            accepted_risks=warnings,
            system_actor=system_actor,
        )
    _enqueue_advance(execution)
    return execution


def _snapshot(plan, specs, waves):
    return {
        "plan": {
            "id": plan.pk,
            "name": plan.name,
            "description": plan.description,
            "rto_target_minutes": plan.rto_target_minutes,
            "rpo_target_minutes": plan.rpo_target_minutes,
        },
        "waves": [
            {
                "index": position,
                "name": spec.name,
                "depends_on": spec.dependencies(position),
                "protection_groups": [
                    {"id": g.pk, "name": g.name, "tag_selector": g.tag_selector} for g in spec.protection_groups
                ],
                "approval_required": spec.approval_required,
                "wait_after_minutes": spec.wait_after_minutes,
                "timeout_minutes": spec.timeout_minutes,
                "optional_servers": [s.drs_id for s in waves[position].optional_servers.all()],
                # The webhook's secret stays on the ActionRun, never in a copy people read.
                "actions": [
                    {**action.as_json(), "config": {k: v for k, v in action.config.items() if k != "secret"}}
                    for action in spec.actions
                ],
            }
            for position, spec in enumerate(specs)
        ],
    }


# --- human actions -------------------------------------------------------------------------


def execution_approve(
    *, execution: Execution, user: AbstractBaseUser | None, wave_index: int | None = None, comment: str = ""
) -> Execution:
    """Open the approval gate of the waiting wave (or of `wave_index`) so it launches. The
    `comment` goes to the audit log with the approver; it is required for a RECOVERY, whose
    gate lets production instances launch."""
    _require(user, ACTION_PERMISSIONS["approve"])
    comment = comment_check(
        value=comment,
        required=execution.mode == ExecutionMode.RECOVERY,
        why="to approve a gate of a RECOVERY",
    )
    with _execution_lease(execution):
        waiting = list(execution.wave_runs.filter(status=WaveStatus.WAITING_APPROVAL))
        if wave_index is not None:
            waiting = [w for w in waiting if w.index == wave_index]
        if not waiting:
            raise ExecutionConflict("No wave of this execution is waiting for approval.")
        now = timezone.now()
        changes = []
        for wave in waiting:
            # A wave with `before` actions runs them first; its launch deadline starts after.
            wanted = WaveStatus.BEFORE_ACTIONS if wave.before_actions else WaveStatus.LAUNCHING
            wave.check_transition(wanted)
            old = wave.status
            wave.status = wanted
            wave.approved_by = user
            wave.approved_at = now
            wave.started_at = now
            wave.deadline_at = now + timedelta(minutes=wave.timeout_minutes) if not wave.before_actions else None
            wave.save(update_fields=["status", "approved_by", "approved_at", "started_at", "deadline_at"])
            changes.append(status_change(wave, old))
            _record_action(
                execution,
                user,
                _with_comment(f"Approved wave {wave.number} '{wave.name}'.", comment),
                wave=wave,
                wave_index=wave.index,
                **({"comment": comment} if comment else {}),
            )
        if execution.status == ExecutionStatus.WAITING_APPROVAL:
            execution.status = ExecutionStatus.RUNNING
            execution.save(update_fields=["status"])
            changes.append(status_change(execution, ExecutionStatus.WAITING_APPROVAL))
        announce_status_changes(changes)
    _enqueue_advance(execution)
    return execution


def execution_action_complete(
    *, execution: Execution, name: str, user: AbstractBaseUser | None, comment: str
) -> ActionRun:
    """Complete the manual action `name` of `execution`, which waits for an Operator (the
    permission to approve gates): it SUCCEEDS with who completed it and the `comment`
    (required: what was done, for the audit trail), and the engine moves the wave on.
    ActionRun.DoesNotExist for an unknown name, ExecutionConflict when it is not waiting;
    two clicks complete it once (a conditional UPDATE)."""
    _require(user, ACTION_PERMISSIONS["approve"])
    comment = comment_check(value=comment, required=True, why="to complete a manual action")
    action = ActionRun.objects.select_related("wave_run").get(execution=execution, name=name)
    if action.kind != "manual":
        raise ExecutionConflict(f"Action '{name}' is a {action.kind} action; only manual actions are completed.")
    with _execution_lease(execution):
        now = timezone.now()
        action.check_transition(ActionStatus.SUCCEEDED)
        done = ActionRun.objects.filter(pk=action.pk, status=ActionStatus.WAITING, attempt=action.attempt).update(
            status=ActionStatus.SUCCEEDED,
            finished_at=now,
            completed_by_username=_actor_name(user),
            comment=comment,
            error="",
            output=f"Completed by {_actor_name(user)}: {comment}",
        )
        if done != 1:
            action.refresh_from_db()
            raise ExecutionConflict(f"Action '{name}' is {action.status}; only a WAITING manual action is completed.")
        _record_action(
            execution,
            user,
            _with_comment(f"Completed manual action '{name}' of wave {action.wave_run.number}.", comment),
            wave=action.wave_run,
            action=name,
            comment=comment,
        )
    _enqueue_advance(execution)
    action.refresh_from_db()
    return action


def execution_cancel(*, execution: Execution, user: AbstractBaseUser | None, comment: str = "") -> Execution:
    """Stop starting anything new. Jobs already in DRS run to their end (DRS cannot cancel a
    launch); the execution ends CANCELLED once they have. The `comment` goes to the audit log
    with who cancelled; it is required to cancel a RECOVERY (a failover stopped half-way)."""
    _require(user, ACTION_PERMISSIONS["cancel"])
    comment = comment_check(
        value=comment, required=execution.mode == ExecutionMode.RECOVERY, why="to cancel a RECOVERY"
    )
    with _execution_lease(execution):
        if execution.status not in EXECUTION_ACTIVE or execution.status == ExecutionStatus.CANCELLING:
            raise ExecutionConflict(f"The execution is {execution.status}; only a running execution can be cancelled.")
        execution.check_transition(ExecutionStatus.CANCELLING)
        old = execution.status
        execution.status = ExecutionStatus.CANCELLING
        execution.save(update_fields=["status"])
        announce_status_changes([status_change(execution, old)])
        _record_action(
            execution,
            user,
            _with_comment("Cancelled the execution: no further waves or servers will be launched.", comment),
            **({"comment": comment} if comment else {}),
        )
    _enqueue_advance(execution)
    return execution


def retry_allowed(*, user: AbstractBaseUser | None, execution: Execution) -> bool:
    """Whether `user` may retry `execution`: the retry permission, and for a RECOVERY the
    permission to start one, since its retry launches production instances as a start does."""
    return user is None or (
        user.has_perm(ACTION_PERMISSIONS["retry"]) and user.has_perm(START_PERMISSION[execution.mode])
    )


def execution_retry(*, execution: Execution, user: AbstractBaseUser | None) -> Execution:
    """Relaunch only the failed servers of failed, timed-out and partial waves, re-open the
    waves skipped because of them, and go on. The execution claims its servers again: a
    ServerBusy (409) when another execution took one of them since it ended."""
    _require(user, ACTION_PERMISSIONS["retry"])
    if not retry_allowed(user=user, execution=execution):
        raise PermissionDenied(
            "Retrying a RECOVERY launches production instances again: it needs the permission to "
            f"start a recovery ({START_PERMISSION[ExecutionMode.RECOVERY]!r}, the Commander role)."
        )
    with _execution_lease(execution):
        if execution.status not in EXECUTION_RETRYABLE:
            raise ExecutionConflict(
                f"The execution is {execution.status}; only FAILED, PARTIAL or TIMED_OUT executions can be retried."
            )
        if (
            DrsJob.objects.filter(
                execution=execution, state__in=[JobState.INTENDED, JobState.ACTIVE], type=JobType.LAUNCH
            )
            .exclude(drs_status=JobStatus.COMPLETED)
            .exists()
        ):
            raise ExecutionConflict("DRS jobs of this execution are still running; retry once they have ended.")
        try:
            with transaction.atomic():
                _retry_in_transaction(execution, user)
        except IntegrityError:
            # Another execution claimed one of its servers while it was ended.
            _refuse_if_claimed(
                list(execution.server_launches.values_list("target_id", "source_server_id")), excluding=execution
            )
            raise
    _enqueue_advance(execution)
    return execution


def _retry_in_transaction(execution, user):
    """The retry's changes: its servers claimed again, the failed waves reset, RUNNING again."""
    # Claims were released when it ended; a retry makes it active, so it holds its servers again.
    ServerClaim.objects.filter(execution=execution).delete()
    _claim_servers(execution, list(execution.server_launches.only("target_id", "source_server_id")))
    relaunched, changes = _reset_for_retry(execution)
    execution.check_transition(ExecutionStatus.RUNNING)
    old = execution.status
    execution.status = ExecutionStatus.RUNNING
    execution.finished_at = None
    # The verdict is the retried execution's, measured again when it ends.
    execution.rto_achieved_seconds = execution.rpo_worst_seconds = None
    execution.save(update_fields=["status", "finished_at", "rto_achieved_seconds", "rpo_worst_seconds"])
    changes.append(status_change(execution, old))
    announce_status_changes(changes)
    _record_action(execution, user, f"Retried the execution: {relaunched} server(s) will be launched again.")


def _reset_for_retry(execution):
    """Reset the retryable waves and their failed servers; the servers to relaunch and the
    waves' status changes."""
    relaunched, changes = 0, []
    for wave in execution.wave_runs.filter(status__in=WAVE_RETRYABLE):
        # Only servers whose launch FAILED (or never happened, after a timeout) go again. A
        # recovery server that launched but whose post-launch actions failed keeps its
        # instance: launching it again would put a second production instance beside it.
        again = wave.server_launches.filter(status__in=[LaunchStatus.FAILED, LaunchStatus.NOT_STARTED])
        for launch in again:
            launch.check_transition(LaunchStatus.NOT_STARTED)
        relaunched += again.update(
            status=LaunchStatus.NOT_STARTED,
            job=None,
            phase=LaunchPhase.WAITING,
            error="",
            post_launch_status="",
            recovery_instance_id="",
            launched_at=None,
            ended_at=None,
            snapshot_at=None,
        )
        # Its failed, timed-out, cancelled and skipped actions run again, as a new attempt
        # (a fresh ClientToken and delivery id); those that succeeded are not repeated.
        for action in wave.action_runs.filter(status__in=ACTION_RETRYABLE):
            action.check_transition(ActionStatus.PENDING)
            action.status = ActionStatus.PENDING
            action.attempt += 1
            action.intent_at = action.started_at = action.finished_at = action.deadline_at = None
            action.external = {}
            action.output = action.error = ""
            action.save(
                update_fields=[
                    "status", "attempt", "intent_at", "started_at", "finished_at", "deadline_at", "external",
                    "output", "error",
                ]
            )
        wave.check_transition(WaveStatus.PENDING)
        # Waves whose gate was already approved keep the approval.
        old = wave.status
        wave.status = WaveStatus.PENDING
        wave.finished_at = None
        wave.deadline_at = None
        wave.save(update_fields=["status", "finished_at", "deadline_at"])
        changes.append(status_change(wave, old))
    return relaunched, changes


def execution_cleanup(
    *, execution: Execution, user: AbstractBaseUser | None, system_actor: str | None = None, why: str = ""
) -> Execution:
    """Ask for the recovery instances *this* drill launched (and nothing else) to be terminated.

    Records the clean-up -- its launches go to phase TERMINATING and each target gets a
    clean-up request -- and leaves the DRS calls to the worker (engine/cleanup.py), which
    retries throttling, finds instance ids DRS did not give, and skips instances a later launch
    already replaced. No DRS call is made here, so a throttled DRS never fails the request.

    `system_actor` (TTL_ACTOR, with user=None) names the part of drsorch that asks, in the
    audit log, and `why` (e.g. "the plan's time-to-live of 60 min has passed") ends its entry."""
    _check_system_actor(user, system_actor)
    _require(user, ACTION_PERMISSIONS["cleanup"])
    with _execution_lease(execution):
        if not execution.is_drill:
            raise ExecutionConflict(
                "Only a drill's instances are cleaned up; a recovery's instances are your production now."
            )
        if execution.status in EXECUTION_ACTIVE:
            raise ExecutionConflict("The drill is still running; wait for its end or cancel it first.")
        # LAUNCHED with or without an instance id: DRS does not always name it in the job,
        # and the worker finds it.
        launches = list(
            execution.server_launches.filter(status=LaunchStatus.LAUNCHED)
            .exclude(phase=LaunchPhase.TERMINATING)
            .only("pk", "target_id", "recovery_instance_id")
        )
        if not launches:
            raise ExecutionConflict("This drill has no running recovery instances to clean up.")
        counts = {}
        for launch in launches:
            counts[launch.target_id] = counts.get(launch.target_id, 0) + 1
        with transaction.atomic():
            ServerLaunch.objects.filter(pk__in=[launch.pk for launch in launches]).update(
                phase=LaunchPhase.TERMINATING, cleanup_job=None, error=""
            )
            DrsJob.objects.bulk_create(
                [
                    DrsJob(
                        execution=execution,
                        target_id=target_id,
                        type=JobType.TERMINATE,
                        state=JobState.INTENDED,
                        is_drill=True,
                        server_count=count,
                    )
                    for target_id, count in counts.items()
                ]
            )
            if execution.cleaned_up_at:
                execution.cleaned_up_at = None
                execution.save(update_fields=["cleaned_up_at"])
            _record_action(
                execution,
                user,
                f"Started clean-up of {len(launches)} recovery instance(s)" + (f": {why}." if why else "."),
                system_actor=system_actor,
                recovery_instance_ids=[
                    launch.recovery_instance_id for launch in launches if launch.recovery_instance_id
                ],
            )
    _enqueue_advance(execution)
    return execution
