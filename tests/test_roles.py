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


def test_the_migrations_give_every_role_exactly_the_roles_module_grants():
    from drsorch.roles import ROLES

    for role, grants in ROLES.items():
        assert perms(role) == {f"{app}.{codename}" for app, codename in grants}, role


def test_every_role_views_the_watch_records_and_nobody_edits_them_in_the_admin(admin_client):
    for role in ("Viewer", "Operator", "Commander", "Planner"):
        assert {"plans.view_planreadinessevaluation", "plans.view_planoverduenotice"} <= perms(role)
    assert admin_client.get("/admin/plans/planreadinessevaluation/").status_code == 200
    assert admin_client.get("/admin/plans/planreadinessevaluation/add/").status_code == 403
    assert admin_client.get("/admin/plans/planoverduenotice/").status_code == 200
