"""The Django admin holds targets, servers, groups and plans to the services' rules: it deletes
and saves through them, or refuses with the service's message, never around them."""

import html

import pytest
from django.urls import reverse

from plans.models import ProtectionGroup, RecoveryPlan, SourceServer, Target
from plans.services import WaveSpec, plan_save
from tests.factories import (
    ExecutionFactory,
    ProtectionGroupFactory,
    ServerLaunchFactory,
    SourceServerFactory,
    TargetFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client, make_user):
    client.force_login(make_user("root", superuser=True))
    return client


@pytest.fixture
def used():
    """Group "Used" in a wave of plan "Payroll"; group "Spare" in no plan; both of target T."""
    target = TargetFactory(name="T")
    used = ProtectionGroupFactory(name="Used", target=target, servers=[SourceServerFactory(target=target)])
    spare = ProtectionGroupFactory(name="Spare", target=target, servers=[SourceServerFactory(target=target)])
    plan = plan_save(name="Payroll", waves=[WaveSpec(name="All", protection_groups=[used])])
    return {"target": target, "used": used, "spare": spare, "plan": plan}


def bulk_delete(client, model, objects, *, confirm):
    data = {"action": "delete_selected", "_selected_action": [str(o.pk) for o in objects]}
    if confirm:
        data["post"] = "yes"
    return client.post(reverse(f"admin:plans_{model}_changelist"), data, follow=True)


def page_text(response):
    return html.unescape(response.content.decode())


# --- Protection groups -------------------------------------------------------------------------


def test_a_group_a_plan_uses_is_not_deleted_from_its_page(root, used):
    url = reverse("admin:plans_protectiongroup_delete", args=[used["used"].pk])
    response = root.get(url, follow=True)
    assert "used by the plan(s) Payroll" in page_text(response)
    root.post(url, {"post": "yes"}, follow=True)
    assert ProtectionGroup.objects.filter(pk=used["used"].pk).exists()
    assert used["plan"].waves.get().protection_groups.count() == 1


def test_bulk_delete_refuses_when_any_selected_group_is_used_and_deletes_nothing(root, used):
    for confirm in (False, True):
        response = bulk_delete(root, "protectiongroup", [used["used"], used["spare"]], confirm=confirm)
        assert "used by the plan(s) Payroll" in page_text(response)
        assert "Nothing was deleted." in page_text(response)
    assert ProtectionGroup.objects.count() == 2


def test_an_unused_group_is_still_deleted_singly_and_in_bulk(root, used):
    spare = used["spare"]
    root.post(reverse("admin:plans_protectiongroup_delete", args=[spare.pk]), {"post": "yes"})
    assert not ProtectionGroup.objects.filter(pk=spare.pk).exists()
    other = ProtectionGroupFactory(name="Other", target=used["target"])
    bulk_delete(root, "protectiongroup", [other], confirm=True)
    assert not ProtectionGroup.objects.filter(pk=other.pk).exists()


def test_a_group_edited_in_the_admin_goes_through_protection_group_save(root, used):
    """A server of another target is refused with the service's message, and nothing is saved."""
    group = used["spare"]
    stranger = SourceServerFactory(hostname="stranger-01", target=TargetFactory(name="Elsewhere"))
    response = root.post(
        reverse("admin:plans_protectiongroup_change", args=[group.pk]),
        {
            "name": "Renamed",
            "description": "",
            "target": used["target"].pk,
            "tag_selector": "{}",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-server": stranger.pk,
            "memberships-0-group": group.pk,
        },
        follow=True,
    )
    assert "belongs to target 'Elsewhere', not to 'T'" in page_text(response)
    group.refresh_from_db()
    assert group.name == "Spare"
    assert not group.memberships.filter(server=stranger).exists()


# --- Plans ---------------------------------------------------------------------------------------


def test_a_plan_with_a_running_execution_is_not_deleted(root, used):
    ExecutionFactory(plan=used["plan"])
    url = reverse("admin:plans_recoveryplan_delete", args=[used["plan"].pk])
    assert "has 1 execution(s)" in page_text(root.get(url, follow=True))
    root.post(url, {"post": "yes"})
    response = bulk_delete(root, "recoveryplan", [used["plan"]], confirm=True)
    assert "has 1 execution(s)" in page_text(response)
    assert RecoveryPlan.objects.filter(pk=used["plan"].pk).exists()


def test_a_plan_that_never_ran_is_deleted(root, used):
    root.post(reverse("admin:plans_recoveryplan_delete", args=[used["plan"].pk]), {"post": "yes"})
    assert not RecoveryPlan.objects.exists()


# --- Targets -------------------------------------------------------------------------------------


def test_a_target_with_groups_is_not_deleted_and_the_groups_are_named(root, used):
    url = reverse("admin:plans_target_delete", args=[used["target"].pk])
    assert "used by the protection group(s) Spare, Used" in page_text(root.get(url, follow=True))
    response = bulk_delete(root, "target", [used["target"]], confirm=True)
    assert "used by the protection group(s) Spare, Used" in page_text(response)
    assert Target.objects.filter(pk=used["target"].pk).exists()


def test_a_target_executions_launched_in_is_not_deleted(root):
    target = TargetFactory(name="Evidence")
    ServerLaunchFactory(target=target)
    url = reverse("admin:plans_target_delete", args=[target.pk])
    response = root.post(url, {"post": "yes"}, follow=True)
    assert "evidence of drills and recoveries" in page_text(response)
    assert Target.objects.filter(pk=target.pk).exists()


def test_a_target_with_only_its_inventory_is_deleted_with_it(root):
    target = TargetFactory(name="Unused")
    SourceServerFactory(target=target)
    root.post(reverse("admin:plans_target_delete", args=[target.pk]), {"post": "yes"})
    assert not Target.objects.filter(pk=target.pk).exists() and not SourceServer.objects.exists()


# --- Source servers ------------------------------------------------------------------------------


def test_source_servers_cannot_be_deleted_in_the_admin(root, used):
    server = used["used"].servers.get()
    assert root.get(reverse("admin:plans_sourceserver_delete", args=[server.pk])).status_code == 403
    changelist = root.get(reverse("admin:plans_sourceserver_changelist"))
    assert b'value="delete_selected"' not in changelist.content
    bulk_delete(root, "sourceserver", [server], confirm=True)
    assert SourceServer.objects.filter(pk=server.pk).exists()


def test_a_refusal_met_while_deleting_in_bulk_leaves_no_deletion_and_no_log_entry(root, used, monkeypatch):
    """The check before the confirmation passed, then a plan took the group: the service's
    own refusal still stops the deletion, and the admin log does not claim it."""
    from django.contrib.admin.models import LogEntry

    from plans.admin import ProtectionGroupAdmin

    monkeypatch.setattr(ProtectionGroupAdmin, "delete_check", lambda self, obj: None)
    response = bulk_delete(root, "protectiongroup", [used["spare"], used["used"]], confirm=True)
    assert "used by the plan(s) Payroll" in page_text(response)
    assert ProtectionGroup.objects.count() == 2
    assert not LogEntry.objects.exists()


# --- Wave actions --------------------------------------------------------------------------------

def change_form_data(client, plan):
    """The plan's admin change form as the page would post it unchanged (every inline included)."""
    response = client.get(reverse("admin:plans_recoveryplan_change", args=[plan.pk]))
    data = {}

    def add(form):
        for field in form:
            value = field.value()
            if value is None:
                continue
            if isinstance(value, bool):
                if value:
                    data[field.html_name] = "on"
            elif isinstance(value, list | tuple):
                data[field.html_name] = [str(v) for v in value]
            else:
                data[field.html_name] = str(value)
        return data

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{name}"] = value
        for form in formset.forms:
            add(form)
    return response, data


def test_wave_actions_are_edited_in_the_plan_admin_under_the_services_rules(root, used):
    from plans.actions import ActionSpec
    from plans.models import WaveAction
    from plans.services import plan_wave_specs

    plan = used["plan"]
    specs = plan_wave_specs(plan=plan)
    specs[0].actions = [
        ActionSpec(name="Hook", kind="webhook", when="before",
                   config={"url": "https://93.184.215.14/x", "secret": "hidden-value"}),
        ActionSpec(name="Look", kind="manual", config={"instructions": "Check it."}),
    ]
    plan_save(plan=plan, name=plan.name, waves=specs)
    url = reverse("admin:plans_recoveryplan_change", args=[plan.pk])

    response, data = change_form_data(root, plan)
    assert "hidden-value" not in page_text(response)
    assert '"url": "https://93.184.215.14/x"' in page_text(response)

    # A bad config is refused with the service's message, naming the field; nothing is saved.
    prefix = next(key for key, value in data.items() if value == "Look").rsplit("-", 1)[0]
    bad = {**data, f"{prefix}-config": '{"instructions": " "}'}
    response = root.post(url, bad, follow=True)
    assert "Say what the Operator must do" in page_text(response)
    assert WaveAction.objects.get(name="Look").config == {"instructions": "Check it."}

    # A valid edit is saved, tidied; the webhook's secret is kept though the page never had it.
    good = {**data, f"{prefix}-kind": "health_check", f"{prefix}-config": '{"ssm_ping": true}'}
    response = root.post(url, good, follow=True)
    assert response.status_code == 200
    assert WaveAction.objects.get(name="Look").config == {"ec2_status_checks": True, "ssm_ping": True}
    assert WaveAction.objects.get(name="Hook").config["secret"] == "hidden-value"
