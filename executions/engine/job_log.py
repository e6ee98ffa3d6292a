"""DRS job logs: the phase of each server (snapshot, conversion, launch) and the DRS events.

DRS shows a server's phase and its failure reasons only in the job log. A few logs are read
per target and tick; their items become deduplicated events and launch phases, and a job
whose servers are all settled closes once its final log has been read.

May import: rows, times (and drs, models, choices). Never jobs, launching, waves or ticks.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drsorch.drs import errors as drs_errors
from drsorch.drs import gateway
from drsorch.drs.concurrency import Outcome, per_target_started
from drsorch.drs.constants import FAILURE_LOG_EVENTS, REPLACEMENT_LOG_EVENTS
from drsorch.drs.times import parse_drs_time
from executions.choices import EventKind, JobState, JobType, LaunchPhase, LaunchStatus
from executions.models import DrsJob, ServerLaunch
from plans.models import Target

from .rows import TickRows

logger = logging.getLogger(__name__)

LOG_REFRESH_SECONDS = 10
LOG_READS_PER_TARGET_PER_TICK = 2

PHASE_OF_LOG_EVENT = {
    "JOB_START": LaunchPhase.STARTING,
    "SNAPSHOT_START": LaunchPhase.SNAPSHOT,
    "SNAPSHOT_END": LaunchPhase.SNAPSHOT,
    "USING_PREVIOUS_SNAPSHOT": LaunchPhase.SNAPSHOT,
    "CONVERSION_START": LaunchPhase.CONVERSION,
    "CONVERSION_END": LaunchPhase.CONVERSION,
    "LAUNCH_START": LaunchPhase.LAUNCHING,
}
# What a failure event means when DRS gives no rawError with it.
FAILURE_MEANING = {
    "SERVER_SKIPPED": "DRS skipped the server",
    "CLEANUP_FAIL": "DRS could not terminate the server's previous recovery instance",
    "JOB_CANCEL": "the DRS job was cancelled",
    "DEPLOY_NETWORK_CONFIGURATION_FAILED": "the network configuration could not be deployed",
    "UPDATE_NETWORK_CONFIGURATION_FAILED": "the network configuration could not be updated",
    "UPDATE_LAUNCH_TEMPLATE_FAILED": "the launch template could not be updated",
    "NETWORK_RECOVERY_FAIL": "network recovery failed",
}
DEDUPE_KEY_MAX = 200  # ExecutionEvent.dedupe_key's length


def log_item_key(job_id: str, item: dict[str, Any]) -> str:
    """The dedupe key of a job log item, from its content: DRS may list the items of a log in
    another order, or insert some, between two reads, so a position identifies nothing."""
    data = item.get("eventData") or {}
    key = ":".join(
        [
            job_id,
            item.get("event", ""),
            str(item.get("logDateTime", "")),
            data.get("sourceServerID", ""),
            data.get("targetInstanceID", ""),
        ]
    )
    if len(key) <= DEDUPE_KEY_MAX:
        return key
    return f"{job_id}:{hashlib.sha256(key.encode()).hexdigest()}"


def describe_log_item(job_id: str, name: str, who: str, data: dict[str, Any]) -> str:
    """The event log's line for one job log item."""
    text = f"{job_id}: {name}" + (f" ({who})" if who else "")
    if name in REPLACEMENT_LOG_EVENTS and data.get("targetInstanceID"):
        verb = "terminating" if name == "CLEANUP_START" else "terminated"
        text += (
            f": DRS is {verb} the previous recovery instance {data['targetInstanceID']}, "
            "replaced by this launch (DRS keeps one recovery instance per source server)"
        )
    elif name in FAILURE_LOG_EVENTS:
        text += f": {data.get('rawError') or FAILURE_MEANING.get(name, 'no reason given')}"
    return text


@dataclass
class LogReads:
    """Job log reads under way: which logs, and the function that waits for DRS's answers."""

    due: list[tuple[object, DrsJob]]
    answers: Callable[[], dict[object, Outcome]]


def read_all_logs(rows: TickRows) -> None:
    """Read a few job logs of every target and apply them (start_log_reads, apply_log_reads)."""
    apply_log_reads(rows, start_log_reads(rows))


def start_log_reads(rows: TickRows) -> LogReads:
    """Choose a few job logs of every target and start reading them, all at once, in the
    background (drsorch.drs.concurrency.per_target_started): the tick starts the next waves'
    jobs meanwhile, since no decision waits on a log. The logs are chosen here and applied by
    apply_log_reads, both in the tick's thread; only the calls run in the pool."""
    by_target = defaultdict(list)
    for job in rows.jobs.values():
        by_target[job.target_id].append(job)
    due = [(target_id, job) for target_id, jobs in by_target.items() for job in logs_due(rows, jobs)]
    answers = per_target_started(
        {
            job.pk: functools.partial(gateway.job_log_items, target=rows.targets[target_id], job_id=job.job_id)
            for target_id, job in due
        }
    )
    return LogReads(due=due, answers=answers)


def apply_log_reads(rows: TickRows, reads: LogReads) -> None:
    """Wait for the log reads start_log_reads began and apply them; a target DRS did not
    answer waits for the next tick."""
    due, answers = reads.due, reads.answers()
    final_error = None
    for target_id, job in due:
        outcome = answers[job.pk]
        if outcome.error is None:
            _apply_read(rows, job, outcome.value)
        elif not drs_errors.is_transient(outcome.error):
            # Raised once every other log is applied (they are not this one's fault).
            final_error = final_error or outcome.error
        else:
            logger.info("DRS did not answer a log read for target %s: %s", rows.targets[target_id].name, outcome.error)
    if final_error is not None:
        raise final_error


def read_logs(rows: TickRows, target: Target, jobs: list[DrsJob]) -> None:
    """Read a few job logs of one target (logs_due) and apply them, in this thread."""
    for job in logs_due(rows, jobs):
        _apply_read(rows, job, gateway.job_log_items(target=target, job_id=job.job_id))


def logs_due(rows: TickRows, jobs: list[DrsJob]) -> list[DrsJob]:
    """The logs to read of one target this tick: first those of finished jobs (their last
    events, then the job closes), then the active jobs read longest ago (DRS shows the
    snapshot/conversion/launch phase only in the log). Nothing waits on a log, so the
    cap keeps a tick short when many jobs finish at once."""
    readable = [j for j in jobs if j.job_id and j.type == JobType.LAUNCH and j.state == JobState.ACTIVE]
    final = [j for j in readable if j.pk in rows.final_log_due]
    stale = sorted(
        (
            j
            for j in readable
            if j.pk not in rows.final_log_due
            and (j.log_read_at is None or (rows.now - j.log_read_at).total_seconds() >= LOG_REFRESH_SECONDS)
        ),
        key=lambda j: j.log_read_at or datetime.min.replace(tzinfo=rows.now.tzinfo),
    )
    return (final + stale)[:LOG_READS_PER_TARGET_PER_TICK]


def _apply_read(rows: TickRows, job: DrsJob, items: list[dict[str, Any]]) -> None:
    apply_log(rows, job, items)
    if job.pk in rows.final_log_due:
        job.state = JobState.COMPLETED


def apply_log(rows: TickRows, job: DrsJob, items: list[dict[str, Any]]) -> None:
    """Turn the log items of `job` into launch phases, failure reasons, recovery instance ids
    and DRS events (each recorded once, whatever the order DRS lists them in)."""
    launches = rows.launches_by_job.get(job.pk, {})
    wave = rows.wave_of(job)
    for item in items:
        name = item.get("event", "")
        data = item.get("eventData") or {}
        server_id = data.get("sourceServerID", "")
        launch = launches.get(server_id)
        if launch is None and server_id and name in FAILURE_LOG_EVENTS:
            rows.late_failure(job, server_id, failure_text(name, data), parse_drs_time(item.get("logDateTime")))
        targets = [launch] if launch else (list(launches.values()) if not server_id else [])
        for each in targets:
            _apply_item(rows, each, name, data, parse_drs_time(item.get("logDateTime")))
        who = (launch.hostname or server_id) if launch else server_id
        rows.event(
            job.execution_id,
            EventKind.DRS,
            describe_log_item(job.job_id, name, who, data),
            wave=wave,
            source_server_id=server_id,
            data=data,
            dedupe_key=log_item_key(job.job_id, item),
            at=parse_drs_time(item.get("logDateTime")),
        )
    job.log_items_seen = max(job.log_items_seen, len(items))
    job.log_read_at = rows.now
    rows.touch(job)


def failure_text(name: str, data: dict[str, Any]) -> str:
    """A failure log event as the launch's error: the event and DRS's own words."""
    return f"{name}: {data.get('rawError') or FAILURE_MEANING.get(name, 'no reason given')}"


def _apply_item(rows: TickRows, launch: ServerLaunch, name: str, data: dict[str, Any], at: datetime | None) -> None:
    if name in FAILURE_LOG_EVENTS and launch.status != LaunchStatus.LAUNCHED:
        # The log holds the reason DRS gives nowhere else; it may arrive after the job
        # already reported the server FAILED. Its time is when DRS failed the launch.
        launch.error = failure_text(name, data)
        launch.ended_at = at or launch.ended_at
        rows.touch(launch)
    elif (
        name in PHASE_OF_LOG_EVENT
        and launch.phase != PHASE_OF_LOG_EVENT[name]
        and launch.status not in (LaunchStatus.LAUNCHED, LaunchStatus.FAILED, LaunchStatus.TERMINATED)
    ):
        launch.phase = PHASE_OF_LOG_EVENT[name]
        rows.touch(launch)
    if name == "LAUNCH_START" and data.get("targetInstanceID") and not launch.recovery_instance_id:
        # DRS does not always fill participatingServers[].recoveryInstanceID (drs-facts 8):
        # the instance it launches is named here too, and a clean-up needs it.
        launch.recovery_instance_id = data["targetInstanceID"]
        rows.touch(launch)
