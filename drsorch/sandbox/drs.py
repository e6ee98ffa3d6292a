"""The simulated DRS API: one function per operation, JSON request in, JSON answer out.

Each function takes the account/region `scope` and the parsed request body and returns
(HTTP status, answer) or raises SandboxError. Reads derive every status from the moments
stored on the rows (see simulation.py) and the current time.
"""

from collections import defaultdict
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import unquote

from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.utils import timezone

from . import faults
from .bulk import insert_rows
from .models import (
    SandboxJob,
    SandboxJobServer,
    SandboxRecoveryInstance,
    SandboxRecoverySnapshot,
    SandboxSettings,
    SandboxSourceServer,
    new_instance_id,
    new_snapshot_id,
)
from .protocol import (
    INSTANCE_ID_RE,
    JOB_ID_RE,
    SNAPSHOT_ID_RE,
    SOURCE_SERVER_ID_RE,
    SandboxError,
    check_ids,
    iso,
    iso_duration,
    paged,
    parse_iso,
    validation_error,
    with_token,
)
from .simulation import (
    ServerStatus,
    ServerSteps,
    derived_hex,
    job_end,
    job_log,
    job_record,
    job_start,
    launch_moments,
    launch_status,
    terminate_moments,
)

MAX_ACTIVE_JOBS = 20
MAX_SERVERS_PER_JOB = 100
MAX_SERVERS_IN_ACTIVE_JOBS = 500
SERVICE_CODE = "drs"
# Pages without maxResults: source servers come 200 at a time (callers must follow
# nextToken); jobs come 1000 at a time, so DescribeJobs of up to 1000 job IDs is one call.
SOURCE_SERVERS_PAGE = 200


@dataclass(frozen=True)
class Scope:
    """The account and region a client talks to."""

    account_id: str
    region: str

    def filter(self, queryset):
        return queryset.filter(account_id=self.account_id, region=self.region)


def _servers(scope):
    return scope.filter(SandboxSourceServer.objects.all())


def _active_jobs(scope, now):
    return scope.filter(SandboxJob.objects.filter(ends_at__gt=now))


def _servers_by_job(job_pks, row_type):
    """The participating servers of each job (by job pk), in request order, in one query, as
    `row_type` (ServerSteps or ServerStatus, whose fields name the columns read)."""
    columns = ["source_server__source_server_id" if name == "server_id" else name for name in row_type._fields]
    rows = (
        SandboxJobServer.objects.filter(job__in=job_pks).order_by("job_id", "position")
        .values_list("job_id", *columns)
    )
    by_job = defaultdict(list)
    for job_pk, *values in rows:
        by_job[job_pk].append(row_type._make(values))
    return by_job


def _steps_of(job_server, server_id):
    """The ServerSteps of a SandboxJobServer just created for the server `server_id`."""
    return ServerSteps(server_id, *(getattr(job_server, name) for name in ServerSteps._fields[1:]))


# --- DescribeSourceServers -------------------------------------------------------------------

def _latest_launches(servers):
    latest = (
        SandboxJobServer.objects.filter(source_server=OuterRef("pk"), job__type="LAUNCH")
        .order_by("-job__created_at", "-id").values("pk")[:1]
    )
    return servers.annotate(last_job_server=Subquery(latest))


def _live_instance_ids(server_pks, now):
    """The newest running recovery instance of each server, by server pk."""
    rows = (
        SandboxRecoveryInstance.objects.filter(source_server__in=server_pks, launched_at__lte=now)
        .filter(Q(terminated_at__isnull=True) | Q(terminated_at__gt=now))
        .order_by("launched_at", "id").values_list("source_server_id", "instance_id")
    )
    return dict(rows)


def _last_launch(job_server, now):
    if job_server is None:
        return {}, "NOT_STARTED"
    job = job_server.job
    status = launch_status(job, job_server, now)
    result = {"LAUNCHED": "SUCCEEDED", "FAILED": "FAILED"}.get(status, "PENDING")
    last_launch = {
        "initiated": {
            "apiCallDateTime": iso(job.created_at),
            "jobID": job.job_id,
            "type": "DRILL" if job.is_drill else "RECOVERY",
        },
        "status": status,
    }
    return last_launch, result


def source_server_record(server, job_server, live_instance_id, now):
    """The SourceServer shape of DescribeSourceServers."""
    last_launch, last_result = _last_launch(job_server, now)
    seen = server.created_at if server.replication_state == "DISCONNECTED" else now
    replicated = 0 if server.replication_state in ("INITIATING", "INITIAL_SYNC") else server.disk_bytes
    life_cycle = {
        "addedToServiceDateTime": iso(server.created_at),
        "firstByteDateTime": iso(server.created_at),
        "elapsedReplicationDuration": iso_duration((now - server.created_at).total_seconds()),
        "lastSeenByServiceDateTime": iso(seen),
    }
    if last_launch:
        life_cycle["lastLaunch"] = last_launch
    record = {
        "sourceServerID": server.source_server_id,
        "arn": server.arn,
        "tags": dict(server.tags),
        "lastLaunchResult": last_result,
        "dataReplicationInfo": {
            "lagDuration": iso_duration(server.lag_seconds),
            "dataReplicationState": server.replication_state,
            "replicatedDisks": [{
                "deviceName": "/dev/xvda",
                "totalStorageBytes": server.disk_bytes,
                "replicatedStorageBytes": replicated,
                "rescannedStorageBytes": 0,
                "backloggedStorageBytes": 0,
            }],
            "stagingAvailabilityZone": f"{server.region}a",
        },
        "lifeCycle": life_cycle,
        "sourceProperties": {
            "lastUpdatedDateTime": iso(server.created_at),
            "recommendedInstanceType": server.recommended_instance_type,
            "identificationHints": {"hostname": server.hostname, "fqdn": server.fqdn},
            "disks": [{"deviceName": "/dev/xvda", "bytes": server.disk_bytes}],
            "cpus": [{"cores": server.cpu_cores, "modelName": "Intel(R) Xeon(R) Platinum 8259CL"}],
            "ramBytes": server.ram_bytes,
            "os": {"fullString": server.os_name},
            "supportsNitroInstances": True,
            "architecture": "x86_64",
        },
        "replicationDirection": "FAILOVER",
    }
    if live_instance_id:
        record["recoveryInstanceId"] = live_instance_id
    return record


def describe_source_servers(scope, body):
    """DescribeSourceServers: filters.sourceServerIDs, paginated."""
    filters = body.get("filters") or {}
    ids = check_ids(filters.get("sourceServerIDs"), SOURCE_SERVER_ID_RE, field="filters.sourceServerIDs",
                    kind="source server ID", maximum=200)
    servers = _servers(scope).order_by("created_at", "id")
    if ids:
        servers = servers.filter(source_server_id__in=ids)
    now = timezone.now()
    page, token = paged(_latest_launches(servers), body, default_size=SOURCE_SERVERS_PAGE)
    job_servers = SandboxJobServer.objects.select_related("job").in_bulk(
        [s.last_job_server for s in page if s.last_job_server]
    )
    live = _live_instance_ids([s.pk for s in page], now)
    items = [
        source_server_record(s, job_servers.get(s.last_job_server), live.get(s.pk), now) for s in page
    ]
    return 200, with_token({"items": items}, token)


# --- StartRecovery ---------------------------------------------------------------------------

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


def _locked_settings():
    """The settings row, locked until the transaction ends (created first if need be)."""
    config = SandboxSettings.objects.select_for_update().filter(pk=SandboxSettings.PK).first()
    if config is None:
        SandboxSettings.load()
        config = SandboxSettings.objects.select_for_update().get(pk=SandboxSettings.PK)
    return config


def _check_capacity(scope, now, *, server_pks, new_servers):
    active = _active_jobs(scope, now)
    busy = (
        SandboxJobServer.objects.filter(job__in=active, source_server__in=server_pks)
        .order_by("id").values_list("source_server__source_server_id", "job__job_id").first()
    )
    if busy:
        server_id, job_id = busy
        raise SandboxError(
            "ConflictException",
            f"Source server {server_id} is already part of the active job {job_id}.",
            resourceId=server_id, resourceType="SOURCE_SERVER",
        )
    counts = active.aggregate(jobs=Count("id", distinct=True), servers=Count("servers"))
    if counts["jobs"] >= MAX_ACTIVE_JOBS:
        raise SandboxError(
            "ServiceQuotaExceededException",
            f"Cannot start another job: {MAX_ACTIVE_JOBS} jobs are already in progress in this account and region.",
            serviceCode=SERVICE_CODE, quotaCode="concurrent-jobs", resourceType="JOB",
        )
    in_flight = counts["servers"]
    if in_flight + new_servers > MAX_SERVERS_IN_ACTIVE_JOBS:
        raise SandboxError(
            "ServiceQuotaExceededException",
            f"Cannot start a job of {new_servers} servers: {in_flight} servers are already in active jobs and "
            f"at most {MAX_SERVERS_IN_ACTIVE_JOBS} may be.",
            serviceCode=SERVICE_CODE, quotaCode="servers-in-active-jobs", resourceType="SOURCE_SERVER",
        )


class _Server(NamedTuple):
    """The columns of a source server StartRecovery reads."""

    pk: int
    source_server_id: str
    hostname: str
    fqdn: str
    tags: dict
    recommended_instance_type: str
    post_launch_actions: list


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


def _chosen_snapshots(servers, snapshot_ids, now):
    if not snapshot_ids:
        return {}
    rows = SandboxRecoverySnapshot.objects.filter(
        snapshot_id__in=snapshot_ids.values(), timestamp__lte=now
    ).select_related("source_server")
    by_id = {row.snapshot_id: row for row in rows}
    chosen = {}
    for server in servers:
        wanted = snapshot_ids.get(server.source_server_id)
        if wanted is None:
            continue
        snapshot = by_id.get(wanted)
        if snapshot is None or snapshot.source_server_id != server.pk:
            raise SandboxError(
                "ResourceNotFoundException",
                f"Recovery snapshot {wanted} of source server {server.source_server_id} not found.",
                resourceId=wanted, resourceType="RECOVERY_SNAPSHOT",
            )
        chosen[server.pk] = snapshot
    return chosen


def _fails(server, config):
    wanted = set(config.fail_launch or [])
    return server.hostname in wanted or server.source_server_id in wanted or server.fqdn in wanted


def _launch_steps(job, servers, *, chosen, config):
    """The ServerSteps of each server of a new LAUNCH job, in request order."""
    steps = []
    for position, server in enumerate(servers):
        failed = _fails(server, config)
        moments = launch_moments(
            created_at=job.created_at, job_id=job.job_id, server_id=server.source_server_id,
            launch_seconds=config.launch_seconds, has_actions=bool(server.post_launch_actions), failed=failed,
        )
        steps.append(ServerSteps(
            server_id=server.source_server_id, position=position, used_previous_snapshot=server.pk in chosen,
            failed=failed,
            error=f"Launch of {server.hostname} failed: the sandbox is configured to fail it." if failed else "",
            post_launch_actions=server.post_launch_actions, recovery_instance_id="" if failed else new_instance_id(),
            **moments,
        ))
    return steps


def _take_snapshots(servers, steps, chosen):
    """(pk, timestamp) of the snapshot each server launches from, by server pk: the one the
    request chose, or a fresh one taken during the job."""
    fresh = [
        {"snapshot_id": new_snapshot_id(), "source_server_id": server.pk,
         "expected_timestamp": step.snapshot_start, "timestamp": step.snapshot_end}
        for server, step in zip(servers, steps, strict=True) if server.pk not in chosen
    ]
    insert_rows(SandboxRecoverySnapshot, fresh)
    pks = dict(
        SandboxRecoverySnapshot.objects.filter(snapshot_id__in=[row["snapshot_id"] for row in fresh])
        .values_list("snapshot_id", "pk")
    )
    taken = {row["source_server_id"]: (pks[row["snapshot_id"]], row["timestamp"]) for row in fresh}
    return taken | {server_pk: (snapshot.pk, snapshot.timestamp) for server_pk, snapshot in chosen.items()}


def _job_server_columns(step):
    """The SandboxJobServer columns a ServerSteps holds: all but the server's DRS ID."""
    columns = step._asdict()
    del columns["server_id"]
    return columns


def _create_launch_job(scope, servers, *, chosen, tags, is_drill, config, now):
    """Record a LAUNCH job, its servers' steps, their snapshots and the instances they launch."""
    job = SandboxJob(
        account_id=scope.account_id, region=scope.region, type="LAUNCH",
        initiated_by="START_DRILL" if is_drill else "START_RECOVERY", is_drill=is_drill, tags=tags,
        created_at=now, started_at=job_start(now, config.launch_seconds),
    )
    steps = _launch_steps(job, servers, chosen=chosen, config=config)
    job.ends_at = job_end(job.started_at, [step._asdict() for step in steps])
    job.save(using="sandbox")
    snapshots = _take_snapshots(servers, steps, chosen)
    insert_rows(SandboxJobServer, [
        {"job_id": job.pk, "source_server_id": server.pk, "snapshot_id": snapshots[server.pk][0],
         **_job_server_columns(step)}
        for server, step in zip(servers, steps, strict=True)
    ])
    insert_rows(SandboxRecoveryInstance, [
        {"instance_id": step.recovery_instance_id, "account_id": scope.account_id, "region": scope.region,
         "source_server_id": server.pk, "job_id": job.pk, "is_drill": is_drill,
         "instance_type": server.recommended_instance_type, "tags": {**server.tags, "Name": server.hostname},
         "point_in_time": snapshots[server.pk][1], "launched_at": step.launch_end}
        for server, step in zip(servers, steps, strict=True) if not step.failed
    ])
    return job, steps


def start_recovery(scope, body):
    """StartRecovery: record a LAUNCH job; the crash hook may end the process afterwards."""
    ids, snapshot_ids, tags, is_drill = _check_start_request(body)
    with transaction.atomic(using="sandbox"):
        # Locking the settings row serializes concurrent StartRecovery calls, so two callers
        # can never both pass the one-active-job-per-server check.
        config = _locked_settings()
        now = timezone.now()
        servers = _load_servers(scope, ids)
        if len(servers) > MAX_SERVERS_PER_JOB:
            raise SandboxError(
                "ServiceQuotaExceededException",
                f"A job can launch at most {MAX_SERVERS_PER_JOB} source servers; {len(servers)} were requested.",
                serviceCode=SERVICE_CODE, quotaCode="servers-per-job", resourceType="SOURCE_SERVER",
            )
        _check_capacity(scope, now, server_pks=[s.pk for s in servers], new_servers=len(servers))
        chosen = _chosen_snapshots(servers, snapshot_ids, now)
        job, job_servers = _create_launch_job(
            scope, servers, chosen=chosen, tags=tags, is_drill=is_drill, config=config, now=now
        )
    answer = {"job": job_record(job, job_servers, now)}
    if config.crash_after_start_recovery and _take_crash_flag():
        faults.crash_process()
    return 202, answer


def _take_crash_flag():
    """Clear the one-shot crash flag; True only for the one caller whose UPDATE cleared it."""
    return SandboxSettings.objects.filter(pk=1, crash_after_start_recovery=True).update(
        crash_after_start_recovery=False
    ) == 1


# --- DescribeJobs and DescribeJobLogItems -----------------------------------------------------

def describe_jobs(scope, body):
    """DescribeJobs: filters jobIDs, fromDate, toDate; newest first, paginated."""
    filters = body.get("filters") or {}
    ids = check_ids(filters.get("jobIDs"), JOB_ID_RE, field="filters.jobIDs", kind="job ID", maximum=1000)
    jobs = scope.filter(SandboxJob.objects.all())
    if ids:
        jobs = jobs.filter(job_id__in=ids)
    if filters.get("fromDate"):
        jobs = jobs.filter(created_at__gte=parse_iso(filters["fromDate"], field="filters.fromDate"))
    if filters.get("toDate"):
        jobs = jobs.filter(created_at__lte=parse_iso(filters["toDate"], field="filters.toDate"))
    now = timezone.now()
    page, token = paged(jobs.order_by("-created_at", "-id"), body)
    servers = _servers_by_job([job.pk for job in page], ServerStatus)
    items = [job_record(job, servers[job.pk], now) for job in page]
    return 200, with_token({"items": items}, token)


def describe_job_log_items(scope, body):
    """DescribeJobLogItems: the log of one job, oldest first, paginated."""
    job_id = body.get("jobID")
    check_ids([job_id], JOB_ID_RE, field="jobID", kind="job ID")
    job = scope.filter(SandboxJob.objects.filter(job_id=job_id)).first()
    if job is None:
        raise SandboxError("ResourceNotFoundException", f"Job {job_id} not found.", resourceId=job_id,
                           resourceType="JOB")
    page, token = paged(job_log(job, _servers_by_job([job.pk], ServerSteps)[job.pk], timezone.now()), body)
    return 200, with_token({"items": page}, token)


# --- Recovery instances ----------------------------------------------------------------------

def instance_state(instance, now):
    """ec2InstanceState of a recovery instance at `now`."""
    if instance.terminated_at and now >= instance.terminated_at:
        return "TERMINATED"
    if instance.terminating_at and now >= instance.terminating_at:
        return "SHUTTING-DOWN"
    return "RUNNING"


def visible_instances(scope, now):
    """Recovery instances that exist at `now` (launched), with their source servers."""
    return scope.filter(SandboxRecoveryInstance.objects.filter(launched_at__lte=now)).select_related(
        "source_server", "job"
    )


def recovery_instance_record(instance, now):
    """The RecoveryInstance shape of DescribeRecoveryInstances."""
    server = instance.source_server
    return {
        "ec2InstanceID": instance.instance_id,
        "ec2InstanceState": instance_state(instance, now),
        "jobID": instance.job.job_id,
        "recoveryInstanceID": instance.instance_id,
        "sourceServerID": server.source_server_id,
        "arn": instance.arn,
        "tags": dict(instance.tags),
        "isDrill": instance.is_drill,
        "pointInTimeSnapshotDateTime": iso(instance.point_in_time),
        "originEnvironment": "ON_PREMISES",
        "recoveryInstanceProperties": {
            "lastUpdatedDateTime": iso(instance.launched_at),
            "identificationHints": {"hostname": server.hostname, "fqdn": server.fqdn,
                                    "awsInstanceID": instance.instance_id},
            "disks": [{"internalDeviceName": "/dev/xvda", "bytes": server.disk_bytes,
                       "ebsVolumeID": "vol-" + derived_hex(8, instance.instance_id, "volume")}],
            "cpus": [{"cores": server.cpu_cores, "modelName": "Intel(R) Xeon(R) Platinum 8259CL"}],
            "ramBytes": server.ram_bytes,
            "os": {"fullString": server.os_name},
        },
    }


def describe_recovery_instances(scope, body):
    """DescribeRecoveryInstances: filters recoveryInstanceIDs / sourceServerIDs, paginated."""
    filters = body.get("filters") or {}
    instance_ids = check_ids(filters.get("recoveryInstanceIDs"), INSTANCE_ID_RE,
                             field="filters.recoveryInstanceIDs", kind="recovery instance ID", maximum=200)
    server_ids = check_ids(filters.get("sourceServerIDs"), SOURCE_SERVER_ID_RE,
                           field="filters.sourceServerIDs", kind="source server ID")
    now = timezone.now()
    instances = visible_instances(scope, now).order_by("launched_at", "id")
    if instance_ids:
        instances = instances.filter(instance_id__in=instance_ids)
    if server_ids:
        instances = instances.filter(source_server__source_server_id__in=server_ids)
    page, token = paged(instances, body)
    return 200, with_token({"items": [recovery_instance_record(i, now) for i in page]}, token)


def _check_terminable(scope, instance_ids, now):
    found = {i.instance_id: i for i in visible_instances(scope, now).filter(instance_id__in=instance_ids)}
    missing = [instance_id for instance_id in instance_ids if instance_id not in found]
    if missing:
        raise validation_error(f"Recovery instance(s) not found: {', '.join(missing)}.",
                               field="recoveryInstanceIDs")
    for instance in found.values():
        if instance.terminate_job_id:
            raise SandboxError(
                "ConflictException",
                f"Recovery instance {instance.instance_id} is already terminated or being terminated.",
                resourceId=instance.instance_id, resourceType="RECOVERY_INSTANCE",
            )
    return [found[instance_id] for instance_id in instance_ids]


def terminate_recovery_instances(scope, body):
    """TerminateRecoveryInstances: answer a TERMINATE job; the instances end TERMINATED."""
    instance_ids = check_ids(body.get("recoveryInstanceIDs"), INSTANCE_ID_RE, field="recoveryInstanceIDs",
                             kind="recovery instance ID", minimum=1, maximum=200)
    if len(set(instance_ids)) != len(instance_ids):
        raise validation_error("recoveryInstanceIDs lists an instance twice.", field="recoveryInstanceIDs")
    with transaction.atomic(using="sandbox"):
        config = _locked_settings()
        now = timezone.now()
        instances = _check_terminable(scope, instance_ids, now)
        _check_capacity(scope, now, server_pks=[i.source_server_id for i in instances],
                        new_servers=len(instances))
        job = SandboxJob(
            account_id=scope.account_id, region=scope.region, type="TERMINATE",
            initiated_by="TERMINATE_RECOVERY_INSTANCES", created_at=now,
            started_at=job_start(now, config.launch_seconds),
        )
        moments = [
            terminate_moments(created_at=now, job_id=job.job_id, instance_id=i.instance_id,
                              launch_seconds=config.launch_seconds)
            for i in instances
        ]
        job.ends_at = job_end(job.started_at, moments)
        job.save(using="sandbox")
        job_servers = [
            SandboxJobServer(job=job, source_server=i.source_server, position=position,
                             recovery_instance_id=i.instance_id, **moments[position])
            for position, i in enumerate(instances)
        ]
        SandboxJobServer.objects.bulk_create(job_servers)
        for instance, moment in zip(instances, moments, strict=True):
            instance.terminate_job = job
            instance.terminating_at = job.started_at
            instance.terminated_at = moment["launch_end"]
        SandboxRecoveryInstance.objects.bulk_update(instances, ["terminate_job", "terminating_at", "terminated_at"])
    steps = [_steps_of(js, i.source_server.source_server_id) for js, i in zip(job_servers, instances, strict=True)]
    return 200, {"job": job_record(job, steps, now)}


# --- Snapshots, launch configuration, tags ---------------------------------------------------

def _one_server(scope, body):
    server_id = body.get("sourceServerID")
    check_ids([server_id], SOURCE_SERVER_ID_RE, field="sourceServerID", kind="source server ID")
    server = _servers(scope).filter(source_server_id=server_id).first()
    if server is None:
        raise SandboxError("ResourceNotFoundException", f"Source server {server_id} not found.",
                           resourceId=server_id, resourceType="SOURCE_SERVER")
    return server


def describe_recovery_snapshots(scope, body):
    """DescribeRecoverySnapshots: the snapshots of one server taken by now, ASC or DESC."""
    server = _one_server(scope, body)
    filters = body.get("filters") or {}
    order = body.get("order", "ASC")
    if order not in ("ASC", "DESC"):
        raise validation_error("order must be ASC or DESC.", field="order")
    snapshots = SandboxRecoverySnapshot.objects.filter(source_server=server, timestamp__lte=timezone.now())
    if filters.get("fromDateTime"):
        snapshots = snapshots.filter(timestamp__gte=parse_iso(filters["fromDateTime"], field="filters.fromDateTime"))
    if filters.get("toDateTime"):
        snapshots = snapshots.filter(timestamp__lte=parse_iso(filters["toDateTime"], field="filters.toDateTime"))
    ordering = ["expected_timestamp", "id"] if order == "ASC" else ["-expected_timestamp", "-id"]
    page, token = paged(snapshots.order_by(*ordering), body)
    items = [
        {
            "snapshotID": s.snapshot_id,
            "sourceServerID": server.source_server_id,
            "expectedTimestamp": iso(s.expected_timestamp),
            "timestamp": iso(s.timestamp),
            "ebsSnapshots": ["snap-" + derived_hex(17, s.snapshot_id)],
        }
        for s in page
    ]
    return 200, with_token({"items": items}, token)


def get_launch_configuration(scope, body):
    """GetLaunchConfiguration of one source server."""
    server = _one_server(scope, body)
    return 200, {
        "sourceServerID": server.source_server_id,
        "name": server.hostname[:128],
        "ec2LaunchTemplateID": "lt-" + derived_hex(17, server.source_server_id, "template"),
        "launchDisposition": "STARTED",
        "targetInstanceTypeRightSizingMethod": "BASIC",
        "copyPrivateIp": False,
        "copyTags": True,
        "licensing": {"osByol": False},
        "postLaunchEnabled": bool(server.post_launch_actions),
    }


def _resource_for_arn(arn):
    resource = (arn or "").rsplit(":", 1)[-1]
    kind, _, identifier = resource.partition("/")
    models = {
        "source-server": (SandboxSourceServer, "source_server_id"),
        "job": (SandboxJob, "job_id"),
        "recovery-instance": (SandboxRecoveryInstance, "instance_id"),
    }
    if kind in models:
        model, field = models[kind]
        found = model.objects.filter(**{field: identifier}).first()
        if found is not None and found.arn == arn:
            return found
    raise SandboxError("ResourceNotFoundException", f"Resource {arn} not found.", resourceId=arn)


def list_tags_for_resource(scope, body):
    """ListTagsForResource of a source server, job or recovery instance ARN."""
    return 200, {"tags": dict(_resource_for_arn(body["resourceArn"]).tags)}


def tag_resource(scope, body):
    """TagResource: add or replace tags of a source server, job or recovery instance."""
    tags = body.get("tags")
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise validation_error("tags must map strings to strings.", field="tags")
    with transaction.atomic(using="sandbox"):
        resource = _resource_for_arn(body["resourceArn"])
        resource.tags = {**resource.tags, **tags}
        resource.save(update_fields=["tags"])
    return 200, None


def resource_arn_from_path(path):
    """The resourceArn of a /tags/{resourceArn} request path."""
    return unquote(path.split("/tags/", 1)[1]) if "/tags/" in path else ""


OPERATIONS = {
    "DescribeSourceServers": describe_source_servers,
    "StartRecovery": start_recovery,
    "DescribeJobs": describe_jobs,
    "DescribeJobLogItems": describe_job_log_items,
    "DescribeRecoveryInstances": describe_recovery_instances,
    "DescribeRecoverySnapshots": describe_recovery_snapshots,
    "TerminateRecoveryInstances": terminate_recovery_instances,
    "GetLaunchConfiguration": get_launch_configuration,
    "ListTagsForResource": list_tags_for_resource,
    "TagResource": tag_resource,
}
# Tag operations answer for any ARN and do not declare UninitializedAccountException.
WITHOUT_ACCOUNT_CHECK = {"ListTagsForResource", "TagResource"}
