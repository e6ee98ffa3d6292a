"""Every validation rule of targets, protection groups and plans, with the message users see."""

import pytest
from django.core.exceptions import ValidationError

from plans.models import RecoveryPlan, Target
from plans.services import WaveSpec, plan_save, plan_validate_waves, protection_group_save
from tests.factories import ProtectionGroupFactory, SourceServerFactory, TargetFactory

pytestmark = pytest.mark.django_db


def messages_of(exc_info):
    return {key: " ".join(msgs) for key, msgs in exc_info.value.message_dict.items()}


# --- Targets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("account_id", "12345", "An AWS account ID is exactly 12 digits."),
        ("account_id", "12345678901a", "An AWS account ID is exactly 12 digits."),
        ("region", "Virginia", "Enter an AWS region code such as us-east-1"),
        ("role_arn", "arn:aws:iam::123:role/x", "Enter an IAM role ARN"),
        # What a regex with \d, \w or $ let through, and every AWS call then refuses.
        (
            "account_id",
            "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662",
            "An AWS account ID is exactly 12 digits.",
        ),
        ("account_id", "123456789012\n", "An AWS account ID is exactly 12 digits."),
        ("region", "us-east-1\n", "Enter an AWS region code"),
        ("role_arn", "arn:aws:iam::123456789012:role/dr\u00e9sorch", "Enter an IAM role ARN"),
        ("external_id", "x", "An external ID is 2 to 1224 characters"),
        ("external_id", "has space", "An external ID is 2 to 1224 characters"),
        ("external_id", "caf\u00e9-id", "An external ID is 2 to 1224 characters"),
    ],
)
def test_target_refuses_bad_fields(field, value, message):
    target = Target(
        name="prod",
        kind="aws",
        account_id="123456789012",
        region="us-east-1",
        role_arn="arn:aws:iam::123456789012:role/drsorch",
    )
    setattr(target, field, value)
    with pytest.raises(ValidationError) as exc:
        target.full_clean()
    assert message in messages_of(exc)[field]


def test_target_accepts_role_with_external_id():
    Target(
        name="prod",
        account_id="123456789012",
        region="eu-west-2",
        role_arn="arn:aws:iam::123456789012:role/drsorch",
        external_id="x-1",
    ).full_clean()


def test_target_refuses_external_id_without_role():
    target = Target(name="prod", account_id="123456789012", region="us-east-1", external_id="abc")
    with pytest.raises(ValidationError) as exc:
        target.full_clean()
    assert "only used with a role ARN" in messages_of(exc)["external_id"]


def test_target_refuses_second_target_for_same_account_and_region():
    TargetFactory(account_id="123456789012", region="us-east-1", kind="aws")
    target = Target(name="again", kind="aws", account_id="123456789012", region="us-east-1")
    with pytest.raises(ValidationError) as exc:
        target.full_clean()
    assert "A target for this account and region already exists." in str(exc.value)


def test_source_server_id_format():
    server = SourceServerFactory.build(target=TargetFactory(), drs_id="s-123")
    with pytest.raises(ValidationError) as exc:
        server.full_clean()
    assert "'s-' followed by 17 letters or digits" in messages_of(exc)["drs_id"]


# --- Protection groups ---------------------------------------------------------------------


def test_group_resolves_explicit_servers_and_tag_matches():
    target = TargetFactory()
    db1 = SourceServerFactory(target=target, hostname="db-01", tags={"Tier": "db", "Env": "prod"})
    SourceServerFactory(target=target, hostname="db-02", tags={"Tier": "db", "Env": "test"})
    app = SourceServerFactory(target=target, hostname="app-01", tags={"Tier": "app"})
    SourceServerFactory(hostname="db-elsewhere", tags={"Tier": "db", "Env": "prod"})  # other target
    group = protection_group_save(
        name="prod db", target=target, servers=[app], tag_selector={"Tier": "db", "Env": "prod"}
    )
    assert list(group.resolved_servers()) == [app, db1]


def test_group_tag_keys_with_colons_work():
    target = TargetFactory()
    server = SourceServerFactory(target=target, tags={"aws:cloudformation:stack-name": "erp"})
    group = protection_group_save(name="erp", target=target, tag_selector={"aws:cloudformation:stack-name": "erp"})
    assert list(group.resolved_servers()) == [server]


def test_group_refuses_server_of_another_target():
    target, other = TargetFactory(name="east"), TargetFactory(name="west")
    server = SourceServerFactory(target=other, hostname="web-09")
    with pytest.raises(ValidationError) as exc:
        protection_group_save(name="g", target=target, servers=[server])
    assert "belongs to target 'west', not to 'east'" in messages_of(exc)["servers"]


def test_group_refuses_server_already_in_another_group():
    target = TargetFactory()
    server = SourceServerFactory(target=target, hostname="db-01")
    protection_group_save(name="first", target=target, servers=[server])
    with pytest.raises(ValidationError) as exc:
        protection_group_save(name="second", target=target, servers=[server])
    assert "already in protection group 'first'" in messages_of(exc)["servers"]
    assert not RecoveryPlan.objects.exists()


def test_group_update_keeps_its_own_servers():
    target = TargetFactory()
    a, b = SourceServerFactory(target=target), SourceServerFactory(target=target)
    group = protection_group_save(name="g", target=target, servers=[a])
    protection_group_save(group=group, name="g", target=target, servers=[a, b])
    assert set(group.servers.all()) == {a, b}
    protection_group_save(group=group, name="g", target=target, servers=[b])
    assert list(group.servers.all()) == [b]


def test_group_needs_servers_or_selector():
    with pytest.raises(ValidationError) as exc:
        protection_group_save(name="empty", target=TargetFactory())
    assert "Choose at least one server or give a tag selector." in messages_of(exc)["__all__"]


@pytest.mark.parametrize(
    "selector, message",
    [
        (["Tier"], "must be an object of tag key to value"),
        ({"Tier": 3}, "must be a string of at most 256 characters"),
        ({"": "db"}, "is not a valid AWS tag key"),
    ],
)
def test_group_refuses_bad_tag_selector(selector, message):
    with pytest.raises(ValidationError) as exc:
        protection_group_save(name="g", target=TargetFactory(), tag_selector=selector)
    assert message in messages_of(exc)["tag_selector"]


# --- Plans ---------------------------------------------------------------------------------


@pytest.fixture
def tiers():
    target = TargetFactory()
    groups = {}
    for tier in ("db", "app", "web"):
        servers = [SourceServerFactory(target=target, hostname=f"{tier}-0{i}") for i in (1, 2)]
        groups[tier] = ProtectionGroupFactory(name=tier, target=target, servers=servers)
    return groups


def test_plan_save_creates_waves_depending_on_the_previous_by_default(tiers):
    plan = plan_save(
        name="ERP",
        rto_target_minutes=60,
        rpo_target_minutes=15,
        waves=[
            WaveSpec(name="Database", protection_groups=[tiers["db"]]),
            WaveSpec(name="Application", protection_groups=[tiers["app"]], approval_required=True),
            WaveSpec(name="Web", protection_groups=[tiers["web"]], depends_on=[1], wait_after_minutes=5),
        ],
    )
    waves = list(plan.waves.order_by("order"))
    assert [w.name for w in waves] == ["Database", "Application", "Web"]
    assert list(waves[0].depends_on.all()) == []
    assert list(waves[1].depends_on.all()) == [waves[0]]
    assert list(waves[2].depends_on.all()) == [waves[1]]
    assert waves[1].approval_required and waves[2].wait_after_minutes == 5
    assert waves[0].timeout_minutes == 120


def test_plan_allows_parallel_waves(tiers):
    plan = plan_save(
        name="ERP",
        waves=[
            WaveSpec(name="Database", protection_groups=[tiers["db"]]),
            WaveSpec(name="Application", protection_groups=[tiers["app"]], depends_on=[0]),
            WaveSpec(name="Web", protection_groups=[tiers["web"]], depends_on=[0]),
        ],
    )
    assert [list(w.depends_on.values_list("order", flat=True)) for w in plan.waves.all()] == [[], [0], [0]]


def test_plan_refuses_dependency_cycle(tiers):
    with pytest.raises(ValidationError) as exc:
        plan_validate_waves(
            waves=[
                WaveSpec(name="Database", protection_groups=[tiers["db"]], depends_on=[2]),
                WaveSpec(name="Application", protection_groups=[tiers["app"]], depends_on=[0]),
                WaveSpec(name="Web", protection_groups=[tiers["web"]], depends_on=[1]),
            ]
        )
    assert "depend on each other in a cycle" in messages_of(exc)["waves"]
    assert "'Database'" in messages_of(exc)["waves"]


def test_plan_refuses_self_dependency(tiers):
    with pytest.raises(ValidationError) as exc:
        plan_validate_waves(waves=[WaveSpec(name="Database", protection_groups=[tiers["db"]], depends_on=[0])])
    assert "Wave 'Database' cannot depend on itself." in messages_of(exc)["waves.0.depends_on"]


def test_plan_refuses_dependency_outside_the_plan(tiers):
    with pytest.raises(ValidationError) as exc:
        plan_validate_waves(waves=[WaveSpec(name="Database", protection_groups=[tiers["db"]], depends_on=[4])])
    assert "depends on wave 4, which is not in this plan" in messages_of(exc)["waves.0.depends_on"]


def test_plan_refuses_wave_without_groups(tiers):
    with pytest.raises(ValidationError) as exc:
        plan_validate_waves(waves=[WaveSpec(name="Database", protection_groups=[])])
    assert (
        "Wave 'Database' is empty: choose at least one protection group."
        in messages_of(exc)["waves.0.protection_groups"]
    )


def test_plan_refuses_wave_whose_groups_resolve_to_nothing():
    group = protection_group_save(name="nobody", target=TargetFactory(), tag_selector={"Tier": "none"})
    with pytest.raises(ValidationError) as exc:
        plan_validate_waves(waves=[WaveSpec(name="Ghosts", protection_groups=[group])])
    assert "its protection groups resolve to no servers" in messages_of(exc)["waves.0.protection_groups"]


def test_plan_refuses_server_in_two_waves(tiers):
    target = tiers["db"].target
    db1 = tiers["db"].servers.get(hostname="db-01")
    db1.tags = {"Role": "shared"}
    db1.save()
    by_tag = protection_group_save(name="shared", target=target, tag_selector={"Role": "shared"})
    with pytest.raises(ValidationError) as exc:
        plan_validate_waves(
            waves=[
                WaveSpec(name="Database", protection_groups=[tiers["db"]]),
                WaveSpec(name="Shared", protection_groups=[by_tag]),
            ]
        )
    message = messages_of(exc)["waves.1.protection_groups"]
    assert f"Server db-01 ({db1.drs_id}) is in wave 'Database' and in wave 'Shared'" in message


def test_plan_refuses_optional_server_outside_its_wave(tiers):
    web = tiers["web"].servers.first()
    with pytest.raises(ValidationError) as exc:
        plan_validate_waves(waves=[WaveSpec(name="Database", protection_groups=[tiers["db"]], optional_servers=[web])])
    assert "is marked optional but is not in wave 'Database'" in messages_of(exc)["waves.0.optional_servers"]


def test_plan_refuses_duplicate_wave_names_and_bad_timeouts(tiers):
    with pytest.raises(ValidationError) as exc:
        plan_validate_waves(
            waves=[
                WaveSpec(name="Tier", protection_groups=[tiers["db"]], timeout_minutes=0),
                WaveSpec(name="Tier", protection_groups=[tiers["app"]], wait_after_minutes=5000),
                WaveSpec(name="  ", protection_groups=[tiers["web"]]),
            ]
        )
    errors = messages_of(exc)
    assert "The timeout must be between 1 and 1440 minutes." in errors["waves.0.timeout_minutes"]
    assert "Two waves are named 'Tier'" in errors["waves.1.name"]
    assert "The wait must be between 0 and 1440 minutes." in errors["waves.1.wait_after_minutes"]
    assert "Wave #3 needs a name." in errors["waves.2.name"]


def test_plan_refuses_no_waves():
    with pytest.raises(ValidationError) as exc:
        plan_validate_waves(waves=[])
    assert "A plan needs at least one wave." in messages_of(exc)["waves"]


def test_plan_save_refuses_bad_targets_and_duplicate_name_and_writes_nothing(tiers):
    plan_save(name="ERP", waves=[WaveSpec(name="Database", protection_groups=[tiers["db"]])])
    with pytest.raises(ValidationError) as exc:
        plan_save(name="ERP", rto_target_minutes=0, waves=[WaveSpec(name="Web", protection_groups=[])])
    errors = messages_of(exc)
    assert "Recovery plan with this Name already exists." in errors["name"]
    assert "Ensure this value is greater than or equal to 1." in errors["rto_target_minutes"]
    assert "waves.0.protection_groups" in errors
    assert RecoveryPlan.objects.count() == 1


def test_plan_update_replaces_waves_atomically(tiers):
    plan = plan_save(name="ERP", waves=[WaveSpec(name="Database", protection_groups=[tiers["db"]])])
    with pytest.raises(ValidationError):
        plan_save(plan=plan, name="ERP", waves=[WaveSpec(name="Broken", protection_groups=[])])
    assert list(plan.waves.values_list("name", flat=True)) == ["Database"]
    plan_save(
        plan=plan,
        name="ERP v2",
        waves=[
            WaveSpec(name="Database", protection_groups=[tiers["db"]]),
            WaveSpec(name="Web", protection_groups=[tiers["web"]]),
        ],
    )
    plan.refresh_from_db()
    assert plan.name == "ERP v2"
    assert list(plan.waves.values_list("name", flat=True)) == ["Database", "Web"]


# --- long dependency chains (issue 13) ----------------------------------------------------------


def test_a_chain_of_thousands_of_waves_is_checked_and_drawn_without_recursion():
    from plans.services import _find_cycle
    from plans.templatetags.plan_ui import wave_depths

    chain = {i: [i - 1] if i else [] for i in range(5000)}
    assert _find_cycle(chain) is None
    assert wave_depths(chain)[4999] == 4999
    ring = {i: [(i - 1) % 5000] for i in range(5000)}
    cycle = _find_cycle(ring)
    assert cycle[0] == cycle[-1] and len(cycle) == 5001
    assert wave_depths({0: [1], 1: [0]}) == {0: 2, 1: 1}


def test_a_plan_of_1500_chained_waves_is_refused_by_the_api_with_a_400(db):
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_superuser("planner", "p@example.com", "x"))
    waves = [{"name": f"W{i}", "protection_groups": [], "depends_on": [i - 1] if i else []} for i in range(1500)]
    response = client.post("/api/v1/plans/", {"name": "Long", "waves": waves}, format="json")
    assert response.status_code == 400
