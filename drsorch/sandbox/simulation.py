"""How simulated jobs progress: the moments of every step, and what DRS shows at a time.

Every moment is fixed when the job is created, from the launch duration configured then and
a deterministic spread per server (a hash of job ID and server ID, ±30% around the launch
duration), so two reads at the same time always agree and no background process is needed.
"""

import functools
import hashlib
import uuid
from datetime import datetime
from typing import NamedTuple

from .protocol import iso, seconds

SPREAD = 0.3
# Fractions of a server's launch duration at which each step starts or ends.
SNAPSHOT_START, SNAPSHOT_END = 0.10, 0.30
CONVERSION_START, CONVERSION_END = 0.35, 0.65
LAUNCH_START = 0.70
JOB_START = 0.05  # of the configured launch duration
POST_LAUNCH_ACTIONS = 0.25  # of the configured launch duration
TERMINATE = 0.5  # of the configured launch duration


class ServerSteps(NamedTuple):
    """One server's part in a job, as the answers read it.

    A plain tuple rather than a SandboxJobServer: DescribeJobs reads hundreds of them per
    call, and building model instances (and their source servers) cost more than the answer.
    """

    server_id: str  # the source server's DRS ID (sourceServerID)
    position: int
    used_previous_snapshot: bool
    snapshot_failed: bool
    snapshot_start: datetime
    snapshot_end: datetime
    conversion_start: datetime
    conversion_end: datetime
    launch_start: datetime
    launch_end: datetime
    actions_end: datetime | None
    failed: bool
    error: str
    post_launch_actions: list
    actions_failed: bool
    recovery_instance_id: str
    replaced_instance_ids: list


class ServerStatus(NamedTuple):
    """What participatingServers shows of one server: the columns its launch status needs.

    DescribeJobs reads only these (a ServerSteps has them too): fewer datetimes to convert.
    """

    server_id: str
    launch_start: datetime
    launch_end: datetime
    actions_end: datetime | None
    failed: bool
    post_launch_actions: list
    actions_failed: bool
    recovery_instance_id: str


def unit_hash(*parts):
    """A number in [0, 1) fixed by `parts`."""
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def spread_seconds(base_seconds, *parts):
    """`base_seconds` spread deterministically by ±30%."""
    return base_seconds * (1 - SPREAD + 2 * SPREAD * unit_hash(*parts))


def derived_hex(length, *parts):
    """Hex digits fixed by `parts`, for IDs DRS shows but the sandbox does not store."""
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:length]


def launch_moments(*, created_at, job_id, server_id, launch_seconds, has_actions, failed, spread=True):
    """The moments of one server's steps in a LAUNCH job (`spread=False`: it takes exactly
    `launch_seconds`)."""
    duration = spread_seconds(launch_seconds, job_id, server_id) if spread else launch_seconds
    at = {
        "snapshot_start": created_at + seconds(duration * SNAPSHOT_START),
        "snapshot_end": created_at + seconds(duration * SNAPSHOT_END),
        "conversion_start": created_at + seconds(duration * CONVERSION_START),
        "conversion_end": created_at + seconds(duration * CONVERSION_END),
        "launch_start": created_at + seconds(duration * LAUNCH_START),
        "launch_end": created_at + seconds(duration),
        "actions_end": None,
    }
    if has_actions and not failed:
        at["actions_end"] = at["launch_end"] + seconds(launch_seconds * POST_LAUNCH_ACTIONS)
    return at


def cleanup_moments(job_server):
    """(CLEANUP_START, CLEANUP_END) of the earlier instance a launch replaces: between the
    conversion and LAUNCH_START, when DRS terminates the instance it launched before."""
    start = job_server.conversion_end + (job_server.launch_start - job_server.conversion_end) / 2
    return start, job_server.launch_start


def terminate_moments(*, created_at, job_id, instance_id, launch_seconds):
    """The moments of one instance's clean-up in a TERMINATE job."""
    duration = spread_seconds(launch_seconds * TERMINATE, job_id, instance_id)
    start = job_start(created_at, launch_seconds) + seconds(duration * SNAPSHOT_START)
    return {
        "snapshot_start": start, "snapshot_end": start, "conversion_start": start, "conversion_end": start,
        "launch_start": start, "launch_end": start + seconds(duration), "actions_end": None,
    }


def is_disconnected(server):
    """Whether a source server's replication is DISCONNECTED: set by `sandbox configure
    --disconnect` or sandbox_server_update (disconnected_at), or created so."""
    return server.disconnected_at is not None or server.replication_state == "DISCONNECTED"


def replication_state(server):
    """dataReplicationState of a source server now."""
    return "DISCONNECTED" if is_disconnected(server) else server.replication_state


def lag_seconds(server, now):
    """The replication lag of a source server at `now`: the lag it had, plus the time since it
    was disconnected (nothing replicates any more)."""
    if server.disconnected_at is None:
        return server.lag_seconds
    return server.lag_seconds + max(0.0, (now - server.disconnected_at).total_seconds())


def job_start(created_at, launch_seconds):
    """When JOB_START is logged and the job turns STARTED."""
    return created_at + seconds(launch_seconds * JOB_START)


def job_end(created_at, moments):
    """When JOB_END is logged: after every server's last step."""
    ends = [m["actions_end"] or m["launch_end"] for m in moments]
    return max([created_at, *ends])


def job_status(job, now):
    """PENDING, STARTED or COMPLETED at `now`."""
    if now < job.started_at:
        return "PENDING"
    return "STARTED" if now < job.ends_at else "COMPLETED"


def launch_status(job, job_server, now):
    """launchStatus of a participating server at `now`."""
    if job.type == "TERMINATE":
        return "TERMINATED" if now >= job_server.launch_end else "PENDING"
    if now < job_server.launch_start:
        return "PENDING"
    if now < job_server.launch_end:
        return "IN_PROGRESS"
    return "FAILED" if job_server.failed else "LAUNCHED"


@functools.lru_cache(maxsize=65536)
def _run_id(job_id, server_id, action_id):
    """The SSM run ID of a post-launch action; every DescribeJobs of a launched job asks again."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{job_id}/{server_id}/{action_id}"))


def _action_runs(job, job_server, now):
    ended = now >= job_server.actions_end
    status = ("FAILED" if job_server.actions_failed else "SUCCEEDED") if ended else "IN_PROGRESS"
    runs = []
    for action in job_server.post_launch_actions:
        run_id = _run_id(job.job_id, job_server.server_id, action["actionId"])
        run = {"action": action, "runId": run_id, "status": status}
        if status == "FAILED":
            run["failureReason"] = (
                f"SSM document {action.get('actionCode', 'unknown')} failed on the recovery instance "
                f"(the sandbox is configured to fail post-launch actions of this server)."
            )
        runs.append(run)
    return {"ssmAgentDiscoveryDatetime": iso(job_server.launch_end), "runs": runs}


def participating_server(job, job_server, now, *, omit_instance_ids=False):
    """One item of participatingServers at `now`; `omit_instance_ids` leaves out
    recoveryInstanceID, as DRS sometimes answers."""
    status = launch_status(job, job_server, now)
    item = {"sourceServerID": job_server.server_id, "launchStatus": status}
    if job.type == "TERMINATE":
        item["recoveryInstanceID"] = job_server.recovery_instance_id
    elif status == "LAUNCHED":
        item["recoveryInstanceID"] = job_server.recovery_instance_id
        if job_server.actions_end is not None:
            item["launchActionsStatus"] = _action_runs(job, job_server, now)
    if omit_instance_ids:
        item.pop("recoveryInstanceID", None)
    return item


def job_record(job, job_servers, now, *, omit_instance_ids=False, no_job_tags=False):
    """The Job shape of DescribeJobs and StartRecovery at `now` (job_servers: ServerStatus or
    ServerSteps, in request order). `omit_instance_ids` and `no_job_tags` leave out what DRS
    does not always answer (the sandbox switches of the same names)."""
    status = job_status(job, now)
    record = {
        "jobID": job.job_id,
        "arn": job.arn,
        "type": job.type,
        "initiatedBy": job.initiated_by,
        "creationDateTime": iso(job.created_at),
        "status": status,
        "participatingServers": [
            participating_server(job, js, now, omit_instance_ids=omit_instance_ids) for js in job_servers
        ],
    }
    if not no_job_tags:
        record["tags"] = dict(job.tags)
    if status == "COMPLETED":
        record["endDateTime"] = iso(job.ends_at)
    return record


def _server_events(job, js):
    server_id = js.server_id
    data = {"sourceServerID": server_id}
    if job.type == "TERMINATE":
        target = {**data, "targetInstanceID": js.recovery_instance_id}
        return [(js.launch_start, "CLEANUP_START", target), (js.launch_end, "CLEANUP_END", target)]
    if js.snapshot_failed:
        # A disconnected server without any snapshot: DRS has nothing to launch it from.
        return [(js.snapshot_start, "USING_PREVIOUS_SNAPSHOT_FAILED", {**data, "rawError": js.error})]
    conversion = {**data, "conversionServerID": "i-" + derived_hex(17, job.job_id, server_id, "conversion")}
    if js.used_previous_snapshot:
        events = [(js.snapshot_start, "USING_PREVIOUS_SNAPSHOT", data)]
    else:
        events = [(js.snapshot_start, "SNAPSHOT_START", data), (js.snapshot_end, "SNAPSHOT_END", data)]
    events += [
        (js.conversion_start, "CONVERSION_START", conversion),
        (js.conversion_end, "CONVERSION_END", conversion),
    ]
    cleanup_start, cleanup_end = cleanup_moments(js)
    for instance_id in js.replaced_instance_ids:
        target = {**data, "targetInstanceID": instance_id}
        events += [(cleanup_start, "CLEANUP_START", target), (cleanup_end, "CLEANUP_END", target)]
    if js.failed:
        events += [(js.launch_start, "LAUNCH_START", data),
                   (js.launch_end, "LAUNCH_FAILED", {**data, "rawError": js.error})]
    else:
        events.append((js.launch_start, "LAUNCH_START", {**data, "targetInstanceID": js.recovery_instance_id}))
    return events


def job_log(job, job_servers, now):
    """The job's log items that happened by `now`, oldest first (job_servers: ServerSteps)."""
    keyed = [((job.started_at, 0, 0, 0), "JOB_START", {})]
    for js in job_servers:
        for step, (moment, event, data) in enumerate(_server_events(job, js)):
            keyed.append(((moment, 1, js.position, step), event, data))
    keyed.append(((job.ends_at, 2, 0, 0), "JOB_END", {}))
    keyed.sort(key=lambda item: item[0])
    items = []
    for key, event, data in keyed:
        if key[0] <= now:
            item = {"logDateTime": iso(key[0]), "event": event}
            if data:
                item["eventData"] = data
            items.append(item)
    return items
