"""Every DRS call drsorch makes (engine, readiness, inventory sync, clean-up) goes through here.

One module, so that the rules of calling DRS live in one place: which calls must never be
retried blindly, how listings are paginated (boto3 paginators, except the read-retried
listings below, which must resume at the page that failed), and how calls are counted
(`drsorch.aws` counts every call with a botocore event hook; the benchmark prints calls per
tick). Tests replace nothing here but `sleep`: the sandbox answers behind the same boto3 client.

Where retries live. The engine's calls are made once per tick: a throttled poll or launch is
simply asked again at the next tick, which is the engine's backoff, and the engine must see
every throttle (the sandbox client makes a single attempt on purpose). The calls of a person
waiting for an answer -- the inventory sync and readiness's list of active jobs -- have no
next tick, so they retry here: a throttled or failed page is asked again after
READ_RETRY_DELAYS, resuming at that page (restarting a listing whose every other page is
throttled would never end). For AWS targets botocore's adaptive retries come first; these
pauses come after them. The calls stay read-only: nothing is done twice.
"""

import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from drsorch.aws import AwsTarget, aws_calls_made, client_for

from .constants import MAX_JOB_IDS_PER_CALL, MAX_SOURCE_SERVER_IDS_PER_FILTER, TAG_LAUNCH_TOKEN, JobStatus
from .errors import describe, is_worth_retrying_soon
from .times import format_drs_time, parse_drs_time

logger = logging.getLogger(__name__)

Job = dict[str, Any]

# Pauses before asking a throttled read again (seconds); after the last, the error is raised.
READ_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)
sleep = time.sleep  # replaced by tests, which never sleep


def _read_with_retries(call: Callable[[], dict[str, Any]], *, what: str) -> dict[str, Any]:
    """`call()`, asked again after each of READ_RETRY_DELAYS while DRS throttles or fails."""
    for delay in READ_RETRY_DELAYS:
        try:
            return call()
        except Exception as exc:
            if not is_worth_retrying_soon(exc):
                raise
            logger.info("%s: %s; asking again in %s s.", what, describe(exc), delay)
            sleep(delay)
    return call()


def _pages_with_retries(client: Any, operation: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every page of a listing, each retried on its own (see the module's docstring)."""
    method = getattr(client, operation)
    token = None
    while True:
        page = _read_with_retries(functools.partial(method, **params, **({"nextToken": token} if token else {})),
                                  what=f"DRS {operation}")
        yield page
        token = page.get("nextToken")
        if not token:
            return


def calls_made() -> int:
    """DRS calls made by this thread so far, with those pool threads made for it
    (drsorch.drs.concurrency); the benchmark and tests read the difference."""
    return aws_calls_made("drs")


def start_recovery(*, target: AwsTarget, source_server_ids: list[str], is_drill: bool, tags: dict[str, str],
                   snapshot_ids: Mapping[str, str] | None = None) -> Job:
    """StartRecovery for up to 100 servers. DRS takes no client token: a retried call
    launches twice, which is why the caller records its intent and launch token first.

    `snapshot_ids` (source server ID to recovery snapshot ID) launches those servers from
    these point-in-time snapshots; the others from a fresh snapshot DRS takes."""
    snapshot_ids = snapshot_ids or {}
    # One attempt only: a retry by botocore after a lost answer would launch the servers again.
    response = client_for(target, "drs", single_attempt=True).start_recovery(
        sourceServers=[
            {"sourceServerID": server_id, **({"recoverySnapshotID": snapshot_ids[server_id]}
                                            if server_id in snapshot_ids else {})}
            for server_id in source_server_ids
        ],
        isDrill=is_drill,
        tags=tags,
    )
    return response["job"]


def latest_recovery_snapshot(*, target: AwsTarget, source_server_id: str, at_or_before: datetime,
                             patient: bool = False) -> dict[str, Any] | None:
    """The latest recovery snapshot of a source server taken at or before `at_or_before`
    (snapshotID, timestamp, ...), or None when DRS holds none that old: one
    DescribeRecoverySnapshots(toDateTime, DESC, maxResults 1). `patient`: a person waits for
    the answer (readiness), so a throttled call is asked again (see the module's docstring)."""
    client = client_for(target, "drs")
    call = functools.partial(
        client.describe_recovery_snapshots, sourceServerID=source_server_id,
        # DRS's filter has whole seconds: the second the point falls in, floored, stays at or before it.
        filters={"toDateTime": format_drs_time(at_or_before.astimezone(UTC))}, order="DESC", maxResults=1,
    )
    response = _read_with_retries(call, what="DRS DescribeRecoverySnapshots") if patient else call()
    items = response.get("items") or []
    return items[0] if items else None


def terminate_recovery_instances(*, target: AwsTarget, recovery_instance_ids: Iterable[str]) -> Job:
    """TerminateRecoveryInstances for up to 200 instances; returns the TERMINATE job.
    Terminating twice is harmless, so botocore's retries are welcome here."""
    response = client_for(target, "drs").terminate_recovery_instances(recoveryInstanceIDs=list(recovery_instance_ids))
    return response["job"]


def recovery_instances(*, target: AwsTarget, source_server_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The recovery instances DRS knows of these source servers (200 ids a call), every page:
    where an instance id is found when neither the job nor its log named it (drs-facts 4, 8)."""
    paginator = client_for(target, "drs").get_paginator("describe_recovery_instances")
    server_ids = sorted(set(source_server_ids))
    return [
        item
        for start in range(0, len(server_ids), MAX_SOURCE_SERVER_IDS_PER_FILTER)
        for page in paginator.paginate(
            filters={"sourceServerIDs": server_ids[start:start + MAX_SOURCE_SERVER_IDS_PER_FILTER]})
        for item in page.get("items", [])
    ]


def describe_jobs(*, target: AwsTarget, job_ids: Iterable[str]) -> dict[str, Job]:
    """The jobs with these ids, by id, in as few calls as DRS allows (1000 ids a call)."""
    paginator = client_for(target, "drs").get_paginator("describe_jobs")
    job_ids = list(job_ids)
    jobs = {}
    for start in range(0, len(job_ids), MAX_JOB_IDS_PER_CALL):
        for page in paginator.paginate(filters={"jobIDs": job_ids[start:start + MAX_JOB_IDS_PER_CALL]}):
            for job in page.get("items", []):
                jobs[job["jobID"]] = job
    return jobs


def jobs_since(*, target: AwsTarget, since: datetime) -> Iterator[Job]:
    """Every job of the target's account and region created since `since`, newest first."""
    paginator = client_for(target, "drs").get_paginator("describe_jobs")
    for page in paginator.paginate(filters={"fromDate": format_drs_time(since)}):
        yield from page.get("items", [])


def active_jobs_since(*, target: AwsTarget, since: datetime) -> list[Job]:
    """The jobs created since `since` that DRS has not completed (they hold their servers).
    For readiness: every page is retried on throttling."""
    client = client_for(target, "drs")
    return [job for page in _pages_with_retries(client, "describe_jobs", filters={"fromDate": format_drs_time(since)})
            for job in page.get("items", []) if job.get("status") != JobStatus.COMPLETED]


def list_tags_for_resource(*, target: AwsTarget, arn: str) -> dict[str, str]:
    """ListTagsForResource: the tags of one DRS resource (a job, a source server...) by ARN."""
    return client_for(target, "drs").list_tags_for_resource(resourceArn=arn).get("tags") or {}


def job_tags(*, target: AwsTarget, job: Job) -> dict[str, str]:
    """A job's tags: DescribeJobs' `tags`, or, when it answered without the key (DRS does not
    always return them), ListTagsForResource on the job's ARN."""
    if "tags" in job or not job.get("arn"):
        return job.get("tags") or {}
    return list_tags_for_resource(target=target, arn=job["arn"])


def find_jobs_by_launch_token(*, target: AwsTarget, since: datetime, tokens: set[str],
                              jobs: Iterable[Job] | None = None) -> dict[str, Job]:
    """Jobs created since `since` that carry one of our launch tokens, by token. Used to adopt
    a job whose id was never stored (a crash, a lost answer, a conflict). `jobs` is a listing
    already read (newest first, reaching back at least to `since` minus a minute).

    Jobs listed without tags are asked for theirs (ListTagsForResource), but only LAUNCH jobs
    created since `since` minus a minute, so the calls stay as few as our recent launches."""
    found = {}
    # A minute of slack: DRS's clock and ours may disagree by a few seconds.
    since = since - timedelta(minutes=1)
    listing = jobs_since(target=target, since=since) if jobs is None else jobs
    for job in listing:
        created = parse_drs_time(job.get("creationDateTime"))
        if created is not None and created < since:
            continue
        if job.get("type", "LAUNCH") != "LAUNCH":
            continue
        launch_token = job_tags(target=target, job=job).get(TAG_LAUNCH_TOKEN)
        if launch_token in tokens:
            found[launch_token] = job
            if len(found) == len(tokens):
                break
    return found


def job_log_items(*, target: AwsTarget, job_id: str) -> list[dict[str, Any]]:
    """Every log item of one job, oldest first."""
    paginator = client_for(target, "drs").get_paginator("describe_job_log_items")
    return [item for page in paginator.paginate(jobID=job_id) for item in page.get("items", [])]


def source_servers(*, target: AwsTarget) -> list[dict[str, Any]] | None:
    """Every DescribeSourceServers item of the target; None when DRS was never initialized
    in its account and region (drs-facts: that means "no servers", not an outage). Every
    page is retried on throttling."""
    client = client_for(target, "drs")
    try:
        return [item for page in _pages_with_retries(client, "describe_source_servers", filters={})
                for item in page.get("items", [])]
    except client.exceptions.UninitializedAccountException:
        return None


def launch_actions(*, target: AwsTarget, source_server_id: str) -> list[dict[str, Any]]:
    """ListLaunchActions of one source server: DRS's own post-launch actions (name, actionCode,
    type, active, optional, category, order, ...), every page, ordered as DRS runs them. For
    readiness: a person waits, so every page is retried on throttling."""
    client = client_for(target, "drs")
    items = [item for page in _pages_with_retries(client, "list_launch_actions", resourceId=source_server_id)
             for item in page.get("items", [])]
    return sorted(items, key=lambda item: (item.get("order", 0), item.get("name", "")))


def caller_identity(*, target: AwsTarget) -> dict[str, str]:
    """STS GetCallerIdentity as the target's credentials (the role assumed when it has one):
    `{"account", "arn", "user_id"}`. Only `aws` targets: the sandbox simulates no STS."""
    answer = client_for(target, "sts", single_attempt=True).get_caller_identity()
    return {"account": answer["Account"], "arn": answer["Arn"], "user_id": answer["UserId"]}


def source_servers_probe(*, target: AwsTarget) -> int:
    """One DescribeSourceServers call asking for at most one server, made once (no retries):
    whether DRS answers the target's credentials at all. Returns how many servers came back
    (0 or 1); raises what DRS raised."""
    client = client_for(target, "drs", single_attempt=True)
    return len(client.describe_source_servers(filters={}, maxResults=1).get("items", []))
