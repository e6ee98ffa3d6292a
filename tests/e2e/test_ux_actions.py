"""Issue 13, items 3 and 4, in a real browser (headless Chromium) against a live server.

A Commander starts a RECOVERY of the sandbox demo with a comment. While it runs, the plan's
page shows "Running" with a link to it and its Start buttons disabled (item 4). At the first
gate, approving without a comment is refused on the confirmation page, then accepted with one,
which the event log shows with who approved (item 3); at the second gate the recovery is
cancelled through its confirmation page, with a comment. A background thread drives the
engine meanwhile, as the django-q2 worker would. Screenshots go to $ARTIFACTS (default
artifacts/): ux-03-approve-comment*.png, ux-03-cancel-confirm*.png, ux-04-running*.png.
"""


import pytest

from .support import shot

PLAN = "Demo 3-tier application"

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])]


def test_recovery_gate_needs_a_comment_cancel_is_confirmed_and_a_running_plan_says_so(page, live_server, engine_driver):
    from django.db import connections

    try:
        recovery_walkthrough(page, engine_driver)
    finally:
        # Playwright's sync API switches greenlets, and Django keeps connections per context:
        # close the ones this test opened here, or PostgreSQL refuses to drop the test database.
        connections.close_all()


def recovery_walkthrough(page, engine_driver):
    from django.contrib.auth.models import Group, User

    from drsorch.roles import roles_sync
    from drsorch.sandbox.services import sandbox_configure
    from executions.models import Execution, ExecutionEvent
    from plans.demo import sandbox_seed
    from plans.models import Wave

    roles_sync()  # an earlier transactional test may have flushed the migration's role groups
    sandbox_configure(launch_seconds=2)
    plan = sandbox_seed(servers=6).plan
    # Two gates: the first is approved, the recovery is cancelled at the second.
    Wave.objects.filter(plan=plan, name__in=["Application", "Web"]).update(approval_required=True)
    commander = User.objects.create_user("incident-lead", password="pw-e2e-123")
    commander.groups.add(Group.objects.get(name="Commander"))

    page.goto("/")
    page.fill("#id_username", "incident-lead")
    page.fill("#id_password", "pw-e2e-123")
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Dashboard')")

    # Start the RECOVERY from the plan page, with the plan's name typed and a comment.
    page.goto(plan.get_absolute_url())
    form = page.locator("form.startform.recovery")
    form.locator("#id_confirm_name").fill(PLAN)
    form.locator("textarea[name=comment]").fill("eu-west-1 lost at 03:40 (INC-981)")
    if form.locator("input[name=accept_risks]").count():
        form.locator("input[name=accept_risks]").check()
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#execution-status")
    execution = Execution.objects.get(plan=plan)
    assert execution.mode == "RECOVERY" and execution.comment == "eu-west-1 lost at 03:40 (INC-981)"
    assert "eu-west-1 lost at 03:40 (INC-981)" in page.text_content("#start-comment")

    # Item 4: while it runs, the plan's page says Running, links it, and offers no Start.
    page.goto(plan.get_absolute_url())
    running = page.locator("#readiness-running")
    running.wait_for()
    assert running.locator(f"a[href='{execution.get_absolute_url()}']").count() == 1
    assert page.locator("#readiness h2 .badge.tone-bad").count() == 0
    assert page.is_disabled("form.startform button:has-text('Start drill')")
    assert page.is_disabled("form.startform.recovery button:has-text('Start recovery')")
    page.locator("#running-note-drill").scroll_into_view_if_needed()
    shot(page, "ux-04-running-plan-page")
    running.locator("a").click()
    page.wait_for_selector("#execution-status")

    # Item 3: the first gate. Approving asks for confirmation, and a RECOVERY's gate a comment.
    page.wait_for_selector("text=Approve wave 2: Application", timeout=60_000)
    shot(page, "ux-03-approve-comment-0-gate")
    page.click("text=Approve wave 2: Application")
    page.wait_for_selector("#confirm-approve")
    assert page.get_attribute("#confirm-approve textarea[name=comment]", "required") is not None
    shot(page, "ux-03-approve-comment-1-confirm")
    # The browser refuses an empty required comment; the server refuses it too, without it.
    page.eval_on_selector("#confirm-approve textarea[name=comment]", "box => box.removeAttribute('required')")
    page.click("#confirm-approve button[type=submit]")
    page.wait_for_selector("#confirm-approve .errors:has-text('A comment is required to approve a gate of a RECOVERY')")
    assert execution.wave_runs.get(index=1).status == "WAITING_APPROVAL"
    shot(page, "ux-03-approve-comment-2-required")
    page.fill("#confirm-approve textarea[name=comment]", "DB verified by Ana on the bridge; go")
    page.click("#confirm-approve button[type=submit]")
    page.wait_for_selector("text=Approved.")
    page.wait_for_selector(".events >> text=DB verified by Ana on the bridge; go")
    event = ExecutionEvent.objects.get(execution=execution, kind="ACTION", wave_index=1)
    assert event.actor_name == "incident-lead" and event.data["comment"] == "DB verified by Ana on the bridge; go"
    page.locator(".events").scroll_into_view_if_needed()
    shot(page, "ux-03-approve-comment-3-logged")

    # Item 3: cancelling at the second gate is confirmed, with a comment.
    page.wait_for_selector("text=Approve wave 3: Web", timeout=60_000)
    page.click("text=Cancel execution")
    page.wait_for_selector("#confirm-cancel")
    assert "Cancel this recovery?" in page.text_content("#confirm-cancel h1")
    shot(page, "ux-03-cancel-confirm-1-page")
    page.fill("#confirm-cancel textarea[name=comment]", "Primary region is back; stopping the failover")
    page.click("#confirm-cancel button[type=submit]")
    page.wait_for_selector("text=Cancellation requested.")
    page.wait_for_selector("#execution-status:has-text('Cancelled')", timeout=60_000)
    page.wait_for_selector(".events >> text=Primary region is back; stopping the failover")
    execution.refresh_from_db()
    assert execution.status == "CANCELLED"
    shot(page, "ux-03-cancel-confirm-2-cancelled")

    # Ended, the plan can start again: the running note and the disabled buttons are gone.
    page.goto(plan.get_absolute_url())
    assert page.locator("#readiness-running").count() == 0
    assert not page.is_disabled("form.startform button:has-text('Start drill')")
    assert not engine_driver, engine_driver
