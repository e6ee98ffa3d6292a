"""The sandbox demo, drsorch's side: a sandbox target, its inventory, one protection group
per tier and the plan "Demo 3-tier application".

The simulated servers themselves are created by the sandbox
(drsorch.sandbox.services.sandbox_demo_servers_create); the sandbox knows nothing of targets,
groups or plans. `manage.py sandbox seed` and `manage.py bootstrap` call sandbox_seed.
"""

from dataclasses import dataclass, field, replace
from typing import NamedTuple

from drsorch.sandbox.models import SandboxSourceServer
from drsorch.sandbox.services import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_REGION,
    DEMO_APPLICATION,
    sandbox_demo_servers_create,
    tier_sizes,
)

from .actions import ActionSpec
from .choices import ActionKind, ActionWhen
from .models import ProtectionGroup, RecoveryPlan, Target
from .services import WaveSpec, plan_save, plan_wave_specs, protection_group_save, source_servers_sync

DEFAULT_TARGET_NAME = "Sandbox"
DEMO_PLAN_NAME = "Demo 3-tier application"


class DemoTier(NamedTuple):
    """One tier of the demo application: the servers tagged Tier=`tag`, their group and wave."""

    tag: str
    group: str
    wave: str


DEMO_TIERS = [
    DemoTier("db", "Demo databases", "Database"),
    DemoTier("app", "Demo application servers", "Application"),
    DemoTier("web", "Demo web servers", "Web"),
]


# `sandbox seed --with-actions`: runbook steps of the demo plan, by the wave they follow.
DEMO_ACTIONS = {
    "Database": ActionSpec(
        name="Databases healthy", kind=ActionKind.HEALTH_CHECK, when=ActionWhen.AFTER,
        config={"ec2_status_checks": True, "ssm_ping": True}, timeout_minutes=15,
    ),
    "Web": ActionSpec(
        name="Confirm the app", kind=ActionKind.MANUAL, when=ActionWhen.AFTER,
        config={"instructions": "Open the demo application through the recovered web servers, sign in and load "
                                "the order page; complete this action when it answers."},
        timeout_minutes=60,
    ),
}


@dataclass
class SeedResult:
    """What `sandbox_seed` created; re-running it creates nothing it created before."""

    target: Target
    target_created: bool = False
    servers_created: list[SandboxSourceServer] = field(default_factory=list)
    groups_created: list[ProtectionGroup] = field(default_factory=list)
    plan_created: bool = False
    plan: RecoveryPlan | None = None
    actions_added: list[str] = field(default_factory=list)

    def __str__(self):
        text = (
            f"Target '{self.target.name}' ({'created' if self.target_created else 'already there'}), "
            f"{len(self.servers_created)} simulated server(s) added, {len(self.groups_created)} protection "
            f"group(s) added, plan '{DEMO_PLAN_NAME}' {'created' if self.plan_created else 'already there'}."
        )
        if self.actions_added:
            text += f" Wave actions added: {', '.join(self.actions_added)}."
        return text


def _seed_target(*, target_name, account_id, region):
    target = Target.objects.filter(kind="sandbox", account_id=account_id, region=region).first()
    if target:
        return target, False
    target = Target(name=target_name, kind="sandbox", account_id=account_id, region=region)
    target.full_clean()
    target.save()
    return target, True


def _seed_groups(target):
    groups, created = [], []
    for tier in DEMO_TIERS:
        group = ProtectionGroup.objects.filter(name=tier.group).first()
        if group is None:
            group = protection_group_save(
                name=tier.group, target=target,
                description=f"The {tier.tag} tier of the demo application, chosen by tag Tier={tier.tag}.",
                tag_selector={"Tier": tier.tag, "Application": DEMO_APPLICATION},
            )
            created.append(group)
        groups.append(group)
    return groups, created


def _seed_plan(groups):
    plan = RecoveryPlan.objects.filter(name=DEMO_PLAN_NAME).first()
    if plan:
        return plan, False
    waves = [WaveSpec(name=tier.wave, protection_groups=[group])
             for tier, group in zip(DEMO_TIERS, groups, strict=True)]
    plan = plan_save(
        name=DEMO_PLAN_NAME,
        description="A three-tier demo application on the sandbox: databases first, then the "
                    "application servers, then the web servers.",
        rto_target_minutes=60, rpo_target_minutes=15, waves=waves,
    )
    return plan, True


def _seed_actions(plan):
    """Add DEMO_ACTIONS to the demo plan's waves of those names, each unless the plan already
    has an action of its name (or no longer such a wave). Returns the names added."""
    specs = plan_wave_specs(plan=plan)
    taken = {action.name for spec in specs for action in spec.actions}
    added = []
    for spec in specs:
        action = DEMO_ACTIONS.get(spec.name)
        if action is not None and action.name not in taken:
            spec.actions.append(replace(action, config=dict(action.config)))
            added.append(action.name)
    if added:
        plan_save(
            plan=plan, name=plan.name, description=plan.description, rto_target_minutes=plan.rto_target_minutes,
            rpo_target_minutes=plan.rpo_target_minutes, waves=specs, drill_schedule=plan.drill_schedule,
            drill_instance_ttl_minutes=plan.drill_instance_ttl_minutes, drill_max_age_days=plan.drill_max_age_days,
            auto_approve=plan.auto_approve,
        )
    return added


def sandbox_seed(*, servers: int = 12, target_name: str = DEFAULT_TARGET_NAME, account_id: str = DEFAULT_ACCOUNT_ID,
                 region: str = DEFAULT_REGION, with_actions: bool = False) -> SeedResult:
    """Create the sandbox demo: a sandbox target, `servers` simulated 3-tier source servers,
    the inventory synced from them, one protection group per tier and the plan
    "Demo 3-tier application" (waves Database, Application, Web, each after the previous).
    `with_actions` also gives the plan a health check after the Database wave ("Databases
    healthy") and a manual step after the Web wave ("Confirm the app").

    Idempotent: what exists already (the target for the account and region, servers by
    hostname, groups, the plan and its actions by name) is kept as it is and not created
    twice. Raises ValidationError for fewer servers than tiers.
    """
    tier_sizes(servers)
    target, target_created = _seed_target(target_name=target_name, account_id=account_id, region=region)
    created_servers = sandbox_demo_servers_create(servers=servers, account_id=account_id, region=region)
    source_servers_sync(target=target)
    groups, created_groups = _seed_groups(target)
    plan, plan_created = _seed_plan(groups)
    actions_added = _seed_actions(plan) if with_actions else []
    return SeedResult(
        target=target, target_created=target_created, servers_created=created_servers,
        groups_created=created_groups, plan_created=plan_created, plan=plan, actions_added=actions_added,
    )
