"""Readiness as every caller that decides about a start needs it: the checks of
plans.readiness plus those that need executions (the plan already running, a server in
another running execution)."""

from plans.models import RecoveryPlan, SourceServer
from plans.readiness import ERROR, ReadinessReport
from plans.readiness import plan_readiness as plan_checks

from .choices import EXECUTION_ACTIVE
from .models import Execution, ServerLaunch


def check_other_executions(report: ReadinessReport, plan: RecoveryPlan, servers: list[SourceServer]) -> None:
    """Errors for an active execution of `plan` and for servers in other plans' active executions."""
    running = Execution.objects.filter(plan=plan, status__in=EXECUTION_ACTIVE).first()
    if running:
        report.add(ERROR, "plan_running",
                   f"The plan is already running as execution {running.pk} ({running.status}).")
    busy = (
        ServerLaunch.objects.filter(
            source_server_id__in=[s.drs_id for s in servers], execution__status__in=EXECUTION_ACTIVE
        )
        .exclude(execution__plan=plan)
        .select_related("execution")
    )
    by_id = {s.drs_id: s for s in servers}
    for launch in busy:
        server = by_id.get(launch.source_server_id)
        report.add(ERROR, "server_in_other_execution",
                   f"Server {launch.hostname or launch.source_server_id} is in running execution "
                   f"{launch.execution.pk} of plan '{launch.execution.plan_name}'.", server)


def plan_readiness(*, plan: RecoveryPlan, live: bool = True) -> ReadinessReport:
    """Check that `plan` can start now: plans.readiness.plan_readiness with the checks of
    other executions, in the order the report has always listed them."""
    return plan_checks(plan=plan, live=live, server_checks=[check_other_executions])
