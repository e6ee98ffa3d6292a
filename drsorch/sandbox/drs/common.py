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


# DRS's own wording: it never says which server of the request is busy.
BUSY_SERVER_MESSAGE = "One or more of the Source Servers included in API call are currently being processed by a Job"


@dataclass(frozen=True)
class Scope:
    """The account and region a client talks to, and how this call's job records look
    (`omit_instance_ids`, `no_job_tags`: the sandbox switches, read with the call's state)."""

    account_id: str
    region: str
    omit_instance_ids: bool = False
    no_job_tags: bool = False

    def job_record_options(self):
        """The keyword arguments of simulation.job_record for this call."""
        return {"omit_instance_ids": self.omit_instance_ids, "no_job_tags": self.no_job_tags}

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


def _named(server, names):
    """Whether `server` (a row or tuple with hostname, fqdn, source_server_id) is one of `names`."""
    wanted = set(names or [])
    return server.hostname in wanted or server.source_server_id in wanted or server.fqdn in wanted


def _check_capacity(scope, now, *, server_pks, new_servers):
    active = _active_jobs(scope, now)
    if SandboxJobServer.objects.filter(job__in=active, source_server__in=server_pks).exists():
        # Exactly DRS's answer: no server, no job, no resourceId; the caller must find out.
        raise SandboxError("ConflictException", BUSY_SERVER_MESSAGE)
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
