"""The DR team's path in a real browser (headless Chromium) against a live server.

Seed the sandbox, log in, build a protection group and a two-wave plan with an approval
gate, start a drill, approve the gate, watch it reach SUCCEEDED without reloading, clean it
up. A background thread drives the engine meanwhile, as the django-q2 worker would.
Screenshots go to $ARTIFACTS (default artifacts/).
"""

import io

import pytest
from pypdf import PdfReader

from .support import ARTIFACTS, shot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "sandbox"])]


def save_pdf_pages(content, name):
    """Draw each page of a PDF as a PNG next to the screenshots, as a reviewer would see it."""
    import pypdfium2

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    document = pypdfium2.PdfDocument(content)
    for number in range(len(document)):
        document[number].render(scale=1.5).to_pil().save(ARTIFACTS / f"{name}-page{number + 1}.png")


def test_drill_from_plan_to_clean_up(page, live_server, engine_driver):
    from django.db import connections

    try:
        drill_from_plan_to_clean_up(page, engine_driver)
    finally:
        # Playwright's sync API switches greenlets, and Django keeps connections per context:
        # close the ones this test opened here, or PostgreSQL refuses to drop the test database.
        connections.close_all()


def drill_from_plan_to_clean_up(page, engine_driver):
    from django.contrib.auth.models import Group, User

    from drsorch.roles import roles_sync
    from drsorch.sandbox.services import sandbox_configure
    from plans.demo import sandbox_seed

    roles_sync()  # an earlier transactional test may have flushed the migration's role groups
    sandbox_configure(launch_seconds=2)
    sandbox_seed(servers=6)
    operator = User.objects.create_user("dr-lead", password="pw-e2e-123")
    operator.groups.add(Group.objects.get(name="Operator"), Group.objects.get(name="Planner"))

    # Log in.
    page.goto("/")
    page.fill("#id_username", "dr-lead")
    page.fill("#id_password", "pw-e2e-123")
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Dashboard')")
    shot(page, "01-dashboard")

    # A protection group of the two database servers, picked with the htmx search.
    page.click("nav >> text=Groups")
    page.click("text=New group")
    page.fill("#id_name", "E2E databases")
    page.select_option("select[name=target]", label="Sandbox")
    page.wait_for_selector("#server-picker input[name=servers]")
    page.fill("#picker-q", "db")
    page.wait_for_function("!document.querySelector('#server-picker').textContent.includes('web-01')")
    for box in page.query_selector_all("#server-picker input[name=servers]:not([disabled])"):
        box.check()
    page.fill("#id_tag_selector", "Tier=db")
    page.wait_for_selector("#tag-preview >> text=2 servers match")
    shot(page, "02-group-form")
    page.click("text=Save group")
    page.wait_for_selector("h1:has-text('E2E databases')")

    # A two-wave plan: the databases, then the web servers behind an approval gate.
    page.click("nav >> text=Plans")
    page.click("text=New plan")
    page.fill("#id_name", "E2E two waves")
    page.fill("#id_rto_target_minutes", "30")
    page.fill("#id_waves-0-name", "Databases")
    page.check("#wave-0 label:has-text('E2E databases') input")
    page.click("text=Add a wave")
    page.wait_for_selector("#id_waves-1-name")
    page.fill("#id_waves-1-name", "Web")
    page.check("#wave-1 label:has-text('Demo web servers') input")
    assert page.is_checked("#wave-1 label:has-text('#1 Databases') input")
    page.check("#id_waves-1-approval_required")
    shot(page, "03-plan-form")
    page.click("text=Save plan")
    page.wait_for_selector("h1:has-text('E2E two waves')")
    page.wait_for_selector("svg.diagram >> text=gate")
    shot(page, "04-plan-detail")

    # Start the drill and approve the gate when the live page offers it.
    page.click("text=Start drill")
    page.wait_for_selector("#execution-status")
    page.wait_for_selector("text=Approve wave 2: Web", timeout=60_000)
    shot(page, "05-waiting-for-approval")
    page.click("text=Approve wave 2: Web")
    # Approving is confirmed on its own page (a drill's comment is optional).
    page.wait_for_selector("#confirm-approve")
    page.click("#confirm-approve button[type=submit]")
    page.wait_for_selector("text=Approved.")

    # The status changes to Succeeded through htmx polling: the page is never reloaded.
    page.evaluate("window.__not_reloaded = true")
    page.wait_for_selector("#execution-status:has-text('Succeeded')", timeout=90_000)
    assert page.evaluate("window.__not_reloaded === true")
    assert not engine_driver, engine_driver
    shot(page, "06-execution-succeeded")

    # Clean up the drill's recovery instances and wait for the engine to finish it.
    page.click("text=Clean up drill instances")
    page.wait_for_selector("text=Clean-up started.")
    from executions.models import Execution

    execution = Execution.objects.get(plan__name="E2E two waves")
    for _ in range(120):
        execution.refresh_from_db()
        if execution.cleaned_up_at:
            break
        page.wait_for_timeout(500)
    assert execution.cleaned_up_at, "the clean-up never finished"
    page.reload()
    page.wait_for_selector("text=Drill instances cleaned up")
    shot(page, "07-cleaned-up")

    page.goto(f"/executions/{execution.pk}/report/")
    page.wait_for_selector("text=Evidence report")
    assert "met" in page.text_content("dl.facts")
    shot(page, "08-report")
    # The report as it prints (A4 landscape), and the PDF an auditor downloads, page by page.
    page.emulate_media(media="print")
    shot(page, "08b-report-print")
    page.emulate_media(media="screen")
    response = page.request.get(f"/executions/{execution.pk}/report.pdf")
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    save_pdf_pages(response.body(), "08c-report-pdf")
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(response.body())).pages).split())
    assert "E2E two waves" in text and "RTO MET" in text
    for launch in execution.server_launches.all():
        assert launch.hostname in text and launch.recovery_instance_id in text

    # The plan's page now charts the drill against the plan's targets.
    page.goto(f"/plans/{execution.plan_id}/")
    page.wait_for_selector("svg.trend")
    assert page.locator("svg.trend circle.point").count() == 2  # one drill, in the RTO and the RPO chart
    shot(page, "08d-plan-trends")

    # On a phone the navigation wraps and wide tables scroll sideways instead of the page.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(execution.get_absolute_url())
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot(page, "09-execution-phone")
    assert not engine_driver, engine_driver
