"""Issue 13's dashboard items in a real browser (headless Chromium) against a live server:
a plan FAILED OVER after a recovery (1), drills whose instances still run and their clean-up
(2), and the Targets pages with "Test connection" (10). A background thread drives the engine
meanwhile, as the django-q2 worker would. Screenshots go to $ARTIFACTS (default artifacts/):
ux-01-failed-over*.png, ux-02-drills-left-running*.png, ux-10-targets*.png.
"""

import time

import pytest

from .support import shot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])]


def test_failed_over_drills_left_running_and_targets(page, live_server, engine_driver):
    from django.db import connections

    try:
        walk(page, engine_driver)
    finally:
        # Playwright's sync API switches greenlets, and Django keeps connections per context:
        # close the ones this test opened here, or PostgreSQL refuses to drop the test database.
        connections.close_all()


def wait_until_ended(execution, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution.refresh_from_db()
        if execution.is_terminal:
            return execution
        time.sleep(0.3)
    raise AssertionError(f"{execution} still {execution.status} after {timeout} s")


def walk(page, engine_driver):
    from django.contrib.auth.models import Group, User

    from drsorch.sandbox.services import sandbox_configure, sandbox_servers_create
    from executions.choices import ExecutionMode, ExecutionStatus
    from executions.services import execution_start
    from plans.demo import DEMO_PLAN_NAME, sandbox_seed
    from plans.models import RecoveryPlan, Target
    from plans.services import WaveSpec, plan_save, protection_group_save, source_servers_sync

    sandbox_configure(launch_seconds=1)
    sandbox_seed(servers=6)
    target = Target.objects.get(name="Sandbox")
    # A second application on servers of its own: its drill's instances are left running
    # (DRS keeps one instance per source server, so the recovery below must not replace them).
    sandbox_servers_create(
        account_id=target.account_id,
        region=target.region,
        specs=[
            {"hostname": "shop-db-01", "tags": {"Application": "shop"}, "recommended_instance_type": "r5.large"},
            {"hostname": "shop-web-01", "tags": {"Application": "shop"}, "recommended_instance_type": "t3.medium"},
            {"hostname": "shop-web-02", "tags": {"Application": "shop"}, "recommended_instance_type": "t3.medium"},
        ],
    )
    source_servers_sync(target=target)
    group = protection_group_save(name="Shop servers", target=target, tag_selector={"Application": "shop"})
    shop = plan_save(name="Shop", waves=[WaveSpec(name="All", protection_groups=[group])])
    demo = RecoveryPlan.objects.get(name=DEMO_PLAN_NAME)

    from drsorch.roles import roles_sync

    roles_sync()  # an earlier transactional test may have flushed the migration's role groups
    lead = User.objects.create_user("dr-lead", password="pw-e2e-123")
    lead.groups.add(Group.objects.get(name="Commander"), Group.objects.get(name="Planner"))
    drill = wait_until_ended(execution_start(plan=shop, mode=ExecutionMode.DRILL, requested_by=lead, auto_approve=True))
    recovery = wait_until_ended(
        execution_start(plan=demo, mode=ExecutionMode.RECOVERY, requested_by=lead, auto_approve=True)
    )
    assert drill.status == recovery.status == ExecutionStatus.SUCCEEDED, (drill.status, recovery.status)

    page.goto("/")
    page.fill("#id_username", "dr-lead")
    page.fill("#id_password", "pw-e2e-123")
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Dashboard')")

    # 1. The dashboard says the demo plan failed over, what runs where and what to do next.
    failed_over = page.locator("section.failed-over")
    assert failed_over.count() == 1
    assert "FAILED OVER" in failed_over.text_content()
    for launch in recovery.server_launches.all():
        assert launch.recovery_instance_id in failed_over.text_content()
    assert "no clean-up for a recovery's instances" in failed_over.text_content()
    plans_row = page.locator("tr", has=page.locator(f"a:text-is('{DEMO_PLAN_NAME}')"))
    assert "FAILED OVER" in plans_row.text_content() and "ready" not in plans_row.text_content()
    shot(page, "ux-01-failed-over-dashboard")
    # Its page says so too, and links to the recovery's report.
    page.click(f"section.failed-over h2 >> text={DEMO_PLAN_NAME}")
    page.wait_for_selector(f"h1:has-text('{DEMO_PLAN_NAME}')")
    page.wait_for_selector("#failed-over >> text=What to do next")
    shot(page, "ux-01-failed-over-plan")
    page.click("#failed-over >> text=the recovery's report")
    page.wait_for_selector("text=Evidence report")
    # The plan list marks it; the history marks the recovery row.
    page.click("nav >> text=Plans")
    page.wait_for_selector(f"tr:has-text('{DEMO_PLAN_NAME}') >> text=FAILED OVER")
    assert page.locator("tr:has-text('Shop') >> text=FAILED OVER").count() == 0
    shot(page, "ux-01-failed-over-plan-list")
    page.click("nav >> text=Executions")
    page.wait_for_selector("tr.row-recovery >> text=RECOVERY")
    shot(page, "ux-05-history")

    # 2. The Shop drill left three instances running: count, age, estimated cost, clean-up.
    page.click("nav >> text=Dashboard")
    card = page.locator("#drills-left-running")
    row = card.locator("tr", has=page.locator("text=Shop"))
    assert "1 × r5.large, 2 × t3.medium" in row.text_content()
    assert "$0.21/hour" in row.text_content()  # 0.126 + 2 × 0.0416
    assert row.locator("td").nth(2).text_content().strip() == "3"
    shot(page, "ux-02-drills-left-running")
    row.locator("summary:has-text('Clean up')").click()
    shot(page, "ux-02-drills-left-running-confirm")
    row.locator("button:has-text('Yes, terminate them')").click()
    page.wait_for_selector("text=Clean-up started.")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not drill.cleaned_up_at:
        drill.refresh_from_db()
        time.sleep(0.3)
    assert drill.cleaned_up_at, "the clean-up never finished"
    page.goto("/")
    page.wait_for_selector("#drills-left-running >> text=No drill left recovery instances running.")
    shot(page, "ux-02-drills-left-running-cleaned-up")

    # 10. Targets: the list, a target's page, and Test connection (working, then denied).
    page.click("nav >> text=Targets")
    page.wait_for_selector("h1:has-text('Targets')")
    shot(page, "ux-10-targets-list")
    page.click("td >> text=Sandbox")
    page.wait_for_selector("h1:has-text('Sandbox')")
    page.click("button:has-text('Test connection')")
    page.wait_for_selector("#connection-test >> text=Connection works.")
    shot(page, "ux-10-targets-connection-ok")
    sandbox_configure(deny=["DescribeSourceServers"])
    page.click("button:has-text('Test connection')")
    page.wait_for_selector("#connection-test >> text=AccessDenied on drs:DescribeSourceServers")
    shot(page, "ux-10-targets-connection-denied")
    sandbox_configure(deny=[])
    assert not engine_driver, engine_driver
