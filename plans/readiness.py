"""Readiness of a recovery plan: can it start now, and what should its owner fix first?

These are the checks plans can make alone. `executions.readiness.plan_readiness` adds the
checks that need executions (the plan or a server already running) through `server_checks`;
every caller that decides whether a plan can start uses that one.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.core.exceptions import ValidationError
from django.utils import timezone

from drsorch.drs import gateway
from drsorch.drs.constants import MAX_ACTIVE_JOBS_PER_TARGET, MAX_SERVERS_IN_ACTIVE_JOBS, MAX_SERVERS_PER_JOB

from . import services
from .choices import ReplicationState
from .models import RecoveryPlan, SourceServer

logger = logging.getLogger(__name__)

ERROR = "error"
WARNING = "warning"

ACTIVE_JOB_LOOKBACK = timedelta(days=2)


@dataclass
class ReadinessCheck:
    """One finding: `severity` is "error" (blocks a start) or "warning"."""

    severity: str
    code: str
    message: str
    server: SourceServer | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "source_server_id": self.server.drs_id if self.server else None,
            "hostname": self.server.hostname if self.server else None,
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
        return [c for c in self.checks if c.severity == ERROR]

    @property
    def warnings(self) -> list[ReadinessCheck]:
        return [c for c in self.checks if c.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, severity: str, code: str, message: str, server: SourceServer | None = None) -> None:
        self.checks.append(ReadinessCheck(severity, code, message, server))

    def as_json(self) -> dict[str, Any]:
        return {
            "plan": {"id": self.plan.pk, "name": self.plan.name},
            "ready": self.ok,
            "checked_at": self.checked_at.isoformat().replace("+00:00", "Z") if self.checked_at else None,
            "server_count": len(self.servers),
            "checks": [c.as_json() for c in self.checks],
        }


# A check of the plan's resolved servers that another app adds: it reports with report.add().
ServerCheck = Callable[[ReadinessReport, RecoveryPlan, list[SourceServer]], None]


def plan_readiness(*, plan: RecoveryPlan, live: bool = True,
                   server_checks: Sequence[ServerCheck] = ()) -> ReadinessReport:
    """Check that `plan` can start now. With `live`, the inventory of the plan's targets is
    refreshed from DRS and DRS is asked for active jobs first; without it only stored data
    is used (fast enough for a dashboard).

    `server_checks` run right after the checks of each server's replication, in order, with
    the report, the plan and its resolved servers.
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
    if live:
        _refresh_inventory(report, targets.values())
        fresh = SourceServer.objects.in_bulk([s.pk for s in servers])
        servers = [fresh[s.pk] for s in servers if s.pk in fresh]
    report.servers = servers

    _check_servers(report, plan, servers)
    for check in server_checks:
        check(report, plan, servers)
    if live:
        _check_active_drs_jobs(report, targets.values(), servers)
    _check_quotas(report, specs, resolved, servers)
    _check_overlapping_selectors(report, specs)
    return report


def _refresh_inventory(report, targets):
    for target in targets:
        try:
            services.source_servers_sync(target=target)
        except (BotoCoreError, ClientError) as exc:
            report.add(WARNING, "inventory_stale",
                       f"Could not refresh the inventory of target '{target.name}' from DRS ({exc}); "
                       "checks use the last synced data.")


def _check_servers(report, plan, servers):
    for server in servers:
        name = f"{server.display_name} ({server.drs_id})"
        if not server.in_drs:
            report.add(ERROR, "unknown_to_drs", f"Server {name} is no longer known to DRS.", server)
            continue
        if server.replication_state != ReplicationState.CONTINUOUS:
            report.add(ERROR, "replication_unhealthy",
                       f"Server {name} replication is {server.replication_state}; it must be CONTINUOUS.",
                       server)
        if server.lag_exceeds(plan.rpo_target_minutes):
            report.add(ERROR, "lag_above_rpo",
                       f"Server {name} lags {server.lag_seconds // 60} min behind, above the plan's RPO "
                       f"target of {plan.rpo_target_minutes} min.", server)


def _check_active_drs_jobs(report, targets, servers):
    ids_by_target = {}
    for server in servers:
        ids_by_target.setdefault(server.target_id, {})[server.drs_id] = server
    for target in targets:
        wanted = ids_by_target.get(target.pk, {})
        try:
            for job in gateway.active_jobs_since(target=target, since=timezone.now() - ACTIVE_JOB_LOOKBACK):
                for participant in job.get("participatingServers", []):
                    server = wanted.get(participant.get("sourceServerID"))
                    if server:
                        report.add(ERROR, "server_in_active_job",
                                   f"Server {server.display_name} ({server.drs_id}) is in active DRS "
                                   f"job {job['jobID']}; DRS allows one active job per server.", server)
        except (BotoCoreError, ClientError) as exc:
            report.add(WARNING, "jobs_unchecked",
                       f"Could not list active DRS jobs of target '{target.name}' ({exc}).")


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
            report.add(WARNING, "split_jobs",
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
                report.add(WARNING, "overlapping_selectors",
                           f"Protection groups '{first.name}' and '{second.name}' have overlapping tag "
                           f"selectors ({first.tag_selector} and {second.tag_selector}): a server carrying "
                           "both sets of tags would be in both.")
