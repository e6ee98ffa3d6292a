"""Recovery instances: their state at a moment, DescribeRecoveryInstances and
TerminateRecoveryInstances (a TERMINATE job). The simulated EC2 reads instances through
`instance_state` and `visible_instances`.
"""

from django.db import transaction
from django.utils import timezone

from ..models import SandboxJob, SandboxJobServer, SandboxRecoveryInstance
from ..protocol import (
    INSTANCE_ID_RE,
    SOURCE_SERVER_ID_RE,
    SandboxError,
    check_ids,
    iso,
    paged,
    validation_error,
    with_token,
)
from ..simulation import ServerSteps, derived_hex, job_end, job_record, job_start, terminate_moments
from .common import _check_capacity, _locked_settings


def _steps_of(job_server, server_id):
    """The ServerSteps of a SandboxJobServer just created for the server `server_id`."""
    return ServerSteps(server_id, *(getattr(job_server, name) for name in ServerSteps._fields[1:]))


def instance_state(instance, now):
    """ec2InstanceState of a recovery instance at `now`."""
    if instance.terminated_at and now >= instance.terminated_at:
        return "TERMINATED"
    if instance.terminating_at and now >= instance.terminating_at:
        return "SHUTTING-DOWN"
    return "RUNNING"


def visible_instances(scope, now):
    """Recovery instances that exist at `now` (launched), with their source servers: what EC2
    shows, terminated ones included."""
    return scope.filter(SandboxRecoveryInstance.objects.filter(launched_at__lte=now)).select_related(
        "source_server", "job"
    )


def drs_instances(scope, now):
    """The recovery instances DRS knows at `now`: those a later launch of their server replaced
    are gone from DRS once terminated (EC2 still shows them)."""
    return visible_instances(scope, now).exclude(replaced=True, terminated_at__lte=now)


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
    instances = drs_instances(scope, now).order_by("launched_at", "id")
    if instance_ids:
        instances = instances.filter(instance_id__in=instance_ids)
    if server_ids:
        instances = instances.filter(source_server__source_server_id__in=server_ids)
    page, token = paged(instances, body)
    return 200, with_token({"items": [recovery_instance_record(i, now) for i in page]}, token)


def _check_terminable(scope, instance_ids, now):
    found = {i.instance_id: i for i in drs_instances(scope, now).filter(instance_id__in=instance_ids)}
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
    return 200, {"job": job_record(job, steps, now, **scope.job_record_options())}
