"""The sandbox demo, drsorch's side: a sandbox target, its inventory, one protection group
per tier and the plan "Demo 3-tier application".

The simulated servers themselves are created by the sandbox
(drsorch.sandbox.services.sandbox_demo_servers_create); the sandbox knows nothing of targets,
groups or plans. `manage.py sandbox seed` and `manage.py bootstrap` call sandbox_seed.
"""

from dataclasses import dataclass, field
from typing import NamedTuple

from drsorch.sandbox.models import SandboxSourceServer
from drsorch.sandbox.services import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_REGION,
    DEMO_APPLICATION,
    sandbox_demo_servers_create,
    tier_sizes,
)

from .models import ProtectionGroup, RecoveryPlan, Target
from .services import WaveSpec, plan_save, protection_group_save, source_servers_sync

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


@dataclass
class SeedResult:
    """What `sandbox_seed` created; re-running it creates nothing it created before."""

    target: Target
    target_created: bool = False
    servers_created: list[SandboxSourceServer] = field(default_factory=list)
    groups_created: list[ProtectionGroup] = field(default_factory=list)
    plan_created: bool = False
    plan: RecoveryPlan | None = None

    def __str__(self):
        return (
            f"Target '{self.target.name}' ({'created' if self.target_created else 'already there'}), "
            f"{len(self.servers_created)} simulated server(s) added, {len(self.groups_created)} protection "
            f"group(s) added, plan '{DEMO_PLAN_NAME}' {'created' if self.plan_created else 'already there'}."
        )


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


def sandbox_seed(*, servers: int = 12, target_name: str = DEFAULT_TARGET_NAME, account_id: str = DEFAULT_ACCOUNT_ID,
                 region: str = DEFAULT_REGION) -> SeedResult:
    """Create the sandbox demo: a sandbox target, `servers` simulated 3-tier source servers,
    the inventory synced from them, one protection group per tier and the plan
    "Demo 3-tier application" (waves Database, Application, Web, each after the previous).

    Idempotent: what exists already (the target for the account and region, servers by
    hostname, groups and the plan by name) is kept as it is and not created twice. Raises
    ValidationError for fewer servers than tiers.
    """
    tier_sizes(servers)
    target, target_created = _seed_target(target_name=target_name, account_id=account_id, region=region)
    created_servers = sandbox_demo_servers_create(servers=servers, account_id=account_id, region=region)
    source_servers_sync(target=target)
    groups, created_groups = _seed_groups(target)
    plan, plan_created = _seed_plan(groups)
    return SeedResult(
        target=target, target_created=target_created, servers_created=created_servers,
        groups_created=created_groups, plan_created=plan_created, plan=plan,
    )
