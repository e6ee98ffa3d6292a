"""What DRS holds in a target's account and region beyond our rows: every active job.

DRS counts every job of the account and region against its quotas (20 active jobs, 500
servers in active jobs), not only drsorch's, and a server in any active job (ours, a
colleague's drill, a clean-up's TERMINATE job) refuses StartRecovery with a ConflictException
that does not say which server. One DescribeJobs(fromDate) per target and tick, made only when
the target has launches to make, tells both: `TargetView`.

May import: rows (and drs, models, choices). Never jobs, job_log, launching, waves or ticks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from drsorch.drs import gateway
from drsorch.drs.constants import JobStatus
from plans.models import Target

from .rows import TickRows

# How far back the account's jobs are read. A launch job lasts minutes to an hour or two; an
# older job still active is not seen, and a conflict it causes is found by splitting the
# batch instead (launching.Launcher._isolate).
ACTIVE_JOB_LOOKBACK = timedelta(hours=6)


@dataclass
class TargetView:
    """The account's jobs as one DescribeJobs(fromDate) listed them this tick."""

    jobs: list[dict[str, Any]]
    # Source server id -> the id of the active job (any type) that holds it.
    busy: dict[str, str] = field(default_factory=dict)
    active_jobs: int = 0
    active_servers: int = 0
    listed_ids: set[str] = field(default_factory=set)

    @classmethod
    def from_jobs(cls, jobs: list[dict[str, Any]]) -> TargetView:
        """Index a DescribeJobs listing: which servers active jobs hold, and how many."""
        view = cls(jobs=jobs)
        for job in jobs:
            view.listed_ids.add(job["jobID"])
            if job.get("status") == JobStatus.COMPLETED:
                continue
            servers = job.get("participatingServers") or []
            view.active_jobs += 1
            view.active_servers += len(servers)
            for server in servers:
                view.busy.setdefault(server.get("sourceServerID"), job["jobID"])
        return view

    def quota_use(self, our_open_jobs: list[tuple[str | None, int]]) -> dict[str, int]:
        """Jobs and servers counting against DRS's quotas: every active job DRS listed (ours
        and others'), plus our open jobs it did not list (intents not yet seen, or jobs older
        than the lookback)."""
        unseen = [count for job_id, count in our_open_jobs if job_id is None or job_id not in self.listed_ids]
        return {"jobs": self.active_jobs + len(unseen), "servers": self.active_servers + sum(unseen)}


def fetch_target_jobs(target: Target, *, now: datetime) -> list[dict[str, Any]]:
    """The target's recent jobs as DRS lists them: DRS calls only, safe in a pool thread."""
    return list(gateway.jobs_since(target=target, since=now - ACTIVE_JOB_LOOKBACK))


def read_target(rows: TickRows, target: Target) -> TargetView:
    """List the target's recent jobs (raises what the DRS call raises), cache the view for the
    tick and make the target's quota use DRS's own count."""
    return apply_target_jobs(rows, target, fetch_target_jobs(target, now=rows.now))


def apply_target_jobs(rows: TickRows, target: Target, jobs: list[dict[str, Any]]) -> TargetView:
    """Cache the view of a listing fetch_target_jobs made, and make the target's quota use
    DRS's own count."""
    view = TargetView.from_jobs(jobs)
    rows.drs_views[target.pk] = view
    # In place: the launcher holds this dict while it fills the target's room.
    rows.quota_use[target.pk].update(view.quota_use(rows.our_open_jobs.get(target.pk, [])))
    return view
