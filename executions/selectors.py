"""Reads of executions shared by the API, the pages and the commands."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Exists, Min, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from plans.models import RecoveryPlan

from .choices import EXECUTION_TERMINAL, ExecutionMode, LaunchPhase, LaunchStatus
from .costs import CostEstimate, hourly_cost_estimate
from .models import ActionRun, Execution, LaunchAttempt, ScheduledDrillRun, ServerLaunch, WaveRun
from .unattended.instance_ttl import drill_instances_expiry

# How many ended executions the plan page's trend charts show.
TREND_LIMIT = 30


def executions_for_json() -> QuerySet[Execution]:
    """Executions with what the execution JSON shows (waves, their servers and jobs), in a
    constant number of queries for any number of executions and servers."""
    attempts = LaunchAttempt.objects.select_related("job").order_by("started_at", "pk")
    launches = (
        ServerLaunch.objects.select_related("job")
        .order_by("hostname", "source_server_id")
        .prefetch_related(Prefetch("launch_attempts", queryset=attempts))
    )
    waves = WaveRun.objects.order_by("index").prefetch_related(
        Prefetch("server_launches", queryset=launches), Prefetch("action_runs", queryset=ActionRun.objects.all())
    )
    return Execution.objects.select_related("plan").prefetch_related(Prefetch("wave_runs", queryset=waves))


def plan_history(*, plan: RecoveryPlan, mode: str | None = None) -> QuerySet[Execution]:
    """The ended executions of `plan` (of `mode` when given), newest first, with their server
    counts (`server_total`, `server_launched`, `server_failed`) in the same query.

    Only ended executions make the trend: a running one has no achieved RTO or worst RPO yet
    and no verdict, so it would only add nulls. A retried execution counts again once its
    retry ends. Creation order is also end order, since a plan runs one execution at a time."""
    launched = Q(server_launches__status=LaunchStatus.LAUNCHED) | Q(
        server_launches__status=LaunchStatus.TERMINATED, server_launches__launched_at__isnull=False
    )
    executions = Execution.objects.filter(plan=plan, status__in=EXECUTION_TERMINAL)
    if mode:
        executions = executions.filter(mode=mode)
    return executions.annotate(
        server_total=Count("server_launches"),
        server_launched=Count("server_launches", filter=launched),
        server_failed=Count("server_launches", filter=Q(server_launches__status=LaunchStatus.FAILED)),
    ).order_by("-created_at", "-pk")


def scheduled_drill_runs(*, plan: RecoveryPlan) -> QuerySet[ScheduledDrillRun]:
    """The slots of `plan`'s drill schedule the worker took, newest slot first, with the
    execution each started (the same query)."""
    return ScheduledDrillRun.objects.filter(plan=plan).select_related("execution").order_by("-scheduled_for", "-pk")


def plan_trend(*, plan: RecoveryPlan, limit: int = TREND_LIMIT) -> list[Execution]:
    """The last `limit` ended executions of `plan`, drills and recoveries, oldest first (the
    order a chart reads left to right), in one query without server counts."""
    latest = Execution.objects.filter(plan=plan, status__in=EXECUTION_TERMINAL).order_by("-created_at", "-pk")
    return list(reversed(latest[:limit]))


def replaced_by_a_later_launch() -> Exists:
    """True for a launch whose instance a later launch of the same source server replaced:
    DRS keeps one recovery instance per source server, so launching it again (a drill or a
    recovery, from any plan) terminates the previous one."""
    return Exists(
        ServerLaunch.objects.filter(
            target_id=OuterRef("target_id"),
            source_server_id=OuterRef("source_server_id"),
            launched_at__gt=OuterRef("launched_at"),
        )
    )


# --- Failed over: a plan whose recovery launched production instances ---------------------------


@dataclass(frozen=True)
class RecoveryInstance:
    """A recovery instance a RECOVERY launched: where it runs and what it replaces."""

    hostname: str
    source_server_id: str
    recovery_instance_id: str
    target_name: str
    account_id: str
    region: str
    launched_at: datetime | None


@dataclass(frozen=True)
class FailedOver:
    """A plan's failed-over state: the recovery that failed it over and what runs since."""

    execution: Execution
    instances: list[RecoveryInstance]

    @property
    def places(self) -> list[tuple[str, str, str, int]]:
        """(target name, account id, region, instances running there), by target name."""
        counts: dict[tuple[str, str, str], int] = {}
        for item in self.instances:
            key = (item.target_name, item.account_id, item.region)
            counts[key] = counts.get(key, 0) + 1
        return [(*key, count) for key, count in sorted(counts.items())]


def plans_failed_over(*, plan_ids: Iterable[int] | None = None) -> dict[int, FailedOver]:
    """The failed-over state of each plan that has one, by plan id (of `plan_ids` when given).

    A plan is FAILED OVER once its newest ended RECOVERY launched at least one recovery
    instance, whatever that recovery's status (SUCCEEDED and PARTIAL, but also a FAILED,
    TIMED_OUT or CANCELLED recovery whose first waves launched: their instances run in the
    recovery account all the same, and nobody may clean them up from drsorch). A recovery
    that launched nothing changed nothing. drsorch does not fail back (DRS's reverse
    replication does, outside drsorch), so the state lasts until a newer recovery replaces it.
    A running recovery is not failed over yet: the plan shows it running. `instances` leaves
    out those a later launch of the same server replaced. Three queries."""
    launched = Count("server_launches", filter=Q(server_launches__status=LaunchStatus.LAUNCHED))
    recoveries = Execution.objects.filter(mode=ExecutionMode.RECOVERY, status__in=EXECUTION_TERMINAL)
    if plan_ids is not None:
        recoveries = recoveries.filter(plan_id__in=list(plan_ids))
    newest: dict[int, Execution] = {}
    for execution in recoveries.annotate(launched_count=launched).order_by("plan_id", "-created_at", "-pk"):
        # Only the newest ended recovery of each plan counts: one that launched nothing after
        # one that did leaves the earlier one's instances running, so it is kept looking.
        if execution.plan_id not in newest and execution.launched_count:
            newest[execution.plan_id] = execution
    if not newest:
        return {}
    instances: dict[object, list[RecoveryInstance]] = {execution.pk: [] for execution in newest.values()}
    rows = (
        ServerLaunch.objects.filter(execution__in=list(newest.values()), status=LaunchStatus.LAUNCHED)
        .exclude(replaced_by_a_later_launch())
        .select_related("target")
        .order_by("hostname", "source_server_id")
    )
    for launch in rows:
        instances[launch.execution_id].append(
            RecoveryInstance(
                hostname=launch.hostname,
                source_server_id=launch.source_server_id,
                recovery_instance_id=launch.recovery_instance_id,
                target_name=launch.target.name,
                account_id=launch.target.account_id,
                region=launch.target.region,
                launched_at=launch.launched_at,
            )
        )
    return {
        plan_id: FailedOver(execution=execution, instances=instances[execution.pk])
        for plan_id, execution in newest.items()
    }


# --- Drills whose instances still run -----------------------------------------------------------


@dataclass(frozen=True)
class DrillLeftRunning:
    """An ended drill whose recovery instances still run (not cleaned up)."""

    execution: Execution
    running: int
    terminating: int
    launched_since: datetime | None
    instance_types: dict[str, int] = field(default_factory=dict)
    cost: CostEstimate = field(default_factory=lambda: CostEstimate(usd_per_hour=0.0))
    now: datetime | None = None
    # When the plan's time-to-live cleans them up (executions.unattended.instance_ttl); None
    # without one.
    expires_at: datetime | None = None

    @property
    def age_seconds(self) -> float | None:
        """How long its oldest instance has run."""
        if self.launched_since is None:
            return None
        return max(0.0, ((self.now or timezone.now()) - self.launched_since).total_seconds())

    @property
    def cost_so_far_usd(self) -> float:
        """The estimated cost since its oldest instance launched (an upper bound)."""
        return self.cost.usd_for((self.age_seconds or 0.0) / 3600)


def drills_left_running() -> list[DrillLeftRunning]:
    """Ended drills with recovery instances still running, oldest launch first: the instances
    each left (`running`, of which `terminating` are being cleaned up; not those a later
    launch of the same server replaced), since when, their
    instance types (the inventory's recommended type, "" when unknown) and the cost estimate
    of executions.costs. Two queries, whatever the number of servers."""
    rows = (
        ServerLaunch.objects.filter(
            execution__mode=ExecutionMode.DRILL,
            execution__status__in=EXECUTION_TERMINAL,
            status=LaunchStatus.LAUNCHED,
        )
        .exclude(replaced_by_a_later_launch())
        .values("execution_id", "phase", "server__recommended_instance_type")
        .annotate(count=Count("pk"), since=Min("launched_at"))
        .order_by()
    )
    found: dict[object, dict] = {}
    for row in rows:
        item = found.setdefault(row["execution_id"], {"running": 0, "terminating": 0, "since": None, "types": {}})
        item["running"] += row["count"]
        if row["phase"] == LaunchPhase.TERMINATING:
            item["terminating"] += row["count"]
        kind = row["server__recommended_instance_type"] or ""
        item["types"][kind] = item["types"].get(kind, 0) + row["count"]
        if row["since"] and (item["since"] is None or row["since"] < item["since"]):
            item["since"] = row["since"]
    executions = Execution.objects.select_related("plan").in_bulk(list(found))
    now = timezone.now()
    drills = [
        DrillLeftRunning(
            execution=executions[pk],
            running=item["running"],
            terminating=item["terminating"],
            launched_since=item["since"] or executions[pk].finished_at,
            instance_types=dict(sorted(item["types"].items())),
            cost=hourly_cost_estimate(instance_types=item["types"]),
            now=now,
            expires_at=drill_instances_expiry(execution=executions[pk]),
        )
        for pk, item in found.items()
    ]
    return sorted(drills, key=lambda drill: (drill.launched_since or now, str(drill.execution.pk)))
