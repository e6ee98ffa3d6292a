"""The roles of the contract exist after migrate with exactly their permissions."""

import pytest
from django.contrib.auth.models import Group

pytestmark = pytest.mark.django_db


def perms(role):
    return {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name=role).permissions.all()}


def test_roles_exist():
    assert set(Group.objects.values_list("name", flat=True)) >= {"Viewer", "Operator", "Commander", "Planner"}


def test_viewer_reads_only():
    viewer = perms("Viewer")
    assert "executions.view_execution" in viewer and "plans.view_recoveryplan" in viewer
    assert all(p.split(".")[1].startswith("view_") for p in viewer)


def test_operator_drills_but_does_not_recover():
    operator = perms("Operator")
    assert {
        "executions.start_drill",
        "executions.approve_execution",
        "executions.cancel_execution",
        "executions.retry_execution",
        "executions.cleanup_execution",
    } <= operator
    assert "executions.start_recovery" not in operator
    assert "plans.change_recoveryplan" not in operator


def test_commander_recovers():
    assert perms("Commander") == perms("Operator") | {"executions.start_recovery"}


def test_planner_edits_plans_but_runs_nothing():
    planner = perms("Planner")
    assert {
        "plans.add_recoveryplan",
        "plans.change_protectiongroup",
        "plans.delete_target",
        "plans.change_sourceserver",
    } <= planner
    assert not {p for p in planner if p.startswith("executions.") and not p.split(".")[1].startswith("view_")}
