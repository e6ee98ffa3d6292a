"""What the simulated DRS operations share: the caller's scope, the service quotas, and the
few helpers more than one operation module uses (the settings lock and the capacity check of
the job-starting operations, the source server a request names).

Imports nothing from its sibling modules; every operation module imports it. Its underscore
names are private to the `drs` package, not to this module.
"""

from dataclasses import dataclass

from django.db.models import Count

from ..models import SandboxJob, SandboxJobServer, SandboxSettings, SandboxSourceServer
from ..protocol import SOURCE_SERVER_ID_RE, SandboxError, check_ids

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


def _one_server(scope, body):
    server_id = body.get("sourceServerID")
    check_ids([server_id], SOURCE_SERVER_ID_RE, field="sourceServerID", kind="source server ID")
    server = _servers(scope).filter(source_server_id=server_id).first()
    if server is None:
        raise SandboxError("ResourceNotFoundException", f"Source server {server_id} not found.",
                           resourceId=server_id, resourceType="SOURCE_SERVER")
    return server
