"""One tick: claim the executions that need work, advance them by one step, save, release.

A tick polls their DRS jobs (one DescribeJobs call per target for all of them), applies what
DRS says, moves waves and executions along, starts the jobs that are due, reads a few job
logs and saves everything in bulk. Every decision is derived from the stored rows, so running
a tick twice, or after a crash at any line, recomputes the same state instead of repeating
actions.

The top of the engine: may import every other engine module; none imports it.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from drsorch import metrics
from drsorch.drs import gateway
from executions.choices import JobType
from executions.models import Execution

from . import cleanup, evidence, job_log, jobs, waves
from .launching import Launcher
from .lease import LeaseLost, claim_executions, executions_needing_work, release_executions, worker_identity
from .rows import TickRows

logger = logging.getLogger(__name__)


@dataclass
class TickResult:
    """What one tick did, for the poller loop and the benchmark."""

    claimed: int = 0
    remaining: int = 0
    jobs_started: int = 0
    drs_calls: int = 0


@metrics.record_tick
def tick(
    *,
    execution_ids: Iterable[object] | None = None,
    owner: str | None = None,
    launch_budget_seconds: float | None = None,
) -> TickResult:
    """Advance every execution that needs work (or only `execution_ids`) by one step.

    `launch_budget_seconds` is how long the tick may spend starting DRS jobs (at least one
    job always starts); None means no limit. The poller gives it a share of its poll interval."""
    owner = owner or worker_identity()
    calls_before = gateway.calls_made()
    claimed = claim_executions(execution_ids=execution_ids, owner=owner)
    result = TickResult(claimed=len(claimed))
    if claimed:
        try:
            result.jobs_started = advance(TickRows(claimed, owner=owner), launch_budget_seconds=launch_budget_seconds)
        finally:
            release_executions(claimed, owner=owner)
    result.remaining = executions_needing_work(execution_ids=execution_ids).count()
    result.drs_calls = gateway.calls_made() - calls_before
    if claimed:
        _freeze_warm_heap()
    return result


_heap_frozen = False


def _freeze_warm_heap() -> None:
    """Once per process, after its first tick with work: collect, then freeze what is left out
    of the garbage collector's scans. What that tick loaded (botocore's service models, the
    boto3 clients, Django's and django-q2's state) lives as long as the process, and every
    full collection scanned it again: 60-90 ms pauses, several per busy tick, at 100
    executions (docs/benchmarks.md). Objects made later are collected as usual."""
    global _heap_frozen
    if _heap_frozen:
        return
    _heap_frozen = True
    gc.collect()
    gc.freeze()


def advance(rows: TickRows, *, launch_budget_seconds: float | None = None) -> int:
    """Run one pass over loaded rows and save them; the number of DRS jobs started.

    `launch_budget_seconds` is how long starting jobs may take, counted from the first
    StartRecovery round, not from the tick's start: polling ten targets at DRS's latency must
    not eat the launches' share (None: no limit)."""
    launcher = Launcher(rows, budget_seconds=launch_budget_seconds)
    # The recovery instances of the servers that just launched are read while the next waves'
    # jobs start: only the ended waves' evidence needs them, and it is applied before any
    # execution's status is judged (evidence.apply_instance_reads).
    instance_reads = jobs.poll_jobs(
        rows, [job for job in rows.jobs.values() if job.type == JobType.LAUNCH], instances_later=True
    )
    # Targets DRS has not answered for too long stop holding their executions (bounded wait).
    jobs.give_up_unreachable(rows)
    # The logs are read while the waves launch: no decision waits on them, so neither the next
    # wave's StartRecovery nor the tick waits one more round of DRS's latency for them.
    log_reads = job_log.start_log_reads(rows)
    _step_executions(rows, launcher, instance_reads)
    # Clean-ups after the launches: a person waiting for a launch goes first.
    cleanup.step_cleanups(rows)
    job_log.apply_log_reads(rows, log_reads)
    rows.settle_trouble()
    rows.save()
    return launcher.jobs_started


def _step_executions(rows: TickRows, launcher: Launcher, instance_reads: evidence.InstanceReads | None) -> None:
    moving: list[Execution] = [execution for execution in rows.executions.values() if waves.step_waves(rows, execution)]
    rows.load_started_waves()
    # Every execution's launches together: the jobs of different targets start at once.
    launcher.submit_all(moving)
    if instance_reads is not None:
        evidence.apply_instance_reads(rows, instance_reads)
    for execution in moving:
        if execution.pk in rows.lost:
            continue
        try:
            waves.step_execution_status(rows, execution)
        except LeaseLost:
            logger.warning("Lost the lease of execution %s mid-tick; another worker continues it.", execution.pk)
            rows.lost.add(execution.pk)
