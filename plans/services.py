"""Business logic of the plans app: saving recovery plans and protection groups.

Views, API serializers, admin actions and commands call these functions; none of them
writes a plan, a wave or a protection group by itself.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import router, transaction
from django.db.models import ProtectedError
from django.db.models.deletion import Collector
from django.utils import timezone

from drsorch.drs import gateway
from drsorch.drs.errors import ErrorKind, classify, error_code, error_message, explain
from drsorch.drs.times import parse_drs_time, parse_duration_seconds

from .actions import ActionSpec, actions_check
from .choices import ActionKind, ReplicationState, TargetKind
from .models import ProtectionGroup, ProtectionGroupMembership, RecoveryPlan, SourceServer, Target, Wave, WaveAction

logger = logging.getLogger(__name__)

MAX_WAVE_TIMEOUT_MINUTES = 1440
MAX_WAVE_WAIT_MINUTES = 1440


@dataclass
class WaveSpec:
    """What a wave should be, before it is saved. `depends_on` holds positions of other
    waves in the same list; None means "the previous wave" (nothing for the first)."""

    name: str
    protection_groups: list = field(default_factory=list)
    depends_on: list | None = None
    approval_required: bool = False
    wait_after_minutes: int = 0
    timeout_minutes: int = 120
    optional_servers: list = field(default_factory=list)
    actions: list[ActionSpec] = field(default_factory=list)

    def dependencies(self, position: int) -> list[int]:
        if self.depends_on is None:
            return [position - 1] if position > 0 else []
        return list(self.depends_on)


def _wave_label(spec, position):
    return f"'{spec.name}'" if spec.name else f"#{position + 1}"


def _find_cycle(edges):
    """Return one dependency cycle as a list of positions, or None. `edges[i]` lists the
    waves i depends on. A depth-first search with its own stack: a chain of thousands of
    waves must not exhaust Python's recursion."""
    state = {}  # position -> "visiting" | "done"
    for root in sorted(edges):
        if root in state:
            continue
        state[root] = "visiting"
        path, pending = [root], [iter(edges.get(root, ()))]
        while path:
            for dep in pending[-1]:
                if state.get(dep) == "visiting":
                    return path[path.index(dep):] + [dep]
                if dep not in state:
                    state[dep] = "visiting"
                    path.append(dep)
                    pending.append(iter(edges.get(dep, ())))
                    break
            else:
                state[path.pop()] = "done"
                pending.pop()
    return None


def plan_validate_waves(*, waves: Sequence[WaveSpec]) -> dict[int, list[SourceServer]]:
    """Check the structure of a plan's waves and return the servers each wave resolves to.

    Raises ValidationError whose keys are "waves" for plan-wide problems and
    "waves.<position>.<field>" for a problem of one wave, so forms and the API can show
    each message next to the field at fault.
    """
    errors = defaultdict(list)
    if not waves:
        errors["waves"].append("A plan needs at least one wave.")
        raise ValidationError(dict(errors))

    seen_names = {}
    for position, spec in enumerate(waves):
        if not (spec.name or "").strip():
            errors[f"waves.{position}.name"].append(f"Wave #{position + 1} needs a name.")
        elif spec.name in seen_names:
            errors[f"waves.{position}.name"].append(
                f"Two waves are named '{spec.name}'; wave names must be unique within a plan."
            )
        else:
            seen_names[spec.name] = position
        if not 1 <= spec.timeout_minutes <= MAX_WAVE_TIMEOUT_MINUTES:
            errors[f"waves.{position}.timeout_minutes"].append(
                f"The timeout must be between 1 and {MAX_WAVE_TIMEOUT_MINUTES} minutes."
            )
        if not 0 <= spec.wait_after_minutes <= MAX_WAVE_WAIT_MINUTES:
            errors[f"waves.{position}.wait_after_minutes"].append(
                f"The wait must be between 0 and {MAX_WAVE_WAIT_MINUTES} minutes."
            )

    edges = {}
    for position, spec in enumerate(waves):
        label = _wave_label(spec, position)
        deps = spec.dependencies(position)
        for dep in deps:
            if not isinstance(dep, int) or not 0 <= dep < len(waves):
                errors[f"waves.{position}.depends_on"].append(
                    f"Wave {label} depends on wave {dep}, which is not in this plan."
                )
            elif dep == position:
                errors[f"waves.{position}.depends_on"].append(f"Wave {label} cannot depend on itself.")
        edges[position] = [d for d in deps if isinstance(d, int) and 0 <= d < len(waves) and d != position]
    cycle = _find_cycle(edges)
    if cycle:
        names = " → ".join(_wave_label(waves[p], p) for p in reversed(cycle))
        errors["waves"].append(f"The waves depend on each other in a cycle: {names}.")

    resolved = {}
    first_wave_of_server = {}
    for position, spec in enumerate(waves):
        label = _wave_label(spec, position)
        if not spec.protection_groups:
            errors[f"waves.{position}.protection_groups"].append(
                f"Wave {label} is empty: choose at least one protection group."
            )
            resolved[position] = []
            continue
        servers = {}
        for group in spec.protection_groups:
            for server in group.resolved_servers():
                servers[server.pk] = server
        resolved[position] = sorted(servers.values(), key=lambda s: (s.hostname, s.drs_id))
        if not servers:
            errors[f"waves.{position}.protection_groups"].append(
                f"Wave {label} is empty: its protection groups resolve to no servers."
            )
        for server in resolved[position]:
            if server.pk in first_wave_of_server:
                other = first_wave_of_server[server.pk]
                errors[f"waves.{position}.protection_groups"].append(
                    f"Server {server.display_name} ({server.drs_id}) is in wave "
                    f"{_wave_label(waves[other], other)} and in wave {label}; "
                    "a server can be in only one wave of a plan."
                )
            else:
                first_wave_of_server[server.pk] = position
        for server in spec.optional_servers:
            if server.pk not in servers:
                errors[f"waves.{position}.optional_servers"].append(
                    f"Server {server.display_name} ({server.drs_id}) is marked optional "
                    f"but is not in wave {label}."
                )

    tidied_actions, action_errors = actions_check(waves)
    for key, messages in action_errors.items():
        errors[key].extend(messages)
    if errors:
        raise ValidationError(dict(errors))
    for spec, actions in zip(waves, tidied_actions, strict=True):
        spec.actions = actions
    return resolved


@transaction.atomic
def plan_save(*, plan: RecoveryPlan | None = None, name: str, description: str = "", rto_target_minutes: int = 60,
              rpo_target_minutes: int = 15, owner: AbstractBaseUser | None = None,
              waves: Sequence[WaveSpec], drill_schedule: str | None = None,
              drill_instance_ttl_minutes: int | None = None,
              drill_max_age_days: int | None = None, auto_approve: bool = False) -> RecoveryPlan:
    """Create a recovery plan, or replace an existing plan's fields and waves, all or nothing.

    Every field is replaced, the unattended-drill settings too: None (or a blank schedule)
    clears them. Running executions are not affected: each keeps the frozen copy it took at start.
    """
    plan = plan or RecoveryPlan(owner=owner)
    plan.name = name
    plan.description = description
    plan.rto_target_minutes = rto_target_minutes
    plan.rpo_target_minutes = rpo_target_minutes
    # Stored with single spaces, and NULL rather than "" when there is no schedule.
    plan.drill_schedule = " ".join((drill_schedule or "").split()) or None
    plan.drill_instance_ttl_minutes = drill_instance_ttl_minutes
    plan.drill_max_age_days = drill_max_age_days
    plan.auto_approve = bool(auto_approve)
    if owner is not None and plan.owner_id is None:
        plan.owner = owner
    errors = {}
    try:
        plan.full_clean()
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        plan_validate_waves(waves=waves)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)

    plan.save()
    plan.waves.all().delete()
    created = []
    for position, spec in enumerate(waves):
        wave = Wave.objects.create(
            plan=plan,
            order=position,
            name=spec.name.strip(),
            approval_required=spec.approval_required,
            wait_after_minutes=spec.wait_after_minutes,
            timeout_minutes=spec.timeout_minutes,
        )
        wave.protection_groups.set(spec.protection_groups)
        wave.optional_servers.set(spec.optional_servers)
        created.append(wave)
    for position, spec in enumerate(waves):
        created[position].depends_on.set([created[dep] for dep in spec.dependencies(position)])
    WaveAction.objects.bulk_create(
        WaveAction(
            plan=plan, wave=created[position], position=index, name=action.name, kind=action.kind, when=action.when,
            config=action.config, timeout_minutes=action.timeout_minutes, on_failure=action.on_failure,
        )
        for position, spec in enumerate(waves)
        for index, action in enumerate(spec.actions)
    )
    return plan


def plan_wave_specs(*, plan: RecoveryPlan) -> list[WaveSpec]:
    """The plan's stored waves as WaveSpecs, e.g. to edit one wave and save the plan again."""
    waves = list(plan.waves.prefetch_related("protection_groups", "depends_on", "optional_servers", "actions"))
    position_of = {wave.pk: position for position, wave in enumerate(waves)}
    return [
        WaveSpec(
            name=wave.name,
            protection_groups=list(wave.protection_groups.all()),
            depends_on=sorted(position_of[dep.pk] for dep in wave.depends_on.all()),
            approval_required=wave.approval_required,
            wait_after_minutes=wave.wait_after_minutes,
            timeout_minutes=wave.timeout_minutes,
            optional_servers=list(wave.optional_servers.all()),
            actions=[
                ActionSpec(
                    name=action.name, kind=action.kind, when=action.when, config=action.config,
                    timeout_minutes=action.timeout_minutes, on_failure=action.on_failure,
                )
                for action in wave.actions.all()
            ],
        )
        for wave in waves
    ]


@transaction.atomic
def plan_stored_waves_check(*, plan: RecoveryPlan) -> None:
    """Hold a plan whose waves and actions were written row by row (the admin's inlines) to
    plan_save's rules: raises plan_validate_waves' ValidationError, else stores each action's
    config as the checks tidied it (defaults filled, a parameter's string made a list)."""
    specs = plan_wave_specs(plan=plan)
    plan_validate_waves(waves=specs)
    rows = list(WaveAction.objects.filter(plan=plan).select_related("wave").order_by("wave__order", "position"))
    tidied = [action for spec in specs for action in spec.actions]
    changed = []
    for row, action in zip(rows, tidied, strict=True):
        if row.config != action.config:
            row.config = action.config
            changed.append(row)
    WaveAction.objects.bulk_update(changed, ["config"])


def wave_action_secrets_keep(*, plan: RecoveryPlan | None, waves: Sequence[WaveSpec]) -> None:
    """Give each webhook action of `waves` whose config leaves "secret" out the secret `plan`
    holds for its webhook action of the same name. A secret is write-only (the API and the
    plan page never show it), so an edit that does not mention it keeps it; an empty secret
    removes it. Changes the ActionSpecs in place; a new plan has nothing to keep."""
    if plan is None or plan.pk is None:
        return
    stored = {
        action.name: action.config["secret"]
        for action in WaveAction.objects.filter(plan=plan, kind=ActionKind.WEBHOOK)
        if isinstance(action.config, dict) and action.config.get("secret")
    }
    for spec in waves:
        for action in spec.actions:
            name = action.name.strip() if isinstance(action.name, str) else action.name
            if (action.kind == ActionKind.WEBHOOK and isinstance(action.config, dict)
                    and "secret" not in action.config and name in stored):
                action.config = {**action.config, "secret": stored[name]}


@transaction.atomic
def protection_group_save(*, group: ProtectionGroup | None = None, name: str, target: Target, description: str = "",
                          servers: Iterable[SourceServer] = (), tag_selector: dict[str, str] | None = None
                          ) -> ProtectionGroup:
    """Create or update a protection group with its explicit servers and tag selector.

    Refuses servers of another target and servers already explicitly in another group,
    naming each, and a group with neither servers nor a tag selector.
    """
    group = group or ProtectionGroup()
    group.name = name
    group.description = description
    group.target = target
    group.tag_selector = tag_selector or {}
    errors = defaultdict(list)
    try:
        group.full_clean()
    except ValidationError as exc:
        for key, messages in exc.message_dict.items():
            errors[key].extend(messages)

    servers = list(servers)
    for server in servers:
        if target is not None and server.target_id != target.pk:
            errors["servers"].append(
                f"Server {server.display_name} ({server.drs_id}) belongs to target "
                f"'{server.target.name}', not to '{target.name}'."
            )
    taken = (
        ProtectionGroupMembership.objects.filter(server__in=servers)
        .exclude(group_id=group.pk)
        .select_related("server", "group")
    )
    for membership in taken:
        errors["servers"].append(
            f"Server {membership.server.display_name} ({membership.server.drs_id}) is already "
            f"in protection group '{membership.group.name}'; a server can be chosen "
            "explicitly for only one group."
        )
    if not servers and not group.tag_selector:
        errors["__all__"].append("Choose at least one server or give a tag selector.")
    if errors:
        raise ValidationError(dict(errors))

    group.save()
    ProtectionGroupMembership.objects.filter(group=group).exclude(server__in=servers).delete()
    existing = set(group.memberships.values_list("server_id", flat=True))
    ProtectionGroupMembership.objects.bulk_create(
        [ProtectionGroupMembership(group=group, server=s) for s in servers if s.pk not in existing]
    )
    return group


def protection_group_delete_refusal(*, group: ProtectionGroup) -> str | None:
    """Why `group` cannot be deleted (a plan still uses it), or None when it can: the delete
    page says so before anyone clicks, and protection_group_delete refuses with it."""
    plans = sorted({wave.plan.name for wave in group.waves.select_related("plan")})
    if plans:
        return (
            f"Protection group '{group.name}' is used by the plan(s) {', '.join(plans)}; "
            "remove it from their waves first."
        )
    return None


def protection_group_delete_check(*, group: ProtectionGroup) -> None:
    """Raise ValidationError naming the plans whose waves use the group, if any: deleting it
    would leave those waves without its servers."""
    if refusal := protection_group_delete_refusal(group=group):
        raise ValidationError(refusal)


def protection_group_delete(*, group: ProtectionGroup) -> None:
    """Delete a protection group unless a plan still uses it."""
    protection_group_delete_check(group=group)
    group.delete()


def plan_delete_refusal(*, plan: RecoveryPlan) -> str | None:
    """Why `plan` cannot be deleted (it has executions, which are evidence), or None."""
    count = plan.executions.count()
    if count:
        return (
            f"Plan '{plan.name}' has {count} execution(s); they are evidence of drills and recoveries, "
            "so the plan cannot be deleted."
        )
    return None


def plan_delete_check(*, plan: RecoveryPlan) -> None:
    """Raise ValidationError when the plan has executions (running or ended): they are audit
    evidence and keep their plan."""
    if refusal := plan_delete_refusal(plan=plan):
        raise ValidationError(refusal)


def plan_delete(*, plan: RecoveryPlan) -> None:
    """Delete a plan that never ran: its executions are audit evidence and keep their plan."""
    plan_delete_check(plan=plan)
    plan.delete()


def target_delete_check(*, target: Target) -> None:
    """Raise ValidationError naming what still uses the target: its protection groups, and the
    records of executions that launched or claimed servers in it (audit evidence). Its synced
    inventory alone does not keep it: DRS still holds those servers, a sync brings them back."""
    groups = sorted(target.protection_groups.values_list("name", flat=True))
    if groups:
        raise ValidationError(
            f"Target '{target.name}' is used by the protection group(s) {', '.join(groups)}; "
            "delete or move them first."
        )
    try:
        Collector(using=router.db_for_write(Target)).collect([target])
    except ProtectedError as exc:
        # Rows of other apps that name the target (a notification channel publishing with its
        # credentials) are named one by one; executions' rows are evidence, named by kind.
        users = sorted({f"{obj._meta.verbose_name} '{obj}'" for obj in exc.protected_objects
                        if obj._meta.app_label != "executions"})
        if users:
            raise ValidationError(
                f"Target '{target.name}' is used by {', '.join(users[:10])}; change or delete them first."
            ) from exc
        kinds = sorted({str(obj._meta.verbose_name_plural) for obj in exc.protected_objects})
        raise ValidationError(
            f"Target '{target.name}' has {', '.join(kinds)} of executions that are evidence of drills and "
            "recoveries, so it cannot be deleted."
        ) from exc


@transaction.atomic
def target_delete(*, target: Target) -> None:
    """Delete a target and its synced inventory unless groups or executions still use it."""
    target_delete_check(target=target)
    target.delete()


# --- Inventory sync from DRS -------------------------------------------------------------------

_SYNCED_FIELDS = [
    "arn", "hostname", "tags", "replication_state", "lag_seconds", "last_seen_at",
    "recommended_instance_type", "os_name", "raw", "in_drs", "synced_at",
]

@dataclass
class SyncResult:
    """What one inventory sync changed."""

    created: int = 0
    updated: int = 0
    missing: int = 0
    uninitialized: bool = False


def _inventory_fields(record, now):
    """SourceServer field values from one DescribeSourceServers item."""
    properties = record.get("sourceProperties") or {}
    hints = properties.get("identificationHints") or {}
    replication = record.get("dataReplicationInfo") or {}
    state = replication.get("dataReplicationState")
    return {
        "arn": record.get("arn", ""),
        "hostname": (hints.get("hostname") or hints.get("fqdn") or "")[:255],
        "tags": record.get("tags") or {},
        "replication_state": state if state in ReplicationState.values else ReplicationState.UNKNOWN,
        "lag_seconds": parse_duration_seconds(replication.get("lagDuration")),
        "last_seen_at": parse_drs_time((record.get("lifeCycle") or {}).get("lastSeenByServiceDateTime")),
        "recommended_instance_type": properties.get("recommendedInstanceType", "")[:64],
        "os_name": ((properties.get("os") or {}).get("fullString") or "")[:255],
        "raw": record,
        "in_drs": True,
        "synced_at": now,
    }


def source_servers_sync(*, target: Target) -> SyncResult:
    """Refresh the target's inventory from DescribeSourceServers (every page).

    Upserts one SourceServer per DRS source server with bulk queries, and marks servers DRS
    no longer reports `in_drs=False` (kept, since plans may name them). A region where DRS
    was never initialized counts as "no servers", not as an outage.
    """
    records = gateway.source_servers(target=target)
    result = SyncResult(uninitialized=records is None)
    if records is None:
        logger.info("DRS is not initialized for target %s (%s %s); treating it as having no servers.",
                    target.name, target.account_id, target.region)
        records = []
    now = timezone.now()
    with transaction.atomic():
        existing = {s.drs_id: s for s in SourceServer.objects.filter(target=target)}
        to_create, to_update = [], []
        for record in records:
            fields = _inventory_fields(record, now)
            server = existing.get(record["sourceServerID"])
            if server is None:
                to_create.append(SourceServer(target=target, drs_id=record["sourceServerID"], **fields))
                continue
            for name, value in fields.items():
                setattr(server, name, value)
            to_update.append(server)
        SourceServer.objects.bulk_create(to_create, batch_size=500)
        SourceServer.objects.bulk_update(to_update, _SYNCED_FIELDS, batch_size=500)
        reported = {record["sourceServerID"] for record in records}
        gone = [s.pk for drs_id, s in existing.items() if drs_id not in reported and s.in_drs]
        SourceServer.objects.filter(pk__in=gone).update(in_drs=False, synced_at=now)
    result.created, result.updated, result.missing = len(to_create), len(to_update), len(gone)
    logger.info("Synced target %s: %s created, %s updated, %s no longer in DRS.",
                target.name, result.created, result.updated, result.missing)
    return result


# --- Testing a target's connection ---------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionCheck:
    """One call of a connection test: the operation, whether it answered, and in plain words
    what it found (the identity, or the problem and its fix)."""

    operation: str
    ok: bool
    detail: str
    asked: bool = True


@dataclass
class ConnectionTest:
    """What `target_connection_test` found: who drsorch is in the target's account and the
    outcome of each call; `problems` are the failed checks."""

    target: Target
    identity: str = ""
    checks: list[ConnectionCheck] = field(default_factory=list)
    tested_at: object = None

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def problems(self) -> list[ConnectionCheck]:
        return [check for check in self.checks if not check.ok]


def _identity_problem(target: Target, exc: BaseException) -> str:
    """An STS failure in plain words: the role, its external ID, the endpoint or the credentials."""
    if isinstance(exc, ClientError) and exc.operation_name == "AssumeRole":
        external = " with its external ID" if target.external_id else ""
        return (
            f"drsorch could not assume the role {target.role_arn}{external} ({error_code(exc)}: "
            f"{error_message(exc)}). Check that the role exists, that its trust policy lets drsorch's "
            "account assume it, and that the external ID matches the one in the trust policy."
        )
    if isinstance(exc, NoCredentialsError):
        return (
            "drsorch has no AWS credentials to start from (no environment variables, profile or "
            "instance role): give the drsorch host credentials that may assume the target's role."
        )
    if isinstance(exc, BotoCoreError) and classify(exc) == ErrorKind.UNREACHABLE:
        return f"The STS endpoint of {target.region} cannot be reached ({exc}): check the network path to AWS."
    return f"STS refused GetCallerIdentity: {explain(exc, operation='GetCallerIdentity')}"


def _drs_problem(target: Target, exc: BaseException, operation: str) -> str:
    """A DRS failure in plain words, naming the operation that failed."""
    if error_code(exc) == "AccessDeniedException":
        return (
            f"AccessDenied on drs:{operation}: the identity drsorch uses may not call it. "
            f"Add drs:{operation} to its IAM policy (the README lists every permission drsorch needs). "
            f"AWS said: {error_message(exc)}"
        )
    if isinstance(exc, BotoCoreError) and classify(exc) == ErrorKind.UNREACHABLE:
        return f"The DRS endpoint of {target.region} cannot be reached ({exc}): check the network path to AWS."
    return f"drs:{operation} failed: {explain(exc, operation=operation)}"


def target_connection_test(*, target: Target) -> ConnectionTest:
    """Call the target once as drsorch would and say what works: STS GetCallerIdentity (who
    drsorch is there; `aws` targets only, the sandbox simulates no STS), then one cheap DRS
    read, DescribeSourceServers of at most one server, without retries. Failures are reported
    in the result, never raised; nothing is written (the inventory sync stays separate)."""
    result = ConnectionTest(target=target, tested_at=timezone.now())
    if target.kind == TargetKind.SANDBOX:
        result.identity = f"arn:aws:sts::{target.account_id}:assumed-role/drsorch/drsorch (simulated)"
        result.checks.append(
            ConnectionCheck(
                "sts:GetCallerIdentity",
                True,
                "Not asked: the sandbox simulates DRS and EC2 only, with no STS; every sandbox call runs "
                "as the simulated role above.",
                asked=False,
            )
        )
    else:
        try:
            identity = gateway.caller_identity(target=target)
        except (BotoCoreError, ClientError) as exc:
            result.checks.append(ConnectionCheck("sts:GetCallerIdentity", False, _identity_problem(target, exc)))
            if classify(exc) == ErrorKind.UNREACHABLE or isinstance(exc, NoCredentialsError):
                # Without working credentials every DRS call fails the same way: not asked.
                return result
        else:
            result.identity = identity["arn"]
            if identity["account"] != target.account_id:
                result.checks.append(
                    ConnectionCheck(
                        "sts:GetCallerIdentity",
                        False,
                        f"The credentials are those of account {identity['account']} ({identity['arn']}), not of "
                        f"the target's account {target.account_id}: set the target's role ARN to a role in "
                        f"{target.account_id}, or fix its account ID.",
                    )
                )
            else:
                result.checks.append(
                    ConnectionCheck("sts:GetCallerIdentity", True, f"drsorch calls as {identity['arn']}.")
                )
    operation = "DescribeSourceServers"
    try:
        found = gateway.source_servers_probe(target=target)
    except (BotoCoreError, ClientError) as exc:
        result.checks.append(ConnectionCheck(f"drs:{operation}", False, _drs_problem(target, exc, operation)))
    else:
        seen = "and sees source servers" if found else "and has no source server yet"
        result.checks.append(ConnectionCheck(f"drs:{operation}", True, f"DRS answers in {target.region} {seen}."))
    return result
