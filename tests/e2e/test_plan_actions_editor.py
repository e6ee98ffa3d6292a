"""Issue 15: the plan page's action editor in a real browser (headless Chromium) against a live
server. A Planner adds two actions to the demo plan's Web wave with htmx (the row count rises
out of band), switches a row's kind (its settings swap), removes one, saves, sees a service
error next to the field and in the summary, fixes it, and finds the actions on the plan page
and in its diagram. Screenshots go to $ARTIFACTS (default artifacts/): actions-*.png."""


import pytest

from .support import shot as save_shot

PLAN = "Demo 3-tier application"

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])]


def shot(page, name):
    save_shot(page, f"actions-{name}")


def test_a_planner_edits_wave_actions_with_htmx(page, live_server):
    from django.db import connections

    try:
        edit_wave_actions(page)
    finally:
        connections.close_all()


def edit_wave_actions(page):
    from django.contrib.auth.models import Group, User

    from drsorch.roles import roles_sync
    from plans.demo import sandbox_seed
    from plans.models import RecoveryPlan, WaveAction

    roles_sync()  # an earlier transactional test may have flushed the migration's role groups
    sandbox_seed(servers=3, with_actions=True)
    planner = User.objects.create_user("planner-e2e", password="pw-e2e-123")
    planner.groups.add(Group.objects.get(name="Planner"))
    plan = RecoveryPlan.objects.get(name=PLAN)

    page.goto("/")
    page.fill("#id_username", "planner-e2e")
    page.fill("#id_password", "pw-e2e-123")
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Dashboard')")

    page.goto(f"/plans/{plan.pk}/edit/")
    web = "#wave-2"
    assert page.input_value("#id_waves-2-actions-TOTAL_FORMS") == "1"  # "Confirm the app"
    page.click(f"{web} button:has-text('Add action')")
    page.wait_for_selector("#waves-2-actions-1")
    page.click(f"{web} button:has-text('Add action')")
    page.wait_for_selector("#waves-2-actions-2")
    assert page.input_value("#id_waves-2-actions-TOTAL_FORMS") == "3"

    # Row 2 becomes an SSM command: its settings swap from instructions to document and parameters.
    page.fill("#id_waves-2-actions-1-name", "Restart app")
    page.select_option("#id_waves-2-actions-1-kind", "ssm_command")
    page.wait_for_selector("#id_waves-2-actions-1-document")
    assert page.query_selector("#id_waves-2-actions-1-instructions") is None
    assert page.input_value("#id_waves-2-actions-1-name") == "Restart app"
    page.fill("#id_waves-2-actions-1-parameters", "commands=systemctl restart app")
    # Row 3 is removed before it is saved.
    page.click("#waves-2-actions-2 button:has-text('Remove')")
    page.wait_for_selector("#waves-2-actions-2 >> text=Action removed")
    shot(page, "01-editing")

    # No document: the service's message is next to the field and in the summary.
    page.click("button:has-text('Save plan')")
    page.wait_for_selector("#wave-error-summary")
    assert "Action 2 “Restart app”" in page.inner_text("#wave-error-summary")
    assert "Name the SSM document" in page.inner_text("#waves-2-actions-1")
    shot(page, "02-error")

    page.fill("#id_waves-2-actions-1-document", "AWS-RunShellScript")
    page.click("button:has-text('Save plan')")
    page.wait_for_selector(f"h1:has-text('{PLAN}')")
    restart = WaveAction.objects.get(name="Restart app")
    assert restart.config == {"document": "AWS-RunShellScript", "parameters": {"commands": ["systemctl restart app"]}}
    assert sorted(WaveAction.objects.values_list("name", flat=True)) == [
        "Confirm the app", "Databases healthy", "Restart app"]

    assert "⌨ after: Restart app" in page.text_content("svg.diagram")
    assert "SSM command: Restart app" in page.inner_text("ul.wave-actions >> nth=1")
    shot(page, "03-plan-page")
