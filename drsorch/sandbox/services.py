"""Operating the simulated DRS: seeding the demo, configuring behaviour, reading its state.

The `sandbox` management command and the tests call these functions. Everything here writes
through the `sandbox` alias: the simulated AWS side only. The sandbox imports neither plans
nor executions; the drsorch side of the demo (target, groups, plan) is plans/demo.py.
"""

import uuid
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from .models import (
    SandboxJob,
    SandboxRecoveryInstance,
    SandboxRecoverySnapshot,
    SandboxRegion,
    SandboxSettings,
    SandboxSourceServer,
)
from .protocol import iso
from .simulation import job_status

DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
DEMO_APPLICATION = "demo"
SNAPSHOTS_PER_SERVER = 6
SNAPSHOT_INTERVAL = timedelta(minutes=10)


class Tier(NamedTuple):
    """One tier of the demo application's simulated servers (tagged Tier=`tag`)."""

    tag: str
    instance_type: str
    lag_seconds: int


TIERS = [
    Tier("db", "r5.large", 4),
    Tier("app", "m5.large", 7),
    Tier("web", "t3.medium", 2),
]


def post_launch_actions_for(hostname):
    """The post-launch actions of an application server: start and check its service."""
    return [
        {
            "actionId": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{hostname}.start-service")),
            "actionCode": "AWS-RunShellScript",
            "type": "SSM_COMMAND",
            "name": "Start application service",
            "active": True,
            "order": 2,
            "actionVersion": "$DEFAULT",
            "optional": False,
            "category": "CONFIGURATION",
            "description": "Starts the application service on the recovered instance.",
        },
        {
            "actionId": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{hostname}.health-check")),
            "actionCode": "AWS-RunShellScript",
            "type": "SSM_COMMAND",
            "name": "Application health check",
            "active": True,
            "order": 3,
            "actionVersion": "$DEFAULT",
            "optional": True,
            "category": "VALIDATION",
            "description": "Checks that the application answers on its health endpoint.",
        },
    ]


def sandbox_server_create(*, account_id, region, hostname, tags=None, replication_state="CONTINUOUS",
                          lag_seconds=5, recommended_instance_type="m5.large", post_launch_actions=False,
                          snapshots=SNAPSHOTS_PER_SERVER):
    """Create one simulated source server (and its recent snapshots) in the simulated DRS."""
    return sandbox_servers_create(
        account_id=account_id, region=region,
        specs=[{
            "hostname": hostname, "tags": tags or {}, "replication_state": replication_state,
            "lag_seconds": lag_seconds, "recommended_instance_type": recommended_instance_type,
            "post_launch_actions": post_launch_actions,
        }],
        snapshots=snapshots,
    )[0]


def sandbox_servers_create(*, account_id, region, specs, snapshots=SNAPSHOTS_PER_SERVER):
    """Create simulated source servers from dicts of hostname, tags, replication_state,
    lag_seconds, recommended_instance_type and post_launch_actions (a bool)."""
    now = timezone.now()
    servers = [
        SandboxSourceServer(
            account_id=account_id, region=region, hostname=spec["hostname"],
            fqdn=f"{spec['hostname']}.corp.example.com", tags=dict(spec.get("tags") or {}),
            replication_state=spec.get("replication_state", "CONTINUOUS"),
            lag_seconds=spec.get("lag_seconds", 5),
            recommended_instance_type=spec.get("recommended_instance_type", "m5.large"),
            post_launch_actions=post_launch_actions_for(spec["hostname"]) if spec.get("post_launch_actions") else [],
            created_at=now - timedelta(days=7),
        )
        for spec in specs
    ]
    with transaction.atomic(using="sandbox"):
        SandboxSourceServer.objects.bulk_create(servers)
        SandboxRecoverySnapshot.objects.bulk_create([
            SandboxRecoverySnapshot(source_server=server, expected_timestamp=moment, timestamp=moment)
            for server in servers
            for moment in (now - SNAPSHOT_INTERVAL * (n + 1) for n in range(snapshots))
        ])
    return servers


def sandbox_server_update(*, source_server_id, **fields):
    """Change a simulated server's replication_state, lag_seconds, tags or hostname."""
    allowed = {"replication_state", "lag_seconds", "tags", "hostname"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"Cannot change {', '.join(sorted(unknown))} of a simulated server.")
    SandboxSourceServer.objects.filter(source_server_id=source_server_id).update(**fields)


def sandbox_set_region_initialized(*, account_id, region, initialized):
    """Mark DRS as (un)initialized in an account and region: uninitialized regions answer
    UninitializedAccountException to every call."""
    SandboxRegion.objects.update_or_create(
        account_id=account_id, region=region, defaults={"uninitialized": not initialized}
    )


# --- configure ---------------------------------------------------------------------------------

def sandbox_configure(*, launch_seconds=None, throttle_rate=None, fail_launch=None,
                      crash_after_start_recovery=None, clear=False):
    """Change how the simulated DRS behaves from now on, for every process.

    `clear` first restores the defaults (launch duration from settings, no throttling, no
    failures, no crash). Setting a throttle rate restarts the call counter, so the share of
    throttled calls is exact from then on. Raises ValidationError on bad input.
    """
    errors = {}
    if launch_seconds is not None and not 0 <= launch_seconds <= 86400:
        errors["launch_seconds"] = f"The launch duration must be between 0 and 86400 seconds, not {launch_seconds}."
    if throttle_rate is not None and not 0 <= throttle_rate <= 1:
        errors["throttle_rate"] = f"The throttle rate is a share of calls between 0 and 1, not {throttle_rate}."
    if fail_launch is not None and not all(isinstance(v, str) and v.strip() for v in fail_launch):
        errors["fail_launch"] = "Name each failing server by a non-empty hostname or source server ID."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic(using="sandbox"):
        config = SandboxSettings.objects.select_for_update().get(pk=SandboxSettings.load().pk)
        if clear:
            config.launch_seconds = settings.DRSORCH_SANDBOX_LAUNCH_SECONDS
            config.throttle_rate = 0.0
            config.fail_launch = []
            config.crash_after_start_recovery = False
            config.call_count = 0
        if launch_seconds is not None:
            config.launch_seconds = float(launch_seconds)
        if throttle_rate is not None:
            config.throttle_rate = float(throttle_rate)
            config.call_count = 0
        if fail_launch is not None:
            config.fail_launch = [v.strip() for v in fail_launch]
        if crash_after_start_recovery is not None:
            config.crash_after_start_recovery = bool(crash_after_start_recovery)
        config.save()
    return config


def sandbox_config():
    """The current behaviour settings, as a dict."""
    config = SandboxSettings.load()
    return {
        "launch_seconds": config.launch_seconds,
        "throttle_rate": config.throttle_rate,
        "fail_launch": list(config.fail_launch),
        "crash_after_start_recovery": config.crash_after_start_recovery,
    }


# --- status ------------------------------------------------------------------------------------

def sandbox_status():
    """What the simulated DRS did: every server with its launches, every job with its status.

    The shape is the public contract of `sandbox status --json`.
    """
    now = timezone.now()
    servers = SandboxSourceServer.objects.annotate(
        launch_count=Count("job_servers", filter=Q(job_servers__job__type="LAUNCH"))
    ).order_by("account_id", "region", "hostname", "source_server_id")
    instances = {}
    for server_pk, instance_id in (
        SandboxRecoveryInstance.objects.filter(launched_at__lte=now)
        .order_by("launched_at", "id").values_list("source_server_id", "instance_id")
    ):
        instances.setdefault(server_pk, []).append(instance_id)
    jobs = SandboxJob.objects.prefetch_related("servers__source_server").order_by("created_at", "id")
    return {
        "servers": [
            {
                "source_server_id": s.source_server_id,
                "hostname": s.hostname,
                "launch_count": s.launch_count,
                "recovery_instance_ids": instances.get(s.pk, []),
            }
            for s in servers
        ],
        "jobs": [
            {
                "job_id": job.job_id,
                "type": job.type,
                "status": job_status(job, now),
                "is_drill": job.is_drill,
                "tags": dict(job.tags),
                "source_server_ids": [js.source_server.source_server_id for js in job.servers.all()],
                "created_at": iso(job.created_at),
            }
            for job in jobs
        ],
    }


# --- the demo's simulated servers ------------------------------------------------------------

def tier_sizes(servers: int) -> dict[str, int]:
    """How many db, app and web servers a demo of `servers` servers has (at least one each)."""
    if servers < len(TIERS):
        raise ValidationError(f"The demo needs at least {len(TIERS)} servers, one per tier; got {servers}.")
    db = max(1, round(servers * 0.25))
    web = max(1, round(servers * 0.33))
    return {"db": db, "app": servers - db - web, "web": web}


def _seed_specs(servers, existing_hostnames):
    specs = []
    sizes = tier_sizes(servers)
    for tier in TIERS:
        for number in range(1, sizes[tier.tag] + 1):
            hostname = f"{tier.tag}-{number:02d}"
            if hostname in existing_hostnames:
                continue
            specs.append({
                "hostname": hostname,
                "tags": {"Tier": tier.tag, "Application": DEMO_APPLICATION, "Name": hostname},
                "replication_state": "CONTINUOUS",
                "lag_seconds": tier.lag_seconds + number % 3,
                "recommended_instance_type": tier.instance_type,
                "post_launch_actions": tier.tag == "app",
            })
    return specs


def sandbox_demo_servers_create(*, servers: int = 12, account_id: str = DEFAULT_ACCOUNT_ID,
                                region: str = DEFAULT_REGION) -> list[SandboxSourceServer]:
    """Create the simulated source servers of the 3-tier demo in an account and region:
    `servers` split into db, app and web tiers (hostnames db-01, app-01, web-01, ...), tagged
    Tier=<tier> and Application=demo; the app servers have post-launch actions.

    Idempotent: hostnames already in the account and region are kept and not created again.
    Returns the servers created. Raises ValidationError for fewer servers than tiers.
    """
    tier_sizes(servers)
    existing = set(
        SandboxSourceServer.objects.filter(account_id=account_id, region=region).values_list("hostname", flat=True)
    )
    return sandbox_servers_create(account_id=account_id, region=region, specs=_seed_specs(servers, existing))
