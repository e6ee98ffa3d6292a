"""DescribeJobs and DescribeJobLogItems: jobs and their logs, derived from the stored moments and the time."""

from collections import defaultdict

from django.utils import timezone

from ..models import SandboxJob, SandboxJobServer
from ..protocol import JOB_ID_RE, SandboxError, check_ids, paged, parse_iso, with_token
from ..simulation import ServerStatus, ServerSteps, job_log, job_record


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
    items = [job_record(job, servers[job.pk], now, **scope.job_record_options()) for job in page]
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
