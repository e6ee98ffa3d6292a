"""Issue 15: a drill of the demo plan with its wave actions, watched in a real browser
(headless Chromium) against a live server while a background thread drives the engine as
the worker would. The health check after the Database wave holds the next wave until it
passes; the manual "Confirm the app" after the Web wave waits for an Operator, who completes
it on its confirmation page with a comment; the drill then succeeds. Screenshots go to
$ARTIFACTS (default artifacts/): actions-run-*.png."""


import pytest

from .support import shot as save_shot

PLAN = "Demo 3-tier application"

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])]


def shot(page, name):
    save_shot(page, f"actions-run-{name}")


def test_an_operator_watches_the_actions_run_and_completes_the_manual_one(page, live_server, engine_driver):
    from django.db import connections

    try:
        watch_and_complete(page, engine_driver)
    finally:
        connections.close_all()


def watch_and_complete(page, engine_driver):
    from django.contrib.auth.models import Group, User

    from drsorch.roles import roles_sync
    from drsorch.sandbox.services import sandbox_configure
    from executions.models import ActionRun
    from executions.services import execution_start
    from plans.demo import sandbox_seed
    from plans.models import RecoveryPlan

    page.set_default_timeout(60_000)  # a whole drill runs while the page waits
    roles_sync()  # an earlier transactional test may have flushed the migration's role groups
    sandbox_seed(servers=3, with_actions=True)
    sandbox_configure(launch_seconds=4)
    operator = User.objects.create_user("operator-e2e", password="pw-e2e-123")
    operator.groups.add(Group.objects.get(name="Operator"))
    execution = execution_start(plan=RecoveryPlan.objects.get(name=PLAN), mode="DRILL", requested_by=operator)

    page.goto("/")
    page.fill("#id_username", "operator-e2e")
    page.fill("#id_password", "pw-e2e-123")
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Dashboard')")
    page.goto(execution.get_absolute_url())

    # The page follows the drill live: the health check runs after the databases launched.
    page.wait_for_selector("text=Databases healthy")
    page.wait_for_function("document.body.innerText.includes('Confirm the app') && "
                           "document.body.innerText.includes('Waiting for an Operator')")
    assert not engine_driver, engine_driver
    health = ActionRun.objects.get(execution=execution, name="Databases healthy")
    assert health.status == "SUCCEEDED" and "passed" in health.output
    shot(page, "1-waiting-for-an-operator")

    page.click("text=Complete “Confirm the app”")
    page.wait_for_selector("h1:has-text('Complete “Confirm the app”?')")
    page.fill("textarea[name=comment]", "Order page loads on every web server; test order placed.")
    shot(page, "2-confirm")
    page.click("form button[type=submit]:has-text('Complete')")
    page.wait_for_function("document.body.innerText.includes('Completed by operator-e2e')")
    page.wait_for_selector(".badge:has-text('Succeeded') >> nth=0")
    page.wait_for_function("document.querySelector('main, body').innerText.match(/Status\\s*Succeeded/i)")
    assert not engine_driver, engine_driver
    manual = ActionRun.objects.get(execution=execution, name="Confirm the app")
    assert (manual.status, manual.completed_by_username) == ("SUCCEEDED", "operator-e2e")
    execution.refresh_from_db()
    assert execution.status == "SUCCEEDED"
    shot(page, "3-succeeded")
