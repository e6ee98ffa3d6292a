"""Executions' scrape-time metrics and health check, registered with the core in ExecutionsConfig.ready.

Computed from the database at each scrape (three queries whatever the number of executions
or servers), so every web process answers the same and nothing is lost on restart:
executions by status, servers queued in active executions, the oldest active execution's age.
"""

from collections.abc import Iterator

from django.db.models import Count, Min
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from .choices import EXECUTION_ACTIVE, ExecutionStatus, LaunchStatus
from .models import Execution, ServerLaunch

QUEUED_LAUNCH_STATUSES = (LaunchStatus.NOT_STARTED, LaunchStatus.PENDING)


def collect_execution_metrics() -> Iterator[Metric]:
    """Yield drsorch_executions{status}, drsorch_queued_servers and
    drsorch_oldest_running_execution_age_seconds, read now."""
    by_status = dict(Execution.objects.order_by().values_list("status").annotate(n=Count("pk")))
    executions = GaugeMetricFamily(
        "drsorch_executions", "Executions by status (every execution ever started).", labels=["status"]
    )
    for status in ExecutionStatus.values:
        executions.add_metric([status], by_status.get(status, 0))
    yield executions

    queued = ServerLaunch.objects.filter(
        execution__status__in=EXECUTION_ACTIVE, status__in=QUEUED_LAUNCH_STATUSES
    ).count()
    yield GaugeMetricFamily(
        "drsorch_queued_servers",
        "Servers of active executions not yet launched (NOT_STARTED or PENDING).",
        value=queued,
    )

    oldest = Execution.objects.filter(status__in=EXECUTION_ACTIVE).aggregate(
        oldest=Min(Coalesce("started_at", "created_at"))
    )["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    yield GaugeMetricFamily(
        "drsorch_oldest_running_execution_age_seconds",
        "Age of the oldest active execution (0 when none runs).",
        value=max(0.0, age),
    )


def executions_need_work() -> bool:
    """Whether any execution is active: the poller must be ticking (for /healthz)."""
    return Execution.objects.filter(status__in=EXECUTION_ACTIVE).exists()
