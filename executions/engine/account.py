"""What DRS holds in a target's account and region beyond our rows: every active job.

DRS counts every job of the account and region against its quotas (20 active jobs, 500
servers in active jobs), not only drsorch's, and a server in any active job (ours, a
colleague's drill, a clean-up's TERMINATE job) refuses StartRecovery with a ConflictException
that does not say which server. One DescribeJobs(fromDate) per target and tick, made only when
the target has launches to make, tells both: `TargetView`.

May import: rows, times (and drs, models, choices). Never jobs, job_log, launching, waves or ticks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from drsorch.drs import gateway
from drsorch.drs.constants import JobStatus
from drsorch.drs.times import parse_drs_time
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


# Where this process's next listing of an account may start ((account, region) -> time): the creation of
# the oldest job its last listing showed active, or that listing's time when none was, less
# LISTING_SLACK. Every job active now was active then or was created since, so a listing from
# there sees all of them, without re-reading hours of completed jobs and their servers (a busy
# account's listing was most of a tick's parsing). Written in the tick's thread, read in pool
# threads; a process that has not listed a target yet reads the whole lookback.
_listing_floor: dict[tuple[str, str], datetime] = {}
# DRS's clock against ours, and a job created just before a listing but not yet in it.
LISTING_SLACK = timedelta(minutes=5)


def _account(target: Target) -> tuple[str, str]:
    return (target.account_id, target.region)


def listing_since(target: Target, *, now: datetime, reach_back: datetime | None = None) -> datetime:
    """The fromDate of the target's next listing: the floor its last listing left, never older
    than the lookback, and reaching back to `reach_back` (the stale intents a listing is also
    searched for) when that is older."""
    since = max(now - ACTIVE_JOB_LOOKBACK, _listing_floor.get(_account(target), now - ACTIVE_JOB_LOOKBACK))
    if reach_back is not None:
        since = min(since, reach_back)
    return since


def fetch_target_jobs(target: Target, *, now: datetime, reach_back: datetime | None = None) -> list[dict[str, Any]]:
    """The target's recent jobs as DRS lists them (from listing_since): DRS calls only, safe
    in a pool thread."""
    return list(gateway.jobs_since(target=target, since=listing_since(target, now=now, reach_back=reach_back)))


def read_target(rows: TickRows, target: Target) -> TargetView:
    """List the target's recent jobs (raises what the DRS call raises), cache the view for the
    tick and make the target's quota use DRS's own count."""
    return apply_target_jobs(rows, target, fetch_target_jobs(target, now=rows.now))


def forget_listing_floors() -> None:
    """Make every next listing read the whole lookback (tests, a restored database)."""
    _listing_floor.clear()


def apply_target_jobs(rows: TickRows, target: Target, jobs: list[dict[str, Any]]) -> TargetView:
    """Cache the view of a listing fetch_target_jobs made, make the target's quota use DRS's
    own count, and remember where the next listing may start."""
    view = TargetView.from_jobs(jobs)
    active_since = [
        parse_drs_time(job.get("creationDateTime")) for job in jobs if job.get("status") != JobStatus.COMPLETED
    ]
    if all(created is not None for created in active_since):
        _listing_floor[_account(target)] = min([*active_since, rows.now]) - LISTING_SLACK
    else:
        _listing_floor.pop(_account(target), None)  # an active job without a date: read the whole lookback
    rows.drs_views[target.pk] = view
    # In place: the launcher holds this dict while it fills the target's room.
    rows.quota_use[target.pk].update(view.quota_use(rows.our_open_jobs.get(target.pk, [])))
    return view
