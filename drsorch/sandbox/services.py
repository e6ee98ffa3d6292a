"""Operating the simulated DRS: seeding the demo, configuring behaviour, reading its state.

The `sandbox` management command and the tests call these functions. Everything here writes
through the `sandbox` alias: the simulated AWS side only. The sandbox imports neither plans
nor executions; the drsorch side of the demo (target, groups, plan) is plans/demo.py.
"""

import functools
import uuid
from datetime import timedelta
from typing import NamedTuple

import botocore.session
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from . import history, sns, ssm
from .drs.common import Scope
from .drs.recovery import start_outside_drill
from .models import (
    SandboxAutomationExecution,
    SandboxCommand,
    SandboxJob,
    SandboxRecoveryInstance,
    SandboxRegion,
    SandboxSettings,
    SandboxSnsMessage,
    SandboxSourceServer,
)
from .protocol import SandboxError, iso
from .simulation import job_status, replication_state

DEFAULT_BUSY_SECONDS = 120.0
MAX_LATENCY_MS = 60000
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
DEMO_APPLICATION = "demo"
# Seeded servers have replicated for a week: DRS holds a full week of point-in-time snapshots.
SNAPSHOTS_PER_SERVER = None
SEEDED_HISTORY = timedelta(days=7)


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
    """Create one simulated source server (and its snapshot history) in the simulated DRS."""
    return sandbox_servers_create(
        account_id=account_id, region=region,
        specs=[{
            "hostname": hostname, "tags": tags or {}, "replication_state": replication_state,
            "lag_seconds": lag_seconds, "recommended_instance_type": recommended_instance_type,
            "post_launch_actions": post_launch_actions,
        }],
        snapshots=snapshots,
    )[0]


def _actions(spec_value, hostname):
    """A spec's post_launch_actions: True for the application actions of post_launch_actions_for,
    a list for exactly these LaunchAction records, False/None/[] for none."""
    if isinstance(spec_value, list):
        return [dict(action) for action in spec_value]
    return post_launch_actions_for(hostname) if spec_value else []


def sandbox_servers_create(*, account_id, region, specs, snapshots=SNAPSHOTS_PER_SERVER):
    """Create simulated source servers from dicts of hostname, tags, replication_state,
    lag_seconds, recommended_instance_type and post_launch_actions (True for the application
    actions of post_launch_actions_for, or a list of LaunchAction records).

    `snapshots`: None for a week of snapshot history (history.py), N for the last N
    10-minute snapshots only (0: none, a server that never completed its first snapshot)."""
    now = timezone.now()
    if snapshots is None:
        since = now - SEEDED_HISTORY
    else:
        since = history.floor(now, history.INTERVAL) - history.INTERVAL * (snapshots - 1) if snapshots else None
    servers = [
        SandboxSourceServer(
            account_id=account_id, region=region, hostname=spec["hostname"],
            fqdn=f"{spec['hostname']}.corp.example.com", tags=dict(spec.get("tags") or {}),
            replication_state=spec.get("replication_state", "CONTINUOUS"),
            lag_seconds=spec.get("lag_seconds", 5),
            recommended_instance_type=spec.get("recommended_instance_type", "m5.large"),
            post_launch_actions=_actions(spec.get("post_launch_actions"), spec["hostname"]),
            created_at=now - SEEDED_HISTORY, snapshots_since=since,
            # Created disconnected: no snapshot from now on.
            disconnected_at=now if spec.get("replication_state") == "DISCONNECTED" else None,
        )
        for spec in specs
    ]
    SandboxSourceServer.objects.bulk_create(servers)
    return servers


def sandbox_server_update(*, source_server_id, **fields):
    """Change a simulated server's replication_state, lag_seconds, tags, hostname or
    post_launch_actions (a list of LaunchAction records, each with DRS's `optional` flag).

    Setting replication_state to DISCONNECTED disconnects it from now on, as `sandbox configure
    --disconnect` does (no new snapshots, the lag grows); any other state reconnects it.
    """
    allowed = {"replication_state", "lag_seconds", "tags", "hostname", "post_launch_actions"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"Cannot change {', '.join(sorted(unknown))} of a simulated server.")
    if "post_launch_actions" in fields:
        fields["post_launch_actions"] = _actions(list(fields["post_launch_actions"] or []), "")
    servers = SandboxSourceServer.objects.filter(source_server_id=source_server_id)
    with transaction.atomic(using="sandbox"):
        if fields.get("replication_state") == "DISCONNECTED":
            servers.filter(disconnected_at__isnull=True).update(disconnected_at=timezone.now())
        elif "replication_state" in fields:
            fields["disconnected_at"] = None
        servers.update(**fields)


def sandbox_set_region_initialized(*, account_id, region, initialized):
    """Mark DRS as (un)initialized in an account and region: uninitialized regions answer
    UninitializedAccountException to every call."""
    SandboxRegion.objects.update_or_create(
        account_id=account_id, region=region, defaults={"uninitialized": not initialized}
    )


# --- configure ---------------------------------------------------------------------------------

@functools.cache
def drs_operation_names() -> frozenset[str]:
    """Every operation name of DRS, as botocore's service model declares them."""
    return frozenset(botocore.session.get_session().get_service_model("drs").operation_names)


def _names(value, field, errors):
    """A list of server names (or operation names) as given, stripped; an error if not strings."""
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(v, str) and v.strip() for v in value):
        errors[field] = f"{field} must list non-empty names."
        return None
    return [v.strip() for v in value]


def _named_servers(names):
    """The simulated servers named (hostname, fqdn or source server ID), in the order of the
    names, and the names matching none."""
    servers = SandboxSourceServer.objects.filter(
        Q(hostname__in=names) | Q(fqdn__in=names) | Q(source_server_id__in=names)
    ).order_by("account_id", "region", "hostname", "id")
    rank = {name: index for index, name in reversed(list(enumerate(names)))}
    servers = sorted(servers, key=lambda s: min(rank.get(v, len(names)) for v in (s.hostname, s.fqdn,
                                                                                   s.source_server_id)))
    known = {value for s in servers for value in (s.hostname, s.fqdn, s.source_server_id)}
    return servers, [name for name in names if name not in known]


def _check_switches(errors, *, launch_seconds, throttle_rate, busy_seconds, latency_ms, deny):
    if launch_seconds is not None and not 0 <= launch_seconds <= 86400:
        errors["launch_seconds"] = f"The launch duration must be between 0 and 86400 seconds, not {launch_seconds}."
    if throttle_rate is not None and not 0 <= throttle_rate <= 1:
        errors["throttle_rate"] = f"The throttle rate is a share of calls between 0 and 1, not {throttle_rate}."
    if busy_seconds is not None and not 0 < busy_seconds <= 86400:
        errors["busy_seconds"] = f"busy_seconds must be more than 0 and at most 86400 seconds, not {busy_seconds}."
    if latency_ms is not None and (isinstance(latency_ms, bool) or not isinstance(latency_ms, int)
                                   or not 0 <= latency_ms <= MAX_LATENCY_MS):
        errors["latency_ms"] = f"latency_ms must be a whole number from 0 to {MAX_LATENCY_MS}, not {latency_ms}."
    unknown = sorted(set(deny or []) - drs_operation_names() - set(sns.OPERATIONS) - set(ssm.OPERATIONS))
    if unknown:
        errors["deny"] = (f"Not DRS operations: {', '.join(unknown)} (use botocore names such as StartRecovery; "
                          "Publish denies the simulated SNS, SendCommand and the other simulated SSM operations "
                          "deny SSM).")


def _check_named(errors, field, names):
    """The servers `names` match; an error naming the names that match no simulated server."""
    if not names:
        return []
    servers, unmatched = _named_servers(names)
    if unmatched:
        errors[field] = f"No simulated source server is named {', '.join(unmatched)} (hostname, FQDN or ID)."
    return servers


def _apply_disconnect(names, servers, now):
    """Disconnect `servers` from now on (those already disconnected keep their moment) and
    reconnect the servers an earlier `disconnect` named but this one does not. Servers made
    DISCONNECTED by sandbox_server_update stay so."""
    pks = [s.pk for s in servers]
    (SandboxSourceServer.objects.filter(disconnected_at__isnull=False).exclude(pk__in=pks)
     .exclude(replication_state="DISCONNECTED").update(disconnected_at=None))
    SandboxSourceServer.objects.filter(pk__in=pks, disconnected_at__isnull=True).update(disconnected_at=now)


def _start_busy_jobs(servers, hold_seconds, errors):
    """Start the outside drill of `busy`, one per account and region of the servers named."""
    groups = {}
    for server in servers:
        groups.setdefault((server.account_id, server.region), []).append(server)
    for (account_id, region), group in groups.items():
        try:
            start_outside_drill(Scope(account_id=account_id, region=region), [s.source_server_id for s in group],
                                hold_seconds=hold_seconds)
        except SandboxError as error:
            hostnames = ", ".join(s.hostname for s in group)
            errors["busy"] = f"Cannot hold {hostnames} with an outside job: {error.message}"
            return


def _reset(config):
    config.launch_seconds = settings.DRSORCH_SANDBOX_LAUNCH_SECONDS
    config.throttle_rate = 0.0
    config.fail_launch = []
    config.crash_after_start_recovery = False
    config.call_count = 0
    config.disconnect = []
    config.busy = []
    config.busy_seconds = DEFAULT_BUSY_SECONDS
    config.omit_instance_ids = False
    config.deny = []
    config.latency_ms = 0
    config.fail_post_launch = []
    config.no_job_tags = False
    config.fail_ssm = []


def sandbox_configure(*, launch_seconds: float | None = None, throttle_rate: float | None = None,
                      fail_launch: list[str] | None = None, crash_after_start_recovery: bool | None = None,
                      clear: bool = False, disconnect: list[str] | None = None, busy: list[str] | None = None,
                      busy_seconds: float | None = None, omit_instance_ids: bool | None = None,
                      deny: list[str] | None = None, latency_ms: int | None = None,
                      fail_post_launch: list[str] | None = None, no_job_tags: bool | None = None,
                      fail_ssm: list[str] | None = None) -> SandboxSettings:
    """Change how the simulated DRS behaves from now on, for every process.

    None leaves a switch as it is; `clear` first restores the defaults (launch duration from
    settings, every switch off). Setting a throttle rate restarts the call counter, so the
    share of throttled calls is exact from then on. `disconnect` names the servers disconnected
    from now on (the others it disconnected before reconnect); `busy` starts, now, a drill
    that drsorch did not start holding these servers for `busy_seconds` (default 120).
    Servers are named by hostname, FQDN or source server ID; `deny` takes DRS operation names
    (and the simulated SNS and SSM operations); `fail_ssm` names SSM documents whose automations
    and commands, started from now on, fail.
    Raises ValidationError naming the field on bad input, and changes nothing then.
    """
    errors = {}
    fail_launch = _names(fail_launch, "fail_launch", errors)
    disconnect = _names(disconnect, "disconnect", errors)
    busy = _names(busy, "busy", errors)
    deny = _names(deny, "deny", errors)
    fail_post_launch = _names(fail_post_launch, "fail_post_launch", errors)
    fail_ssm = _names(fail_ssm, "fail_ssm", errors)
    bad_documents = [name for name in fail_ssm or [] if not ssm.DOCUMENT_NAME_RE.match(name)]
    if bad_documents:
        errors["fail_ssm"] = (f"Not SSM document names: {', '.join(bad_documents)} (3 to 128 letters, digits and "
                              "_-.:/ such as AWS-RunShellScript).")
    _check_switches(errors, launch_seconds=launch_seconds, throttle_rate=throttle_rate, busy_seconds=busy_seconds,
                    latency_ms=latency_ms, deny=deny)
    disconnected = _check_named(errors, "disconnect", disconnect)
    held = _check_named(errors, "busy", busy)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic(using="sandbox"):
        config = SandboxSettings.objects.select_for_update().get(pk=SandboxSettings.load().pk)
        if clear:
            _reset(config)
        if launch_seconds is not None:
            config.launch_seconds = float(launch_seconds)
        if throttle_rate is not None:
            config.throttle_rate = float(throttle_rate)
            config.call_count = 0
        if fail_launch is not None:
            config.fail_launch = fail_launch
        if crash_after_start_recovery is not None:
            config.crash_after_start_recovery = bool(crash_after_start_recovery)
        for name, value in [("omit_instance_ids", omit_instance_ids), ("no_job_tags", no_job_tags)]:
            if value is not None:
                setattr(config, name, bool(value))
        for name, value in [("deny", deny), ("fail_post_launch", fail_post_launch), ("latency_ms", latency_ms),
                            ("fail_ssm", fail_ssm)]:
            if value is not None:
                setattr(config, name, value)
        if busy_seconds is not None:
            config.busy_seconds = float(busy_seconds)
        if disconnect is not None or clear:
            config.disconnect = disconnect or []
            _apply_disconnect(config.disconnect, disconnected, timezone.now())
        config.save()
        if busy is not None:
            config.busy = busy
            config.save(update_fields=["busy"])
            _start_busy_jobs(held, config.busy_seconds, errors)
            if errors:
                transaction.set_rollback(True, using="sandbox")
    if errors:
        raise ValidationError(errors)
    return config


def sandbox_config() -> dict:
    """The current behaviour settings, as a dict."""
    config = SandboxSettings.load()
    return {
        "launch_seconds": config.launch_seconds,
        "throttle_rate": config.throttle_rate,
        "fail_launch": list(config.fail_launch),
        "crash_after_start_recovery": config.crash_after_start_recovery,
        "disconnect": list(config.disconnect),
        "busy": list(config.busy),
        "busy_seconds": config.busy_seconds,
        "omit_instance_ids": config.omit_instance_ids,
        "deny": list(config.deny),
        "latency_ms": config.latency_ms,
        "fail_post_launch": list(config.fail_post_launch),
        "no_job_tags": config.no_job_tags,
        "fail_ssm": list(config.fail_ssm),
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
                "replication_state": replication_state(s),
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
                "ended_at": iso(job.ends_at) if job_status(job, now) == "COMPLETED" else None,
            }
            for job in jobs
        ],
        "sns_messages": [
            {"message_id": m.message_id, "topic_arn": m.topic_arn, "subject": m.subject,
             "published_at": iso(m.published_at)}
            for m in SandboxSnsMessage.objects.order_by("published_at", "id")
        ],
        "ssm_automations": [
            {"automation_execution_id": e.execution_id, "document_name": e.document_name,
             "status": ssm.automation_status(e, now), "parameters": dict(e.parameters), "started_at": iso(e.created_at)}
            for e in SandboxAutomationExecution.objects.order_by("created_at", "id")
        ],
        "ssm_commands": [
            {"command_id": c.command_id, "document_name": c.document_name, "comment": c.comment,
             "status": ssm.command_status(list(c.invocations.all()), now)[0],
             "instance_ids": [i.instance_id for i in c.invocations.all()], "requested_at": iso(c.created_at)}
            for c in SandboxCommand.objects.prefetch_related("invocations").order_by("created_at", "id")
        ],
    }


# --- the demo's simulated servers ------------------------------------------------------------

# More simulated servers than any benchmark seeds; a larger count would only fill memory.
MAX_DEMO_SERVERS = 10_000


def tier_sizes(servers: int) -> dict[str, int]:
    """How many db, app and web servers a demo of `servers` servers has (at least one each,
    at most MAX_DEMO_SERVERS in all)."""
    if servers < len(TIERS):
        raise ValidationError(f"The demo needs at least {len(TIERS)} servers, one per tier; got {servers}.")
    if servers > MAX_DEMO_SERVERS:
        raise ValidationError(f"The demo has at most {MAX_DEMO_SERVERS} servers; got {servers}.")
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
                # Database servers too: one mandatory and one optional action each, as the app servers.
                "post_launch_actions": tier.tag in ("db", "app"),
            })
    return specs


def sandbox_demo_servers_create(*, servers: int = 12, account_id: str = DEFAULT_ACCOUNT_ID,
                                region: str = DEFAULT_REGION) -> list[SandboxSourceServer]:
    """Create the simulated source servers of the 3-tier demo in an account and region:
    `servers` split into db, app and web tiers (hostnames db-01, app-01, web-01, ...), tagged
    Tier=<tier> and Application=demo; the db and app servers have post-launch actions (one
    mandatory, one optional: post_launch_actions_for).

    Idempotent: hostnames already in the account and region are kept and not created again.
    Returns the servers created. Raises ValidationError for fewer servers than tiers.
    """
    tier_sizes(servers)
    existing = set(
        SandboxSourceServer.objects.filter(account_id=account_id, region=region).values_list("hostname", flat=True)
    )
    return sandbox_servers_create(account_id=account_id, region=region, specs=_seed_specs(servers, existing))
