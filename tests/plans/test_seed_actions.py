"""`manage.py sandbox seed --with-actions`: the demo plan gains a health check after the
Database wave and a manual step after the Web wave, once; without the flag nothing changes."""

from io import StringIO

import pytest
from django.core.management import call_command

from plans.models import RecoveryPlan, WaveAction
from plans.services import plan_wave_specs

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def seed(*args):
    out = StringIO()
    call_command("sandbox", "seed", "--servers", "3", *args, stdout=out)
    return out.getvalue()


def actions_by_wave():
    plan = RecoveryPlan.objects.get(name="Demo 3-tier application")
    specs = plan_wave_specs(plan=plan)
    return {spec.name: [(a.name, a.kind, a.when, a.config) for a in spec.actions] for spec in specs}


def test_without_the_flag_the_demo_plan_has_no_actions():
    seed()
    assert not WaveAction.objects.exists()


def test_with_actions_adds_a_health_check_and_a_manual_step_once():
    output = seed("--with-actions")
    assert "Wave actions added: Databases healthy, Confirm the app." in output
    actions = actions_by_wave()
    assert actions["Database"] == [
        ("Databases healthy", "health_check", "after", {"ec2_status_checks": True, "ssm_ping": True})]
    assert actions["Application"] == []
    [(name, kind, when, config)] = actions["Web"]
    assert (name, kind, when) == ("Confirm the app", "manual", "after") and config["instructions"]

    assert "Wave actions added" not in seed("--with-actions")
    assert WaveAction.objects.count() == 2


def test_with_actions_on_an_existing_demo_plan_adds_them_and_keeps_the_rest():
    seed()
    plan = RecoveryPlan.objects.get(name="Demo 3-tier application")
    plan.description = "Edited by hand"
    plan.save()
    seed("--with-actions")
    plan.refresh_from_db()
    assert plan.description == "Edited by hand"
    assert [name for name, *_ in actions_by_wave()["Web"]] == ["Confirm the app"]
