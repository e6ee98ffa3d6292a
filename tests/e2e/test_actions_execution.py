"""Issue 15: a drill of the demo plan with its wave actions, watched in a real browser
(headless Chromium) against a live server while a background thread drives the engine as
the worker would. The health check after the Database wave holds the next wave until it
passes; the manual "Confirm the app" after the Web wave waits for an Operator, who completes
it on its confirmation page with a comment; the drill then succeeds. Screenshots go to
$ARTIFACTS (default artifacts/): actions-run-*.png."""

import os
import threading
from pathlib import Path

import pytest

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("ARTIFACTS", "artifacts"))
PLAN = "Demo 3-tier application"

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])]


@pytest.fixture
def page(live_server):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (make test-e2e installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
        page = context.new_page()
        page.set_default_timeout(60_000)
        yield page
        context.close()
        browser.close()


@pytest.fixture
def engine_driver():
    """Tick the engine every 0.5 s in a background thread until stopped, as the worker would."""
    from django.db import connections

    from executions import engine
    from executions.tasks import launch_budget_seconds

    stop = threading.Event()
    errors = []

    def run():
        try:
            while not stop.is_set():
                engine.tick(launch_budget_seconds=launch_budget_seconds())
                stop.wait(0.5)
        except Exception as exc:  # surfaced by the test, not lost in the thread
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name="engine-driver", daemon=True)
    thread.start()
    yield errors
    stop.set()
    thread.join(timeout=10)


def shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"actions-run-{name}.png"), full_page=True)


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
