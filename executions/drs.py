"""The engine's calls to DRS, all through `drsorch.aws.client_for`, and how their errors read.

Kept in one module so that the engine's DRS traffic can be counted (the benchmark prints
calls per tick) and so that the rules about which failures are safe to retry live in one place.
"""

import threading
from datetime import timedelta

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

from drsorch.aws import client_for

MAX_JOB_IDS_PER_CALL = 1000
MAX_INSTANCES_PER_TERMINATE = 200
TAG_EXECUTION = "drsorch:execution"
TAG_WAVE = "drsorch:wave"
TAG_LAUNCH_TOKEN = "drsorch:launch-token"

# Answers that prove DRS did *not* act on the request: safe to send again later.
REJECTED_CODES = frozenset({
    "ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException",
    "RequestLimitExceeded", "AccessDeniedException", "UninitializedAccountException",
})
# Answers that will not change by asking again: the server cannot be launched as asked.
PERMANENT_CODES = frozenset({"ValidationException", "ResourceNotFoundException"})

_counter = threading.local()


def calls_made():
    """DRS calls made by this thread so far (the benchmark reads the difference per tick)."""
    return getattr(_counter, "calls", 0)


def _count(n=1):
    _counter.calls = calls_made() + n


def error_code(exc):
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return ""


def is_rejected(exc):
    """DRS answered and refused: nothing was created, the request may be sent again."""
    return error_code(exc) in REJECTED_CODES


def is_permanent(exc):
    return error_code(exc) in PERMANENT_CODES


def is_conflict(exc):
    return error_code(exc) == "ConflictException"


def is_transient(exc):
    """Throttling, 5xx and network trouble: retry later, never fail an execution for it."""
    if isinstance(exc, (ConnectionError, ReadTimeoutError)):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status >= 500 or error_code(exc) in REJECTED_CODES
    return isinstance(exc, BotoCoreError)


def fmt_time(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def start_recovery(*, target, source_server_ids, is_drill, tags):
    """StartRecovery for up to 100 servers. DRS takes no client token: a retried call
    launches twice, which is why the caller records its intent and launch token first."""
    _count()
    # One attempt only: a retry by botocore after a lost answer would launch the servers again.
    response = client_for(target, "drs", single_attempt=True).start_recovery(
        sourceServers=[{"sourceServerID": server_id} for server_id in source_server_ids],
        isDrill=is_drill,
        tags=tags,
    )
    return response["job"]


def describe_jobs(*, target, job_ids):
    """The jobs with these ids, by id, in as few calls as DRS allows (1000 ids a call)."""
    drs = client_for(target, "drs")
    jobs = {}
    job_ids = list(job_ids)
    for start in range(0, len(job_ids), MAX_JOB_IDS_PER_CALL):
        token = None
        while True:
            kwargs = {"filters": {"jobIDs": job_ids[start:start + MAX_JOB_IDS_PER_CALL]}}
            if token:
                kwargs["nextToken"] = token
            _count()
            page = drs.describe_jobs(**kwargs)
            for job in page.get("items", []):
                jobs[job["jobID"]] = job
            token = page.get("nextToken")
            if not token:
                break
    return jobs


def find_jobs_by_launch_token(*, target, since, tokens):
    """Jobs created since `since` that carry one of our launch tokens, by token. Used to adopt
    a job whose id was never stored (a crash, a lost answer, a conflict)."""
    drs = client_for(target, "drs")
    found = {}
    token = None
    while True:
        kwargs = {"filters": {"fromDate": fmt_time(since - timedelta(minutes=1))}}
        if token:
            kwargs["nextToken"] = token
        _count()
        page = drs.describe_jobs(**kwargs)
        for job in page.get("items", []):
            launch_token = (job.get("tags") or {}).get(TAG_LAUNCH_TOKEN)
            if launch_token in tokens:
                found[launch_token] = job
        token = page.get("nextToken")
        if not token:
            return found


def job_log_items(*, target, job_id):
    drs = client_for(target, "drs")
    items = []
    token = None
    while True:
        kwargs = {"jobID": job_id}
        if token:
            kwargs["nextToken"] = token
        _count()
        page = drs.describe_job_log_items(**kwargs)
        items.extend(page.get("items", []))
        token = page.get("nextToken")
        if not token:
            return items


def terminate_recovery_instances(*, target, recovery_instance_ids):
    _count()
    response = client_for(target, "drs").terminate_recovery_instances(recoveryInstanceIDs=list(recovery_instance_ids))
    return response["job"]
