"""DescribeSourceServers: source servers with their replication, last launch and live recovery instance."""

from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from ..models import SandboxJobServer, SandboxRecoveryInstance
from ..protocol import SOURCE_SERVER_ID_RE, check_ids, iso, iso_duration, paged, with_token
from ..simulation import lag_seconds, launch_status, replication_state
from .common import SOURCE_SERVERS_PAGE, _servers


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
    state = replication_state(server)
    # A disconnected server was last seen when it disconnected (or, created so, when it was added).
    seen = now if state != "DISCONNECTED" else server.disconnected_at or server.created_at
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
            "lagDuration": iso_duration(lag_seconds(server, now)),
            "dataReplicationState": state,
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
