"""Readiness of a recovery plan: can it start now, and what should its owner fix first?

A finding is an `error` (the plan cannot start: no servers, a server unknown to DRS, a plan
DRS's quotas can never run, and, from executions, the plan or a server already running) or a
`warning` (a risk a recovery in an outage must be able to take: replication not CONTINUOUS,
lag over the RPO, DRS unreachable for a check, a server held by a DRS job drsorch did not
start). Warnings block a start unless the person starting it accepts them. `info` notes
(a wave split into several jobs, overlapping selectors) neither block nor need accepting.

These are the checks plans can make alone. `executions.readiness.plan_readiness` adds the
checks that need executions (the plan or a server already running) through `server_checks`;
every caller that decides whether a plan can start uses that one.

Only `refresh=True` writes (the inventory): a page or API read must never pass it.
"""

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.core.exceptions import ValidationError
from django.utils import timezone

from drsorch.drs import gateway
from drsorch.drs.concurrency import per_target
from drsorch.drs.constants import (
    MAX_ACTIVE_JOBS_PER_TARGET,
    MAX_SERVERS_IN_ACTIVE_JOBS,
    MAX_SERVERS_PER_JOB,
    TAG_EXECUTION,
)

from . import services
from .choices import ReplicationState
from .models import RecoveryPlan, SourceServer

logger = logging.getLogger(__name__)

ERROR = "error"
WARNING = "warning"
INFO = "info"
SEVERITIES = (ERROR, WARNING, INFO)
# The code of the error executions.readiness adds when the plan already runs.
PLAN_RUNNING = "plan_running"

# How far back the active-job check lists DRS jobs (DescribeJobs has no status filter, only
# dates). DRS jobs run minutes to hours (a launch step times out within hours), so a job a
# month old that is still active does not happen, while two days missed any older job still
# holding servers. A month of jobs is a few pages of reads, made only by readiness.
ACTIVE_JOB_LOOKBACK = timedelta(days=30)

# ListLaunchActions is one call per server: a target's servers are asked in at most this many
# runs at once, each of at least this many servers (so a small plan's are asked in one run).
LAUNCH_ACTION_RUNS_PER_TARGET = 8
LAUNCH_ACTION_SERVERS_PER_RUN = 10


@dataclass
class ReadinessCheck:
    """One finding: `severity` is "error" (never startable), "warning" (a risk: blocks a start
    unless accepted) or "info" (a note that blocks nothing)."""

    severity: str
    code: str
    message: str
    server: SourceServer | None = None
    # The drsorch execution the finding is about (the plan's running one, or the one holding
    # a server), for its link: any object with `pk` and `get_absolute_url()`.
    execution: Any = None

    def as_json(self) -> dict[str, Any]:
        """The check as the readiness JSON lists it."""
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "source_server_id": self.server.drs_id if self.server else None,
            "hostname": self.server.hostname if self.server else None,
            "execution": str(self.execution.pk) if self.execution is not None else None,
        }


@dataclass
class ReadinessReport:
    """Every check of one plan, with the servers it resolved to."""

    plan: RecoveryPlan
    checks: list = field(default_factory=list)
    servers: list = field(default_factory=list)
    checked_at: object = None

    @property
    def errors(self) -> list[ReadinessCheck]:
        """The findings that make a start impossible."""
        return [c for c in self.checks if c.severity == ERROR]

    @property
    def warnings(self) -> list[ReadinessCheck]:
        """The risks a start must accept (accept_risks) to go ahead."""
        return [c for c in self.checks if c.severity == WARNING]

    @property
    def running(self) -> ReadinessCheck | None:
        """The finding that the plan already runs (its `execution` is the running one), if any."""
        return next((c for c in self.checks if c.code == PLAN_RUNNING), None)

    @property
    def errors_besides_running(self) -> list[ReadinessCheck]:
        """The errors a page shows as errors: a running plan is shown as running instead."""
        return [c for c in self.errors if c.code != PLAN_RUNNING]

    @property
    def ok(self) -> bool:
        """No errors: the plan can start, once its warnings are accepted."""
        return not self.errors

    @property
    def startable_without_accepting(self) -> bool:
        """Neither errors nor warnings: a start needs nothing accepted."""
        return not self.errors and not self.warnings

    def add(
        self, severity: str, code: str, message: str, server: SourceServer | None = None, *, execution: Any = None
    ) -> None:
        """Record a finding."""
        self.checks.append(ReadinessCheck(severity, code, message, server, execution))

    def as_json(self) -> dict[str, Any]:
        """The readiness JSON of the API."""
        return {
            "plan": {"id": self.plan.pk, "name": self.plan.name},
            "ready": self.ok,
            "checked_at": self.checked_at.isoformat().replace("+00:00", "Z") if self.checked_at else None,
            "server_count": len(self.servers),
            "checks": [c.as_json() for c in self.checks],
        }


# A check of the plan's resolved servers that another app adds: it reports with report.add().
ServerCheck = Callable[[ReadinessReport, RecoveryPlan, list[SourceServer]], None]
# Given DRS job ids, the drsorch executions (objects with pk, plan_name, get_absolute_url())
# that asked for those of them no other check reports: jobs of executions that have ended
# (a drill's clean-up, a cancelled execution's last launch). Supplied by executions.
JobHolders = Callable[[set[str]], dict[str, Any]]


def plan_readiness(*, plan: RecoveryPlan, live: bool = True, refresh: bool = False,
                   server_checks: Sequence[ServerCheck] = (), point_in_time: datetime | None = None,
                   job_holders: JobHolders | None = None, launch_actions: bool = True) -> ReadinessReport:
    """Check that `plan` can start now, from the stored inventory.

    With `live`, DRS is also asked (read only) for the active jobs holding the plan's servers;
    without it only stored data is used (fast enough for a dashboard). With `refresh` (a
    write: only POSTs and starts pass it) the inventory of the plan's targets is first
    synced from DRS; `refresh` implies `live`.

    `server_checks` run right after the checks of each server's replication, in order, with
    the report, the plan and its resolved servers.

    With `point_in_time` (a start that launches every server from its latest snapshot at or
    before it) and `live`, DRS is asked for each server's snapshot that old, one call per
    server: a server without one is a warning (the engine would fail it, never launch it
    from a newer snapshot).

    With `live` and `launch_actions`, DRS is asked for each server's own post-launch actions
    (one call per server), shown as info. A start passes launch_actions=False: they decide
    nothing about whether it may start, and a recovery must not wait for them.
    """
    report = ReadinessReport(plan=plan, checked_at=timezone.now())
    specs = services.plan_wave_specs(plan=plan)
    try:
        resolved = services.plan_validate_waves(waves=specs)
    except ValidationError as exc:
        for messages in exc.message_dict.values():
            for message in messages:
                report.add(ERROR, "plan_structure", message)
        resolved = {}
        for position, spec in enumerate(specs):
            resolved[position] = list({s.pk: s for g in spec.protection_groups for s in g.resolved_servers()}.values())

    servers = [server for position in sorted(resolved) for server in resolved[position]]
    targets = {server.target_id: server.target for server in servers}
    if refresh:
        live = True
        _refresh_inventory(report, targets.values())
        fresh = SourceServer.objects.in_bulk([s.pk for s in servers])
        servers = [fresh[s.pk] for s in servers if s.pk in fresh]
    report.servers = servers

    if not servers and not report.errors:
        report.add(ERROR, "no_servers", "The plan resolves to no source servers: there is nothing to launch.")
    _check_servers(report, plan, servers)
    for check in server_checks:
        check(report, plan, servers)
    if live:
        _check_active_drs_jobs(report, targets.values(), servers, job_holders)
        if point_in_time is not None:
            _check_point_in_time(report, targets, servers, point_in_time)
        if launch_actions:
            _check_drs_launch_actions(report, specs, resolved, targets)
    _check_quotas(report, specs, resolved, servers)
    _check_overlapping_selectors(report, specs)
    return report


def _refresh_inventory(report, targets):
    for target in targets:
        try:
            services.source_servers_sync(target=target)
        except (BotoCoreError, ClientError) as exc:
            report.add(WARNING, "inventory_stale",
                       f"DRS could not be reached to refresh the inventory of target '{target.name}' ({exc}); "
                       "the replication checks use the last synced data.")


def snapshot_age(server: SourceServer) -> str:
    """How old the snapshot a recovery started now would launch `server` from, from its lag."""
    if server.lag_seconds is None:
        return "the age of the snapshot a recovery now starts from is unknown"
    return f"a recovery now starts from a snapshot about {max(1, round(server.lag_seconds / 60))} min old"


def _check_servers(report, plan, servers):
    for server in servers:
        name = f"{server.display_name} ({server.drs_id})"
        if not server.in_drs:
            report.add(ERROR, "unknown_to_drs", f"Server {name} is no longer known to DRS.", server)
            continue
        # In an outage replication stops (DISCONNECTED, STALLED) and DRS still launches from
        # the last snapshot: a risk to accept, never a reason to refuse a recovery.
        if server.replication_state != ReplicationState.CONTINUOUS:
            report.add(WARNING, "replication_unhealthy",
                       f"Server {name} replication is {server.replication_state}, not CONTINUOUS; "
                       f"{snapshot_age(server)}.", server)
        if server.lag_unknown:
            report.add(WARNING, "lag_unknown",
                       f"Server {name} reports a replication lag drsorch cannot read ({server.reported_lag!r}); "
                       f"its lag against the plan's RPO target of {plan.rpo_target_minutes} min is unknown.",
                       server)
        if server.lag_exceeds(plan.rpo_target_minutes):
            report.add(WARNING, "lag_above_rpo",
                       f"Server {name} lags {server.lag_seconds // 60} min behind, above the plan's RPO "
                       f"target of {plan.rpo_target_minutes} min; {snapshot_age(server)}.", server)


def _check_active_drs_jobs(report, targets, servers, job_holders=None):
    ids_by_target = {}
    for server in servers:
        ids_by_target.setdefault(server.target_id, {})[server.drs_id] = server
    for target in targets:
        wanted = ids_by_target.get(target.pk, {})
        try:
            jobs = gateway.active_jobs_since(target=target, since=timezone.now() - ACTIVE_JOB_LOOKBACK)
        except (BotoCoreError, ClientError) as exc:
            report.add(WARNING, "jobs_unchecked",
                       f"DRS could not be reached to list the active jobs of target '{target.name}' ({exc}); "
                       "a server may be held by a DRS job.")
            continue
        holding = [(job, [wanted[p.get("sourceServerID")] for p in job.get("participatingServers", [])
                          if p.get("sourceServerID") in wanted]) for job in jobs]
        holding = [(job, held) for job, held in holding if held]
        holders = job_holders({job["jobID"] for job, _ in holding}) if job_holders and holding else {}
        for job, held in holding:
            execution = holders.get(job["jobID"])
            # A job of a running drsorch execution holds servers of that execution, which the
            # executions' own check reports; any other job is DRS's, someone else's, or one an
            # ended drsorch execution still runs (a clean-up), which `job_holders` names.
            if execution is None and TAG_EXECUTION in (job.get("tags") or {}):
                continue
            for server in held:
                if execution is not None:
                    report.add(WARNING, "server_in_active_job",
                               f"Server {server.display_name} ({server.drs_id}) is held by active DRS job "
                               f"{job['jobID']} of drsorch execution {execution.pk} (plan "
                               f"'{execution.plan_name}', {execution.status}; e.g. its clean-up); DRS allows one "
                               "active job per server, so the engine waits for that job to end before launching "
                               "it.", server, execution=execution)
                else:
                    report.add(WARNING, "server_in_active_job",
                               f"Server {server.display_name} ({server.drs_id}) is held by active DRS job "
                               f"{job['jobID']}, which no drsorch execution started (a launch from outside "
                               "drsorch, or a clean-up); DRS allows one active job per server, so the engine "
                               "waits for that job to end before launching it.", server)


def _check_point_in_time(report, targets, servers, point):
    stamp = point.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    unreachable = set()
    for server in servers:
        if not server.in_drs or server.target_id in unreachable:
            continue
        name, target = f"{server.display_name} ({server.drs_id})", targets[server.target_id]
        try:
            snapshot = gateway.latest_recovery_snapshot(target=target, source_server_id=server.drs_id,
                                                        at_or_before=point, patient=True)
        except (BotoCoreError, ClientError) as exc:
            # One warning per target: every other server there would fail the same way.
            unreachable.add(server.target_id)
            report.add(WARNING, "snapshots_unchecked",
                       f"DRS could not be asked for the recovery snapshots of target '{target.name}' ({exc}); "
                       f"its servers may have no snapshot at or before {stamp}.", server)
            continue
        if snapshot is None:
            report.add(WARNING, "no_snapshot_at_point",
                       f"Server {name} has no recovery snapshot at or before {stamp}: DRS no longer holds (or "
                       "never took) one that old, so a point-in-time start fails this server rather than "
                       "launch it from a newer snapshot.", server)


def _launch_action_label(action):
    name = action.get("name") or action.get("actionCode") or action.get("actionId") or "?"
    notes = [note for note, present in (("inactive: DRS skips it", not action.get("active", True)),
                                        ("optional", action.get("optional"))) if present]
    return f"{name} ({', '.join(notes)})" if notes else name


def _launch_actions_of(target, source_server_ids):
    """ListLaunchActions of each server, one after another (a pool thread: DRS calls only)."""
    return {server_id: gateway.launch_actions(target=target, source_server_id=server_id)
            for server_id in source_server_ids}


def _check_drs_launch_actions(report, specs, resolved, targets):
    """Info per wave: the post-launch actions DRS itself runs on its servers' recovered
    instances (ListLaunchActions, one call per server, in the DRS pool), so a team
    sees both layers, DRS's and the plan's wave actions. Targets are asked at once, each in a
    few runs of calls (LAUNCH_ACTION_RUNS_PER_TARGET). A target DRS will not answer for them
    (AccessDenied, an outage) is one warning, never a failure of the readiness."""
    ids_by_target = {}
    for position in sorted(resolved):
        for server in resolved[position]:
            if server.in_drs:
                ids_by_target.setdefault(server.target_id, {})[server.drs_id] = None
    calls = {}
    for target_id, ids in ids_by_target.items():
        ids = list(ids)
        # A few runs of calls at once per target (its account's rate limit is DRS's own), a
        # small plan's in one run: one target's only run is made in the caller's thread.
        runs = min(LAUNCH_ACTION_RUNS_PER_TARGET, -(-len(ids) // LAUNCH_ACTION_SERVERS_PER_RUN))
        for run in range(runs):
            calls[(target_id, run)] = functools.partial(_launch_actions_of, targets[target_id], ids[run::runs])
    outcomes = per_target(calls)
    failed, found = {}, {}
    for (target_id, _), outcome in outcomes.items():
        if outcome.error is not None:
            failed.setdefault(target_id, outcome.error)
        else:
            found.update({(target_id, drs_id): actions for drs_id, actions in outcome.value.items()})
    for target_id, exc in failed.items():
        if not isinstance(exc, BotoCoreError | ClientError):
            raise exc
        # Info, not a warning: warnings block a start unless accepted, and a missing
        # drs:ListLaunchActions permission must never stand between a team and a recovery.
        report.add(INFO, "launch_actions_unchecked",
                   f"DRS could not be asked for the post-launch actions of target '{targets[target_id].name}' "
                   f"({exc}); the servers there may run post-launch actions of their own after launch.")
    for position, spec in enumerate(specs):
        by_actions = {}
        for server in resolved.get(position, []):
            actions = found.get((server.target_id, server.drs_id))
            if not actions:
                continue
            labels = tuple(_launch_action_label(action) for action in actions)
            by_actions.setdefault(labels, []).append(server)
        for labels, held in by_actions.items():
            names = ", ".join(server.display_name for server in held)
            report.add(INFO, "drs_launch_actions",
                       f"Wave '{spec.name}': post-launch actions on DRS run after the launch of {names}: "
                       f"{', '.join(labels)}. They are DRS's own, besides the plan's wave actions.",
                       held[0] if len(held) == 1 else None)


def _check_quotas(report, specs, resolved, servers):
    per_target = {}
    for server in servers:
        per_target.setdefault(server.target, 0)
        per_target[server.target] += 1
    for target, count in per_target.items():
        if count > MAX_SERVERS_IN_ACTIVE_JOBS:
            report.add(ERROR, "quota_servers",
                       f"The plan launches {count} servers in target '{target.name}', above DRS's limit of "
                       f"{MAX_SERVERS_IN_ACTIVE_JOBS} servers in active jobs per account and region.")
    for position, spec in enumerate(specs):
        count = len(resolved.get(position, []))
        jobs = -(-count // MAX_SERVERS_PER_JOB)
        if jobs > MAX_ACTIVE_JOBS_PER_TARGET:
            report.add(ERROR, "quota_jobs",
                       f"Wave '{spec.name}' needs {jobs} DRS jobs, above the limit of {MAX_ACTIVE_JOBS_PER_TARGET} "
                       "concurrent jobs.")
        elif count > MAX_SERVERS_PER_JOB:
            report.add(INFO, "split_jobs",
                       f"Wave '{spec.name}' has {count} servers; it is launched as {jobs} DRS jobs of at "
                       f"most {MAX_SERVERS_PER_JOB} servers.")


def _selectors_overlap(first, second):
    """Two tag selectors can match one server unless they demand different values of a key."""
    return all(first[key] == second[key] for key in set(first) & set(second))


def _check_overlapping_selectors(report, specs):
    groups = {g.pk: g for spec in specs for g in spec.protection_groups if g.tag_selector}
    ordered = sorted(groups.values(), key=lambda g: g.name)
    for i, first in enumerate(ordered):
        for second in ordered[i + 1:]:
            if first.target_id == second.target_id and _selectors_overlap(first.tag_selector, second.tag_selector):
                report.add(INFO, "overlapping_selectors",
                           f"Protection groups '{first.name}' and '{second.name}' have overlapping tag "
                           f"selectors ({first.tag_selector} and {second.tag_selector}): a server carrying "
                           "both sets of tags would be in both.")
