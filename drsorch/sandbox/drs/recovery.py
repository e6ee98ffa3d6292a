"""StartRecovery: the request's checks, the quotas, the snapshots launched from, each server's
launch steps, the earlier instances it replaces, and the LAUNCH job with its rows; then the
one-shot crash hook. Also the outside drill of `sandbox configure --busy`.
"""

from datetime import datetime
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone

from .. import faults
from ..bulk import insert_rows
from ..history import history
from ..models import (
    SandboxJob,
    SandboxJobServer,
    SandboxRecoveryInstance,
    SandboxRecoverySnapshot,
    SandboxSettings,
    new_instance_id,
    new_snapshot_id,
)
from ..protocol import SNAPSHOT_ID_RE, SOURCE_SERVER_ID_RE, SandboxError, check_ids, validation_error
from ..simulation import (
    ServerSteps,
    cleanup_moments,
    is_disconnected,
    job_end,
    job_record,
    job_start,
    launch_moments,
)
from .common import MAX_SERVERS_PER_JOB, SERVICE_CODE, _check_capacity, _locked_settings, _named, _servers


def _check_start_request(body):
    requested = body.get("sourceServers")
    if not isinstance(requested, list) or not requested:
        raise validation_error("sourceServers must list at least one source server.", field="sourceServers")
    if len(requested) > 200:
        raise validation_error("sourceServers must contain at most 200 items.", field="sourceServers")
    ids, snapshots = [], {}
    for entry in requested:
        if not isinstance(entry, dict):
            raise validation_error("Each item of sourceServers must be an object.", field="sourceServers")
        server_id = entry.get("sourceServerID")
        check_ids([server_id], SOURCE_SERVER_ID_RE, field="sourceServers.sourceServerID", kind="source server ID")
        if server_id in ids:
            raise validation_error(f"Source server {server_id} is listed twice.", field="sourceServers")
        ids.append(server_id)
        if entry.get("recoverySnapshotID") is not None:
            check_ids([entry["recoverySnapshotID"]], SNAPSHOT_ID_RE,
                      field="sourceServers.recoverySnapshotID", kind="recovery snapshot ID")
            snapshots[server_id] = entry["recoverySnapshotID"]
    tags = body.get("tags") or {}
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise validation_error("tags must map strings to strings.", field="tags")
    is_drill = body.get("isDrill", False)
    if not isinstance(is_drill, bool):
        raise validation_error("isDrill must be a boolean.", field="isDrill")
    return ids, snapshots, tags, is_drill


class _Server(NamedTuple):
    """The columns of a source server StartRecovery reads."""

    pk: int
    source_server_id: str
    hostname: str
    fqdn: str
    tags: dict
    recommended_instance_type: str
    post_launch_actions: list
    replication_state: str
    disconnected_at: datetime | None
    snapshots_since: datetime | None


def _load_servers(scope, ids):
    rows = _servers(scope).filter(source_server_id__in=ids).values_list(*_Server._fields)
    found = {server.source_server_id: server for server in map(_Server._make, rows)}
    missing = [server_id for server_id in ids if server_id not in found]
    if missing:
        raise SandboxError(
            "ResourceNotFoundException",
            f"Source server(s) not found: {', '.join(missing)}.",
            resourceId=missing[0], resourceType="SOURCE_SERVER",
        )
    return [found[server_id] for server_id in ids]


def _stored(server_points):
    """The stored snapshot rows of (server, history Point) pairs, by server pk: a launch keeps
    the snapshot it starts from, whether a launch already stored it or it is stored now."""
    if not server_points:
        return {}
    ids = [point.snapshot_id for _server, point in server_points]
    existing = set(SandboxRecoverySnapshot.objects.filter(snapshot_id__in=ids).values_list("snapshot_id", flat=True))
    insert_rows(SandboxRecoverySnapshot, [
        {"snapshot_id": point.snapshot_id, "source_server_id": server.pk,
         "expected_timestamp": point.timestamp, "timestamp": point.timestamp}
        for server, point in server_points if point.snapshot_id not in existing
    ])
    rows = {row.snapshot_id: row for row in SandboxRecoverySnapshot.objects.filter(snapshot_id__in=ids)}
    return {server.pk: rows[point.snapshot_id] for server, point in server_points}


def _chosen_snapshots(servers, snapshot_ids, now):
    """The snapshot each server of the request chose (recoverySnapshotID), by server pk: one
    of its launches' stored snapshots or one of its history. A snapshot of another server, or
    one DRS does not hold, is a ValidationException, as DRS answers."""
    if not snapshot_ids:
        return {}
    rows = SandboxRecoverySnapshot.objects.filter(snapshot_id__in=snapshot_ids.values(), timestamp__lte=now)
    by_id = {row.snapshot_id: row for row in rows}
    chosen, from_history = {}, []
    for server in servers:
        wanted = snapshot_ids.get(server.source_server_id)
        if wanted is None:
            continue
        snapshot = by_id.get(wanted)
        if snapshot is not None and snapshot.source_server_id == server.pk:
            chosen[server.pk] = snapshot
            continue
        point = next((p for p in history(server, now) if p.snapshot_id == wanted), None)
        if point is None:
            raise validation_error(
                f"Recovery snapshot {wanted} is not a snapshot of source server {server.source_server_id}.",
                field="sourceServers.recoverySnapshotID",
            )
        from_history.append((server, point))
    return chosen | _stored(from_history)


def _previous_snapshots(servers, chosen, now):
    """The latest snapshot of each disconnected server the request chose none for, by server
    pk: a disconnected server takes no new snapshot, DRS launches it from what it holds (its
    history stops at the disconnection). A server missing from the answer has none at all."""
    disconnected = {s.pk: s for s in servers if s.pk not in chosen and is_disconnected(s)}
    if not disconnected:
        return {}
    latest = {}
    rows = SandboxRecoverySnapshot.objects.filter(source_server__in=list(disconnected), timestamp__lte=now)
    for snapshot in rows.order_by("source_server_id", "timestamp", "id"):
        cut = disconnected[snapshot.source_server_id].disconnected_at
        if cut is None or snapshot.timestamp <= cut:  # nothing taken after the disconnection counts
            latest[snapshot.source_server_id] = snapshot
    newer = []
    for pk, server in disconnected.items():
        points = history(server, now)
        if points and (pk not in latest or points[-1].timestamp > latest[pk].timestamp):
            newer.append((server, points[-1]))
    return latest | _stored(newer)


def _live_instances(servers, now):
    """The recovery instances of these servers that are up (launched, not being terminated),
    by server pk: DRS keeps one per source server and replaces it at the next launch. One query."""
    by_server = {}
    rows = SandboxRecoveryInstance.objects.filter(
        source_server__in=[s.pk for s in servers], launched_at__lte=now, terminate_job__isnull=True
    ).order_by("launched_at", "id")
    for instance in rows:
        by_server.setdefault(instance.source_server_id, []).append(instance)
    return by_server


def _error(server, *, failed, snapshot_failed):
    if snapshot_failed:
        return (f"Source server {server.source_server_id} is disconnected and has no recovery snapshot "
                f"to launch from.")
    return f"Launch of {server.hostname} failed: the sandbox is configured to fail it." if failed else ""


def _launch_steps(job, servers, *, chosen, previous, live, config, hold_seconds=None):
    """The ServerSteps of each server of a new LAUNCH job, in request order. `hold_seconds`
    (the outside drill of `busy`): every server launches in exactly that time, nothing fails
    and no post-launch action runs."""
    steps = []
    outside = hold_seconds is not None
    for position, server in enumerate(servers):
        snapshot_failed = is_disconnected(server) and server.pk not in chosen and server.pk not in previous
        failed = snapshot_failed or (not outside and _named(server, config.fail_launch))
        has_actions = bool(server.post_launch_actions) and not outside
        moments = launch_moments(
            created_at=job.created_at, job_id=job.job_id, server_id=server.source_server_id,
            launch_seconds=hold_seconds if outside else config.launch_seconds, has_actions=has_actions,
            failed=failed, spread=not outside,
        )
        steps.append(ServerSteps(
            server_id=server.source_server_id, position=position,
            used_previous_snapshot=server.pk in chosen or server.pk in previous or snapshot_failed,
            snapshot_failed=snapshot_failed, failed=failed,
            error=_error(server, failed=failed, snapshot_failed=snapshot_failed),
            post_launch_actions=server.post_launch_actions if has_actions else [],
            actions_failed=has_actions and not failed and _named(server, config.fail_post_launch),
            recovery_instance_id="" if failed else new_instance_id(),
            replaced_instance_ids=[] if snapshot_failed else [i.instance_id for i in live.get(server.pk, [])],
            **moments,
        ))
    return steps


def _take_snapshots(servers, steps, chosen):
    """(pk, timestamp) of the snapshot each server launches from, by server pk: the one the
    request chose (or the latest a disconnected server has), or a fresh one taken during the
    job. A server without any is left out."""
    fresh = [
        {"snapshot_id": new_snapshot_id(), "source_server_id": server.pk,
         "expected_timestamp": step.snapshot_start, "timestamp": step.snapshot_end}
        for server, step in zip(servers, steps, strict=True)
        if server.pk not in chosen and not step.used_previous_snapshot
    ]
    insert_rows(SandboxRecoverySnapshot, fresh)
    pks = dict(
        SandboxRecoverySnapshot.objects.filter(snapshot_id__in=[row["snapshot_id"] for row in fresh])
        .values_list("snapshot_id", "pk")
    ) if fresh else {}
    taken = {row["source_server_id"]: (pks[row["snapshot_id"]], row["timestamp"]) for row in fresh}
    return taken | {server_pk: (snapshot.pk, snapshot.timestamp) for server_pk, snapshot in chosen.items()}


def _job_server_columns(step):
    """The SandboxJobServer columns a ServerSteps holds: all but the server's DRS ID."""
    columns = step._asdict()
    del columns["server_id"]
    return columns


def _replace_instances(job, servers, steps, live):
    """Terminate the earlier instances each launch replaces: shutting down from CLEANUP_START,
    terminated at LAUNCH_START, from then on gone from DRS (EC2 still shows them). One query."""
    replaced = []
    for server, step in zip(servers, steps, strict=True):
        if not step.replaced_instance_ids:
            continue
        cleanup_start, cleanup_end = cleanup_moments(step)
        for instance in live[server.pk]:
            instance.terminate_job, instance.replaced = job, True
            instance.terminating_at, instance.terminated_at = cleanup_start, cleanup_end
            replaced.append(instance)
    if replaced:
        SandboxRecoveryInstance.objects.bulk_update(
            replaced, ["terminate_job", "replaced", "terminating_at", "terminated_at"]
        )


def _create_launch_job(scope, servers, *, chosen, tags, is_drill, config, now, hold_seconds=None):
    """Record a LAUNCH job, its servers' steps, their snapshots, the instances they launch and
    the earlier instances they replace."""
    job = SandboxJob(
        account_id=scope.account_id, region=scope.region, type="LAUNCH",
        initiated_by="START_DRILL" if is_drill else "START_RECOVERY", is_drill=is_drill, tags=tags,
        created_at=now, started_at=now if hold_seconds is not None else job_start(now, config.launch_seconds),
    )
    previous = _previous_snapshots(servers, chosen, now)
    live = _live_instances(servers, now)
    steps = _launch_steps(job, servers, chosen=chosen, previous=previous, live=live, config=config,
                          hold_seconds=hold_seconds)
    job.ends_at = job_end(job.started_at, [step._asdict() for step in steps])
    job.save(using="sandbox")
    snapshots = _take_snapshots(servers, steps, {**chosen, **previous})
    insert_rows(SandboxJobServer, [
        {"job_id": job.pk, "source_server_id": server.pk, "snapshot_id": snapshots.get(server.pk, (None,))[0],
         **_job_server_columns(step)}
        for server, step in zip(servers, steps, strict=True)
    ])
    insert_rows(SandboxRecoveryInstance, [
        {"instance_id": step.recovery_instance_id, "account_id": scope.account_id, "region": scope.region,
         "source_server_id": server.pk, "job_id": job.pk, "is_drill": is_drill,
         "instance_type": server.recommended_instance_type, "tags": {**server.tags, "Name": server.hostname},
         "point_in_time": snapshots[server.pk][1], "launched_at": step.launch_end, "replaced": False}
        for server, step in zip(servers, steps, strict=True) if not step.failed
    ])
    _replace_instances(job, servers, steps, live)
    return job, steps


def _check_job_size(servers):
    if len(servers) > MAX_SERVERS_PER_JOB:
        raise SandboxError(
            "ServiceQuotaExceededException",
            f"A job can launch at most {MAX_SERVERS_PER_JOB} source servers; {len(servers)} were requested.",
            serviceCode=SERVICE_CODE, quotaCode="servers-per-job", resourceType="SOURCE_SERVER",
        )


def _servers_for_a_new_job(scope, ids, now):
    """The servers a new LAUNCH job names, once DRS's checks pass: job size, one active job
    per server, the account's quotas (a SandboxError otherwise)."""
    servers = _load_servers(scope, ids)
    _check_job_size(servers)
    _check_capacity(scope, now, server_pks=[s.pk for s in servers], new_servers=len(servers))
    return servers


def start_recovery(scope, body):
    """StartRecovery: record a LAUNCH job; the crash hook may end the process afterwards."""
    ids, snapshot_ids, tags, is_drill = _check_start_request(body)
    with transaction.atomic(using="sandbox"):
        # Locking the settings row serializes concurrent StartRecovery calls, so two callers
        # can never both pass the one-active-job-per-server check.
        config = _locked_settings()
        now = timezone.now()
        servers = _servers_for_a_new_job(scope, ids, now)
        chosen = _chosen_snapshots(servers, snapshot_ids, now)
        job, job_servers = _create_launch_job(
            scope, servers, chosen=chosen, tags=tags, is_drill=is_drill, config=config, now=now
        )
    answer = {"job": job_record(job, job_servers, now, **scope.job_record_options())}
    if config.crash_after_start_recovery and _take_crash_flag():
        faults.crash_process()
    return 202, answer


def start_outside_drill(scope, source_server_ids, *, hold_seconds):
    """A drill that someone else started (no drsorch tags), holding these servers for
    `hold_seconds`: the job of `sandbox configure --busy`. It passes the same checks as any
    StartRecovery (a busy server or a full quota is a SandboxError) and counts against the quotas."""
    with transaction.atomic(using="sandbox"):
        config = _locked_settings()
        now = timezone.now()
        servers = _servers_for_a_new_job(scope, source_server_ids, now)
        job, _ = _create_launch_job(scope, servers, chosen={}, tags={}, is_drill=True, config=config, now=now,
                                    hold_seconds=hold_seconds)
    return job


def _take_crash_flag():
    """Clear the one-shot crash flag; True only for the one caller whose UPDATE cleared it."""
    return SandboxSettings.objects.filter(pk=1, crash_after_start_recovery=True).update(
        crash_after_start_recovery=False
    ) == 1
