"""Readiness as every caller that decides about a start needs it: the checks of
plans.readiness plus those that need executions (the plan already running, a server held by
another active execution)."""

from datetime import datetime

from plans.models import RecoveryPlan, SourceServer
from plans.readiness import ERROR, PLAN_RUNNING, ReadinessReport
from plans.readiness import plan_readiness as plan_checks

from .choices import EXECUTION_ACTIVE
from .models import DrsJob, Execution, ServerClaim


def check_other_executions(report: ReadinessReport, plan: RecoveryPlan, servers: list[SourceServer]) -> None:
    """Errors for an active execution of `plan` and for servers claimed by other plans' active
    executions (the claims are what the database enforces at start)."""
    running = Execution.objects.filter(plan=plan, status__in=EXECUTION_ACTIVE).first()
    if running:
        report.add(
            ERROR,
            PLAN_RUNNING,
            f"The plan is already running as execution {running.pk} ({running.status}).",
            execution=running,
        )
    by_key = {(s.target_id, s.drs_id): s for s in servers}
    claims = (
        ServerClaim.objects.filter(source_server_id__in=[s.drs_id for s in servers])
        .exclude(execution__plan=plan)
        .select_related("execution")
        .order_by("source_server_id")
    )
    for claim in claims:
        server = by_key.get((claim.target_id, claim.source_server_id))
        if server is None:  # the same id in another target
            continue
        report.add(
            ERROR,
            "server_in_other_execution",
            f"Server {server.display_name} ({server.drs_id}) is held by running execution "
            f"{claim.execution.pk} of plan '{claim.execution.plan_name}'.",
            server,
            execution=claim.execution,
        )


def ended_executions_of_jobs(job_ids: set[str]) -> dict[str, Execution]:
    """The drsorch executions that asked for the DRS jobs `job_ids` and have ended since (a
    drill's clean-up, the last launch of a cancelled execution): their jobs still hold servers
    though the execution no longer claims them, so readiness names them (plans.readiness)."""
    jobs = (
        DrsJob.objects.filter(job_id__in=job_ids)
        .exclude(execution__status__in=EXECUTION_ACTIVE)
        .select_related("execution")
    )
    return {job.job_id: job.execution for job in jobs}


def plan_readiness(
    *, plan: RecoveryPlan, live: bool = True, refresh: bool = False, point_in_time: datetime | None = None,
    launch_actions: bool = True,
) -> ReadinessReport:
    """Check that `plan` can start now: plans.readiness.plan_readiness with the checks of
    other executions, in the order the report has always listed them. Only `refresh` writes
    (it syncs the inventory first): reads (pages, GET) never pass it. `point_in_time` (a
    point-in-time start) adds a warning for each server without a snapshot that old.
    `launch_actions` (pages: yes; a start: no) lists DRS's own post-launch actions as info."""
    return plan_checks(
        plan=plan,
        live=live,
        refresh=refresh,
        server_checks=[check_other_executions],
        point_in_time=point_in_time,
        job_holders=ended_executions_of_jobs,
        launch_actions=launch_actions,
    )
