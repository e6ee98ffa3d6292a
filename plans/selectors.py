"""Reads of the plans app that pages share."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Prefetch, QuerySet, Subquery

from .models import PlanReadinessEvaluation, ProtectionGroup, RecoveryPlan, SourceServer, tags_match


@dataclass(frozen=True)
class ServerGroup:
    """A protection group a server belongs to, and how: chosen explicitly, or by the group's
    tag selector (a server may be both; it is then listed once, as explicit)."""

    group: ProtectionGroup
    explicit: bool

    @property
    def selector_text(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in sorted(self.group.tag_selector.items()))


def server_groups(servers: Sequence[SourceServer]) -> dict[int, list[ServerGroup]]:
    """Every protection group each of `servers` belongs to, by server pk, sorted by name.

    One query whatever the number of servers: the groups with a tag selector on the servers'
    targets, matched in Python against the tags already loaded. The explicit group comes from
    `membership__group`, which the caller selects with the servers (else one query per server)."""
    target_ids = {server.target_id for server in servers}
    tagged = (
        list(
            ProtectionGroup.objects.filter(target_id__in=target_ids)
            .exclude(tag_selector={})
            .only("pk", "name", "target_id", "tag_selector")
            .order_by("name", "pk")
        )
        if target_ids
        else []
    )
    by_target = {}
    for group in tagged:
        by_target.setdefault(group.target_id, []).append(group)
    found = {}
    for server in servers:
        membership = getattr(server, "membership", None)
        explicit = membership.group if membership is not None else None
        groups = [ServerGroup(explicit, True)] if explicit is not None else []
        groups += [
            ServerGroup(group, False)
            for group in by_target.get(server.target_id, ())
            if (explicit is None or group.pk != explicit.pk) and tags_match(server.tags, group.tag_selector)
        ]
        found[server.pk] = sorted(groups, key=lambda item: (item.group.name, item.group.pk))
    return found


def servers_of_groups(*, group_ids: Iterable[int]) -> list[SourceServer]:
    """The servers the protection groups `group_ids` resolve to (explicit members and tag
    matches), each once, by hostname: the servers of a wave with these groups."""
    found: dict[int, SourceServer] = {}
    for group in ProtectionGroup.objects.filter(pk__in=set(group_ids)).prefetch_related("servers"):
        for server in group.resolved_servers():
            found.setdefault(server.pk, server)
    return sorted(found.values(), key=lambda server: (server.hostname, server.drs_id))


# --- Drill age: OVERDUE when the last successful drill is older than the plan allows ------------

# executions.choices.ExecutionMode.DRILL and ExecutionStatus.SUCCEEDED: plans reads executions
# only through the reverse relation "executions" (imports run executions -> plans), so it names
# these two values itself; tests/executions/test_overdue.py checks that they still match.
DRILL_MODE = "DRILL"
SUCCEEDED_STATUS = "SUCCEEDED"


def plans_with_drill_age(queryset: QuerySet[RecoveryPlan]) -> QuerySet[RecoveryPlan]:
    """`queryset` with each plan's last SUCCEEDED drill annotated (`last_successful_drill_at`,
    its finished_at on DRS's clock as the engine stored it, and `last_successful_drill_id`):
    two subqueries of the same query, whatever the number of plans. `plan_drill_age` reads them."""
    execution_model = RecoveryPlan._meta.get_field("executions").related_model
    succeeded = execution_model.objects.filter(
        plan=OuterRef("pk"), mode=DRILL_MODE, status=SUCCEEDED_STATUS, finished_at__isnull=False
    ).order_by("-finished_at", "-created_at")
    return queryset.annotate(
        last_successful_drill_at=Subquery(succeeded.values("finished_at")[:1]),
        last_successful_drill_id=Subquery(succeeded.values("pk")[:1]),
    )


@dataclass(frozen=True)
class DrillAge:
    """How old a plan's last successful drill is against its `drill_max_age_days`.

    A plan never drilled successfully counts from its creation: it becomes OVERDUE once it has
    existed longer than its max age without a successful drill (a new plan gets that long to
    be drilled first; an old plan given a limit is overdue at once)."""

    max_age_days: int
    last_success_at: datetime | None
    last_success_id: object | None
    created_at: datetime
    now: datetime

    @property
    def since(self) -> datetime:
        """What the age counts from: the last successful drill's end, else the plan's creation."""
        return self.last_success_at or self.created_at

    @property
    def due_at(self) -> datetime:
        """When the plan becomes (or became) OVERDUE."""
        return self.since + timedelta(days=self.max_age_days)

    @property
    def overdue(self) -> bool:
        return self.now > self.due_at

    @property
    def age_days(self) -> int | None:
        """Whole days since the last successful drill; None when there was none."""
        if self.last_success_at is None:
            return None
        return max(0, (self.now - self.last_success_at).days)

    @property
    def due_in_days(self) -> int:
        """Whole days left before the plan is OVERDUE (0: less than a day); 0 once overdue."""
        return max(0, (self.due_at - self.now).days)

    def as_json(self) -> dict:
        """The details a drill.overdue notice carries."""
        return {
            "max_age_days": self.max_age_days,
            "last_drill_at": _iso(self.last_success_at),
            "last_drill_id": str(self.last_success_id) if self.last_success_id is not None else None,
            "age_days": self.age_days,
            "overdue_since": _iso(self.due_at),
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def plan_last_successful_drill_at(plan: RecoveryPlan) -> datetime | None:
    """When `plan`'s last SUCCEEDED drill finished, from the annotations of
    `plans_with_drill_age`; a plan fetched without them costs one query (then annotated)."""
    if not hasattr(plan, "last_successful_drill_at"):
        annotated = plans_with_drill_age(RecoveryPlan.objects.filter(pk=plan.pk)).values(
            "last_successful_drill_at", "last_successful_drill_id"
        ).first() or {}
        plan.last_successful_drill_at = annotated.get("last_successful_drill_at")
        plan.last_successful_drill_id = annotated.get("last_successful_drill_id")
    return plan.last_successful_drill_at


def plan_drill_age(plan: RecoveryPlan, *, now: datetime) -> DrillAge | None:
    """The drill age of `plan` (None when it has no `drill_max_age_days`), from the annotations
    of `plans_with_drill_age`; a plan fetched without them costs one query."""
    if not plan.drill_max_age_days:
        return None
    plan_last_successful_drill_at(plan)
    return DrillAge(
        max_age_days=plan.drill_max_age_days,
        last_success_at=plan.last_successful_drill_at,
        last_success_id=plan.last_successful_drill_id,
        created_at=plan.created_at,
        now=now,
    )


# --- The readiness watch's evaluations -------------------------------------------------------------


def latest_readiness_evaluations() -> QuerySet[PlanReadinessEvaluation]:
    """Each plan's newest evaluation (no newer one of the same plan exists)."""
    newer = PlanReadinessEvaluation.objects.filter(plan=OuterRef("plan"), sequence__gt=OuterRef("sequence"))
    return PlanReadinessEvaluation.objects.exclude(Exists(newer))


def prefetch_last_readiness_evaluation() -> Prefetch:
    """Prefetch each plan's newest evaluation into `plan.last_evaluations` (a list of zero or
    one): one query for any number of plans. Read it with `last_readiness_evaluation(plan)`."""
    return Prefetch("readiness_evaluations", queryset=latest_readiness_evaluations(), to_attr="last_evaluations")


def last_readiness_evaluation(plan: RecoveryPlan) -> PlanReadinessEvaluation | None:
    """The newest evaluation of `plan`, prefetched (prefetch_last_readiness_evaluation) or read."""
    if hasattr(plan, "last_evaluations"):
        return next(iter(plan.last_evaluations), None)
    return plan.readiness_evaluations.order_by("-sequence").first()


def plan_readiness_evaluations(*, plan: RecoveryPlan) -> QuerySet[PlanReadinessEvaluation]:
    """The evaluations of `plan`, newest first."""
    return plan.readiness_evaluations.order_by("-sequence")
