"""The rows of one tick: loaded once, changed in memory, saved in bulk under a held lease.

`TickRows` holds the claimed executions with their waves, open jobs and the launches the tick
needs, tracks which rows changed (`touch`, `set_status`) and which events and status changes
to record, and `save()`s them. The other engine modules read and change these rows.

May import: lease and hooks (and models, choices). Never times, jobs, job_log, launching,
waves or ticks.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Field, Model, Q
from django.db.models.constants import OnConflict
from django.utils import timezone

from drsorch.drs.constants import JobStatus
from executions.choices import (
    EXECUTION_TERMINAL,
    JOB_OPEN,
    WAVE_ACTION_PHASES,
    EventKind,
    JobType,
    LaunchPhase,
    LaunchStatus,
    WaveStatus,
)
from executions.models import (
    ActionRun,
    DrsJob,
    Execution,
    ExecutionEvent,
    LaunchAttempt,
    ServerClaim,
    ServerLaunch,
    WaveRun,
)
from plans.models import Target

from .hooks import StatusChange, announce_status_changes, status_change
from .lease import renew_held_leases

logger = logging.getLogger(__name__)

ENGINE_ACTOR = "drsorch"
# AFTER_ACTIONS: its actions act on the wave's launched servers, so those are loaded.
WAVES_ON_THE_MOVE = frozenset({WaveStatus.LAUNCHING, WaveStatus.AFTER_ACTIONS, WaveStatus.WAITING})

# The fields a tick may change, per model, in the order the rows are saved.
SAVED_FIELDS: dict[type[Model], list[str]] = {
    ServerLaunch: [
        "status",
        "phase",
        "job",
        "recovery_instance_id",
        "launched_at",
        "ended_at",
        "snapshot_at",
        "post_launch_status",
        "error",
        "attempts",
        "terminated_at",
        "cleanup_job",
    ],
    WaveRun: ["status", "approved_at", "started_at", "deadline_at", "wait_until", "finished_at"],
    DrsJob: [
        "state",
        "drs_status",
        "job_id",
        "drs_created_at",
        "drs_ended_at",
        "log_items_seen",
        "log_read_at",
        "error",
    ],
    ActionRun: [
        "status",
        "attempt",
        "intent_at",
        "external",
        "started_at",
        "finished_at",
        "deadline_at",
        "output",
        "error",
    ],
    Execution: [
        "status",
        "started_at",
        "finished_at",
        "cleaned_up_at",
        "drs_trouble",
        "rto_achieved_seconds",
        "rpo_worst_seconds",
    ],
}

Row = ServerLaunch | WaveRun | DrsJob | ActionRun | Execution
FOREIGN_KEYS = frozenset({"job", "cleanup_job"})  # saved fields compared by their id


class WrittenEvents:
    """The deduplicated events this process has committed, by (execution id, dedupe key).

    A DRS job log is read again every few seconds while its job runs and each read returns
    every item so far; building and INSERTing a few hundred events only for the unique
    constraint to ignore them was a fifth of a busy tick's CPU. An item whose event this
    process committed is skipped. Only a cache: the constraint stays the guard (another
    worker, a restart), keys are added only after the tick's transaction committed, the
    execution id is a UUID (no key is ever reused) and the size is bounded."""

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._keys: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()  # ticks of a worker process may run in threads

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._keys

    def add(self, keys: Iterable[tuple[str, str]]) -> None:
        with self._lock:
            for key in keys:
                self._keys[key] = None
            while len(self._keys) > self.limit:
                self._keys.popitem(last=False)


written_events = WrittenEvents()


def update_rows(model: type[Model], objects: Sequence[Model], fields: Sequence[str]) -> None:
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
    prepare = [_saver(f, connection) for f in columns]
    key = _saver(pk, connection)
    rows = [
        [save(getattr(obj, f.attname)) for f, save in zip(columns, prepare, strict=True)] + [key(obj.pk)]
        for obj in objects
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def insert_rows_ignoring_duplicates(model: type[Model], objects: Sequence[Model]) -> None:
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
    rows = _insert_values(fields, objects, connection)
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _insert_values(fields: Sequence[Field], objects: Sequence[Model], connection: Any) -> list[list[Any]]:
    """The column values of `objects` for an INSERT, as Model.save would write them."""
    # pre_save only differs from the attribute for auto_now(_add) dates; asked per row only there.
    plain = [not getattr(f, "auto_now", False) and not getattr(f, "auto_now_add", False) for f in fields]
    prepare = [_saver(f, connection) for f in fields]
    return [
        [
            save(getattr(obj, f.attname) if is_plain else f.pre_save(obj, True))
            for f, is_plain, save in zip(fields, plain, prepare, strict=True)
        ]
        for obj in objects
    ]


_PASS_THROUGH_TYPES: dict[str, type | tuple[type, ...]] = {
    "CharField": str,
    "TextField": str,
    "IntegerField": int,
    "BigIntegerField": int,
    "SmallIntegerField": int,
    "PositiveIntegerField": int,
    "PositiveSmallIntegerField": int,
    "PositiveBigIntegerField": int,
    "AutoField": int,
    "BigAutoField": int,
    "FloatField": float,
    "BooleanField": bool,
}


def _saver(field: Field, connection: Any) -> Callable[[Any], Any]:
    """`field.get_db_prep_save` for one column of a bulk statement, without its per-value
    checks where the value is already what the database takes. A busy tick writes tens of
    thousands of values (a few thousand events of ten fields each), and Django's generic
    path (to_python, then the backend's adaptation, per value) was a third of its save. Any
    other value takes Django's own path, so the result is always what Model.save writes."""
    generic = functools.partial(field.get_db_prep_save, connection=connection)
    internal = field.target_field.get_internal_type() if field.is_relation else field.get_internal_type()
    passes = _PASS_THROUGH_TYPES.get(internal)
    if passes is not None:
        # bool is an int: an int column handed a bool takes the generic path, like any other type.
        return lambda value: (
            value
            if value is None or (isinstance(value, passes) and (passes is bool or not isinstance(value, bool)))
            else generic(value)
        )
    if internal == "DateTimeField":
        adapt = connection.ops.adapt_datetimefield_value
        # Naive datetimes take the generic path: it warns about them and makes them aware.
        return lambda value: (
            adapt(value) if isinstance(value, datetime) and value.tzinfo is not None else generic(value)
        )
    return generic


def upsert_rows(
    model: type[Model], objects: Sequence[Model], *, unique_fields: Sequence[str], update_fields: Sequence[str]
) -> None:
    """INSERT `objects`, or UPDATE `update_fields` of the row holding the same `unique_fields`,
    with one prepared statement run for every row (bulk_create(update_conflicts=True) builds
    the SQL of every batch anew: most of a busy tick's save)."""
    if not objects:
        return
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    unique = [model._meta.get_field(name).column for name in unique_fields]
    updated = [model._meta.get_field(name).column for name in update_fields]
    sql = "{} {} ({}) VALUES ({}){}".format(
        connection.ops.insert_statement(on_conflict=OnConflict.UPDATE),
        quote(model._meta.db_table),
        ", ".join(quote(f.column) for f in fields),
        ", ".join(["%s"] * len(fields)),
        connection.ops.on_conflict_suffix_sql(fields, OnConflict.UPDATE, updated, unique),
    )
    rows = _insert_values(fields, objects, connection)
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _execution_id(obj: Row) -> object:
    return obj.pk if isinstance(obj, Execution) else obj.execution_id


def _values(obj: Row, fields: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(obj, f"{name}_id" if name in FOREIGN_KEYS else name) for name in fields}


def _target_key(key: str) -> object:
    """A target id as `drs_trouble` stores it (a JSON key) back to the primary key."""
    return int(key) if key.isdigit() else key


def _label(obj: Execution | WaveRun | ServerLaunch) -> str:
    if isinstance(obj, Execution):
        return "Execution"
    if isinstance(obj, WaveRun):
        return f"Wave {obj.number} '{obj.name}'"
    return f"Server {obj.hostname or obj.source_server_id}"


class TickRows:
    """The rows of the claimed executions, loaded once, changed in memory, saved in bulk."""

    def __init__(self, executions: Iterable[Execution], *, owner: str) -> None:
        self.owner = owner
        self.now = timezone.now()
        self.executions: dict[object, Execution] = {e.pk: e for e in executions}
        ids = list(self.executions)
        self.waves: defaultdict[object, list[WaveRun]] = defaultdict(list)
        for wave in WaveRun.objects.filter(execution_id__in=ids).order_by("index"):
            self.waves[wave.execution_id].append(wave)
        self.jobs: dict[object, DrsJob] = {
            job.pk: job for job in DrsJob.objects.filter(execution_id__in=ids, state__in=JOB_OPEN)
        }
        # Only waves on the move need their servers; waves that start during the tick are
        # loaded before launching (load_started_waves), ended waves only for open jobs.
        self.loaded_waves = {w.pk for group in self.waves.values() for w in group if w.status in WAVES_ON_THE_MOVE}
        self.launches: defaultdict[object, list[ServerLaunch]] = defaultdict(list)
        self.launches_by_job: defaultdict[object, dict[str, ServerLaunch]] = defaultdict(dict)
        self.original: dict[tuple[type[Model], object], dict[str, Any]] = {}
        self.add_launches(
            ServerLaunch.objects.filter(execution_id__in=ids).filter(
                Q(wave_run_id__in=list(self.loaded_waves))
                | Q(job_id__in=list(self.jobs))
                | Q(phase=LaunchPhase.TERMINATING)
            )
        )
        self.targets: dict[object, Target] = Target.objects.in_bulk()  # a handful of rows
        # Our open LAUNCH jobs per target (DRS job id or None, servers), over every execution:
        # what the account's job listing may not show yet (intents) or any more (old jobs).
        self.our_open_jobs: defaultdict[object, list[tuple[str | None, int]]] = defaultdict(list)
        self.quota_use = self._load_quota_use()
        # What DRS says of each target this tick (launching.TargetView, read at most once per
        # target and tick, only for targets with launches to make); None when the read failed.
        self.drs_views: dict[object, Any] = {}
        self.drs_view_errors: dict[object, Exception] = {}
        # DRS calls of this tick per (execution, target): the cause of a failure DRS could not
        # answer (unreachable, credentials, permissions), or a success; see settle_trouble().
        self.call_failures: dict[tuple[object, object], str] = {}
        self.call_successes: set[tuple[object, object]] = set()
        # The actions of waves running them, by wave (one query, only when a wave is in an
        # action phase: executions without actions never read the table); a wave entering
        # one during the tick loads its own (wave_actions).
        self.actions: dict[object, list[ActionRun]] = {}
        acting = [w.pk for group in self.waves.values() for w in group if w.status in WAVE_ACTION_PHASES]
        if acting:
            self._add_actions(acting, ActionRun.objects.filter(wave_run_id__in=acting))
        self.remember(w for group in self.waves.values() for w in group)
        self.remember(self.jobs.values())
        self.remember(self.executions.values())
        self.dirty: dict[type[Model], dict[object, Row]] = {model: {} for model in SAVED_FIELDS}
        self.events: list[ExecutionEvent] = []
        # DRS's failure messages for attempts whose launch already moved on (a retry came
        # before the failed job's log was read): (execution, job, source server, error, time).
        self.late_failures: list[tuple[object, object, str, str, Any]] = []
        self.status_changes: list[StatusChange] = []
        self.new_intents: set[object] = set()
        self.final_log_due: set[object] = set()
        # claim_executions just set every lease: count that as a renewal.
        self.lease_renewed_at = dict.fromkeys(self.executions, time.monotonic())
        self.lost: set[object] = set()

    # --- bookkeeping ----------------------------------------------------------------------

    def touch(self, obj: Row) -> None:
        """Mark `obj` for saving (only the fields that really changed are written)."""
        self.dirty[type(obj)][obj.pk] = obj

    def late_failure(self, job: DrsJob, source_server_id: str, error: str, at: Any) -> None:
        """Keep DRS's message on the attempt of `source_server_id` in `job`, although its launch
        has moved on to another job since."""
        self.late_failures.append((job.execution_id, job.pk, source_server_id, error, at))

    def event(
        self,
        execution_id: object,
        kind: str,
        message: str,
        *,
        wave: WaveRun | None = None,
        source_server_id: str = "",
        data: dict | None = None,
        dedupe_key: str | None = None,
        at: Any = None,
    ) -> None:
        """Record an event of the engine, written with the tick's rows (a deduplicated one
        this process already committed is skipped: WrittenEvents)."""
        if dedupe_key is not None and (str(execution_id), dedupe_key) in written_events:
            return
        self.events.append(
            ExecutionEvent(
                execution_id=execution_id,
                kind=kind,
                message=message,
                actor_name=ENGINE_ACTOR,
                wave_index=wave.index if wave else None,
                source_server_id=source_server_id,
                data=data or {},
                dedupe_key=dedupe_key,
                created_at=at or timezone.now(),
            )
        )

    def set_status(
        self, obj: Execution | WaveRun | ServerLaunch, status: str, message: str | None = None, **fields: Any
    ) -> bool:
        """Move `obj` to `status` through its declared transitions, and log it."""
        if obj.status == status:
            return False
        obj.check_transition(status)
        old = obj.status
        obj.status = status
        for name, value in fields.items():
            setattr(obj, name, value)
        self.touch(obj)
        execution_id = _execution_id(obj)
        wave = obj if isinstance(obj, WaveRun) else None
        if isinstance(obj, ServerLaunch):
            wave = next((w for w in self.waves[execution_id] if w.pk == obj.wave_run_id), None)
        else:
            self.status_changes.append(status_change(obj, old))
        self.event(
            execution_id,
            EventKind.STATUS,
            message or f"{_label(obj)}: {old} → {status}",
            wave=wave,
            source_server_id=obj.source_server_id if isinstance(obj, ServerLaunch) else "",
            data={"from": old, "to": status},
        )
        return True

    def set_action_status(self, action: ActionRun, status: str, message: str, **fields: Any) -> bool:
        """Move `action` to `status` through its declared transitions, with a timeline event
        (an ERROR event for a failure)."""
        if action.status == status:
            return False
        action.check_transition(status)
        old = action.status
        action.status = status
        for name, value in fields.items():
            setattr(action, name, value)
        self.touch(action)
        wave = next((w for w in self.waves[action.execution_id] if w.pk == action.wave_run_id), None)
        failed = status in ("FAILED", "TIMED_OUT")
        self.event(
            action.execution_id,
            EventKind.ERROR if failed else EventKind.ENGINE,
            message,
            wave=wave,
            data={"action": action.name, "kind": action.kind, "from": old, "to": status, "attempt": action.attempt},
        )
        return True

    def wave_actions(self, wave: WaveRun) -> list[ActionRun]:
        """The actions of `wave` (before ones first), loaded once per tick."""
        if wave.pk not in self.actions:
            self._add_actions([wave.pk], ActionRun.objects.filter(wave_run_id=wave.pk))
        return self.actions[wave.pk]

    def _add_actions(self, wave_ids: list[object], actions: Iterable[ActionRun]) -> None:
        for wave_id in wave_ids:
            self.actions[wave_id] = []
        actions = list(actions)
        for action in actions:
            self.actions[action.wave_run_id].append(action)
        self.remember(actions)

    def wave_of(self, job: DrsJob) -> WaveRun | None:
        """The wave run `job` launches servers of (None for a clean-up job)."""
        return next((w for w in self.waves[job.execution_id] if w.pk == job.wave_run_id), None)

    def wave_launches(self, execution: Execution, wave: WaveRun) -> list[ServerLaunch]:
        """The loaded launches of `wave`."""
        return [launch for launch in self.launches[execution.pk] if launch.wave_run_id == wave.pk]

    def _load_quota_use(self) -> defaultdict[object, dict[str, int]]:
        """Jobs and servers in our active DRS jobs per target, over every execution (one query
        whose rows are our open jobs, not servers). The launcher replaces a target's numbers
        with DRS's own count of the account's jobs when it reads them (launching.TargetView)."""
        rows = (
            DrsJob.objects.filter(state__in=JOB_OPEN, type=JobType.LAUNCH)
            .exclude(drs_status=JobStatus.COMPLETED)
            .values_list("target_id", "job_id", "server_count")
        )
        use: defaultdict[object, dict[str, int]] = defaultdict(lambda: {"jobs": 0, "servers": 0})
        for target_id, job_id, server_count in rows:
            self.our_open_jobs[target_id].append((job_id, server_count))
            use[target_id] = {"jobs": use[target_id]["jobs"] + 1, "servers": use[target_id]["servers"] + server_count}
        return use

    # --- DRS trouble ----------------------------------------------------------------------

    def call_failed(self, execution_id: object, target_id: object, cause: str) -> None:
        """A DRS call of this tick for `execution_id` on `target_id` could not get an answer
        that counts (unreachable endpoint, failing credentials, a permission to read)."""
        self.call_failures[(execution_id, target_id)] = cause

    def call_answered(self, execution_id: object, target_id: object) -> None:
        """A DRS call of this tick for `execution_id` on `target_id` was answered."""
        self.call_successes.add((execution_id, target_id))

    def settle_trouble(self) -> None:
        """Fold this tick's DRS calls into each execution's `drs_trouble`: a failed tick counts
        (any failure makes the tick failed, even beside an answered call: the failing call is
        what the execution needs), an answered one clears the target."""
        for execution in self.executions.values():
            trouble = dict(execution.drs_trouble or {})
            for key in list(trouble):
                pair = (execution.pk, _target_key(key))
                if pair in self.call_successes and pair not in self.call_failures:
                    trouble.pop(key)
            for (execution_id, target_id), cause in self.call_failures.items():
                if execution_id != execution.pk:
                    continue
                entry = trouble.get(str(target_id)) or {"since": self.now.isoformat(), "ticks": 0}
                trouble[str(target_id)] = {**entry, "ticks": entry["ticks"] + 1, "error": cause}
            if trouble != (execution.drs_trouble or {}):
                execution.drs_trouble = trouble
                self.touch(execution)

    # --- loading --------------------------------------------------------------------------

    def add_launches(self, launches: Iterable[ServerLaunch]) -> None:
        """Add loaded launches to the tick (indexed by execution and by job)."""
        launches = list(launches)
        for launch in launches:
            self.launches[launch.execution_id].append(launch)
            if launch.job_id:
                self.launches_by_job[launch.job_id][launch.source_server_id] = launch
        self.remember(launches)

    def load_started_waves(self) -> None:
        """Load, in one query, the servers of every wave that started launching this tick."""
        started = [
            w.pk
            for group in self.waves.values()
            for w in group
            if w.status in WAVES_ON_THE_MOVE and w.pk not in self.loaded_waves
        ]
        if not started:
            return
        self.loaded_waves.update(started)
        loaded = {launch.pk for group in self.launches.values() for launch in group}
        self.add_launches(
            launch for launch in ServerLaunch.objects.filter(wave_run_id__in=started) if launch.pk not in loaded
        )

    def remember(self, objects: Iterable[Row]) -> None:
        """Note the saved fields of `objects` as written: later changes are diffed from them."""
        for obj in objects:
            self.original[(type(obj), obj.pk)] = _values(obj, SAVED_FIELDS[type(obj)])

    # --- saving ---------------------------------------------------------------------------

    def _changes(self, objects: Iterable[Row], fields: list[str]) -> tuple[list[Row], list[str]]:
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

    def _save_attempts(self, held: set[object]) -> None:
        """Upsert the attempt (launch, DRS job) of every changed launch that a DRS job carries:
        one statement whatever the number of servers, only in ticks where launches changed.
        A retry gives a launch another job, hence another attempt: nothing is overwritten."""
        attempts = []
        for launch in self.dirty[ServerLaunch].values():
            job = self.jobs.get(launch.job_id)
            if (
                launch.execution_id not in held
                or job is None
                or not job.job_id
                or job.type != JobType.LAUNCH
                or launch.status == LaunchStatus.TERMINATED
            ):
                continue  # a clean-up's TERMINATED is not a launch outcome: the attempt keeps it
            if self._attempt_unchanged(launch, job):
                continue
            status = LaunchStatus.PENDING if launch.status == LaunchStatus.NOT_STARTED else launch.status
            attempts.append(
                LaunchAttempt(
                    launch_id=launch.pk,
                    job_id=job.pk,
                    launch_status=status,
                    error=launch.error,
                    started_at=job.drs_created_at,
                    ended_at=launch.ended_at,
                )
            )
        upsert_rows(
            LaunchAttempt,
            attempts,
            unique_fields=["launch", "job"],
            update_fields=["launch_status", "error", "started_at", "ended_at"],
        )

    def _attempt_unchanged(self, launch: ServerLaunch, job: DrsJob) -> bool:
        """Whether the attempt row already says what `launch` and `job` say now: both were
        loaded (or remembered) with the values an attempt copies, and those have not changed.
        The attempt was written in the same transaction as those values, so it matches them;
        a tick where only phases move (most of a launch) then upserts no attempt at all."""
        launch_before = self.original.get((ServerLaunch, launch.pk))
        job_before = self.original.get((DrsJob, job.pk))
        if launch_before is None or job_before is None:
            return False
        return (
            launch_before["job"] == launch.job_id
            and launch_before["status"] == launch.status
            and launch_before["error"] == launch.error
            and launch_before["ended_at"] == launch.ended_at
            and job_before["job_id"] == job.job_id
            and job_before["drs_created_at"] == job.drs_created_at
        )

    def save(self) -> None:
        """Write the tick's changes, but only for executions whose lease we still hold: a tick
        that ran past its lease must not overwrite the worker that took over. Their status
        changes are announced once this transaction has committed."""
        with transaction.atomic():
            held = renew_held_leases(self.executions, owner=self.owner, excluded=self.lost)
            for model, fields in SAVED_FIELDS.items():
                kept = [obj for obj in self.dirty[model].values() if _execution_id(obj) in held]
                changed, names = self._changes(kept, fields)
                update_rows(model, changed, names)
            saved_events = [e for e in self.events if e.execution_id in held]
            insert_rows_ignoring_duplicates(ExecutionEvent, saved_events)
            keys = [(str(e.execution_id), e.dedupe_key) for e in saved_events if e.dedupe_key is not None]
            transaction.on_commit(lambda: written_events.add(keys))
            self._save_attempts(held)
            for execution_id, job_pk, server_id, error, at in self.late_failures:
                if execution_id in held:
                    LaunchAttempt.objects.filter(
                        job_id=job_pk,
                        launch__source_server_id=server_id,
                        launch_status=LaunchStatus.FAILED,
                    ).update(error=error, **({"ended_at": at} if at else {}))
            # An execution that ends frees its servers in the same transaction (one DELETE,
            # only in a tick where some execution ended), so no start ever sees it half-ended.
            ended = [
                pk
                for pk in held
                if self.executions[pk].status in EXECUTION_TERMINAL
                and self.original[(Execution, pk)]["status"] not in EXECUTION_TERMINAL
            ]
            if ended:
                ServerClaim.objects.filter(execution_id__in=ended).delete()
            announce_status_changes(change for change in self.status_changes if change.execution_id in held)
        for execution_id in set(self.executions) - held:
            logger.warning("Lease of execution %s expired during the tick; its changes were dropped.", execution_id)
