"""The evidence report as it leaves the building: the page, the PDF (read back with pypdf) and
the CSV (one row per launch attempt), after a drill with a failure, a retry and a clean-up."""

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pypdf import PdfReader

from drsorch.sandbox.models import SandboxJob, SandboxRecoveryInstance
from drsorch.sandbox.services import sandbox_configure
from executions.reports.spreadsheet import COLUMNS
from executions.services import execution_cancel, execution_cleanup, execution_retry, execution_start

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)


@pytest.fixture
def retried_and_cleaned(clock, drive, make_plan, make_user):
    """A drill of three servers in two waves: db-02 failed once and was retried, then an
    Operator cleaned the instances up."""
    plan = make_plan(
        "Payments – eu-west",
        [("Database", ["db-01", "db-02"], {}), ("Web", ["web-01"], {"approval_required": True})],
        rto_target_minutes=45,
        rpo_target_minutes=10,
    )
    operator = make_user("olga", role="Operator")
    sandbox_configure(fail_launch=["db-02"])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=operator, auto_approve=True))
    assert execution.status == "FAILED"
    sandbox_configure(fail_launch=[])
    execution_retry(execution=execution, user=operator)
    execution = drive(execution)
    assert execution.status == "SUCCEEDED"
    execution_cleanup(execution=execution, user=operator)
    return drive(execution, until=lambda e: e.cleaned_up_at is not None)


def pdf_text(content):
    """The PDF's text with runs of white space (line breaks in table cells) read as one space."""
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages).split())


def test_the_pdf_opens_with_pypdf_and_holds_the_plan_the_verdict_and_every_server(
    retried_and_cleaned, client, make_user
):
    execution = retried_and_cleaned
    client.force_login(make_user("vera", role="Viewer"))
    response = client.get(f"/executions/{execution.pk}/report.pdf")

    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith('inline; filename="drill-payments-eu-west-2026-11-28-')
    reader = PdfReader(io.BytesIO(response.content))
    assert reader.metadata.title == "Evidence report: drill of Payments – eu-west"
    text = pdf_text(response.content)
    assert "Payments – eu-west" in text
    assert "RTO MET: achieved" in text and "RPO MET: worst" in text
    assert "against a target of 45 min" in text
    for hostname in ("db-01", "db-02", "web-01"):
        assert hostname in text
    # The failure survives the retry, with DRS's message; the clean-up has DRS's confirmation.
    failed_job = SandboxJob.objects.filter(type="LAUNCH").order_by("created_at").first()
    assert failed_job.job_id in text and "Failed" in text
    assert "terminated (DRS confirmed)" in text and "all 3 drill instance(s) terminated" in text
    for instance in SandboxRecoveryInstance.objects.all():
        assert instance.instance_id in text
    assert "olga" in text and "Retried the execution" in text and "Started clean-up" in text


@pytest.mark.parametrize("ending", ["FAILED", "CANCELLED"])
def test_the_pdf_of_an_execution_that_did_not_succeed_says_missed(clock, drive, make_plan, client, make_user, ending):
    plan = make_plan(f"Broken {ending}", [("Database", ["db-01", "db-02"], {}), ("Web", ["web-01"], {})])
    if ending == "FAILED":
        sandbox_configure(fail_launch=["db-02"])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    if ending == "CANCELLED":
        execution = drive(execution, until=lambda e: e.server_launches.filter(status="LAUNCHED").exists())
        execution_cancel(execution=execution, user=None)
    execution = drive(execution)
    assert execution.status == ending

    client.force_login(make_user("vera", role="Viewer"))
    text = pdf_text(client.get(f"/executions/{execution.pk}/report.pdf").content)
    assert f"RTO MISSED (the execution ended {execution.get_status_display()})" in text
    assert "RTO MET" not in text and "RPO MET" not in text


def test_the_csv_has_one_row_per_attempt_with_the_failure_kept(retried_and_cleaned, client, make_user):
    execution = retried_and_cleaned
    client.force_login(make_user("vera", role="Viewer"))
    response = client.get(f"/executions/{execution.pk}/report.csv")

    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == COLUMNS
    by_server = {}
    for row in rows:
        by_server.setdefault(row["hostname"], []).append(row)
    assert {h: len(r) for h, r in by_server.items()} == {"db-01": 1, "db-02": 2, "web-01": 1}
    first, second = by_server["db-02"]
    assert (first["attempt"], first["attempt_status"], second["attempt"], second["attempt_status"]) == (
        "1",
        "FAILED",
        "2",
        "LAUNCHED",
    )
    assert first["attempt_error"] and first["job_id"] != second["job_id"]
    assert first["attempt_ended_at"] <= second["attempt_started_at"]
    assert all(row["launch_status"] == "TERMINATED" and row["cleanup_job_id"] for row in rows)
    assert all(row["terminated_at"].endswith("Z") and row["snapshot_at"].endswith("Z") for row in rows)
    assert {row["wave_number"] for row in rows} == {"1", "2"}


def test_a_server_never_submitted_gets_one_row_and_formulas_are_not_run(clock, drive, make_plan, client, make_user):
    plan = make_plan(
        "Gate", [("Database", ["=cmd|' /C calc'!A0"], {}), ("Web", ["web-01"], {"approval_required": True})]
    )
    execution = drive(
        execution_start(plan=plan, mode="DRILL", requested_by=None), until=lambda e: e.status == "WAITING_APPROVAL"
    )
    client.force_login(make_user("vera", role="Viewer"))
    rows = list(csv.DictReader(io.StringIO(client.get(f"/executions/{execution.pk}/report.csv").content.decode())))

    web = next(row for row in rows if row["hostname"] == "web-01")
    assert (web["attempt"], web["job_id"], web["launch_status"]) == ("", "", "NOT_STARTED")
    assert rows[0]["hostname"] == "'=cmd|' /C calc'!A0"


def test_the_report_page_shows_frozen_plan_actions_failures_and_cleanup_proof(retried_and_cleaned, client, make_user):
    execution = retried_and_cleaned
    client.force_login(make_user("vera", role="Viewer"))
    page = client.get(f"/executions/{execution.pk}/report/").content.decode()

    for section in (
        "summary",
        "frozen-plan",
        "accepted-risks",
        "human-actions",
        "waves",
        "servers",
        "attempts",
        "cleanup",
        "events",
    ):
        assert f'id="{section}"' in page, section
    assert "Payments – eu-west: Database" in page  # the protection group, from the frozen plan
    assert f"/executions/{execution.pk}/report.pdf" in page and f"/executions/{execution.pk}/report.csv" in page
    assert "terminated (DRS confirmed)" in page and "Retried the execution" in page


def test_reports_need_a_login_and_a_known_execution(retried_and_cleaned, client, make_user):
    execution = retried_and_cleaned
    for suffix in ("report/", "report.pdf", "report.csv"):
        response = client.get(f"/executions/{execution.pk}/{suffix}")
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(make_user("vera", role="Viewer"))
    for suffix in ("report/", "report.pdf", "report.csv"):
        assert client.get(f"/executions/00000000-0000-0000-0000-000000000000/{suffix}").status_code == 404


def test_the_report_reads_a_fixed_number_of_queries_whatever_the_servers(clock, drive, make_plan, client, make_user):
    client.force_login(make_user("vera", role="Viewer"))
    counts = []
    for size in (2, 8):
        plan = make_plan(f"Size {size}", [("All", [f"s{size}-{n:02d}" for n in range(size)], {})])
        execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
        for suffix in ("report/", "report.pdf", "report.csv"):
            with CaptureQueriesContext(connection) as queries:
                assert client.get(f"/executions/{execution.pk}/{suffix}").status_code == 200
            counts.append((suffix, len(queries)))
    assert counts[:3] == counts[3:]


def test_the_reports_keep_the_start_comment_and_the_cancellation_comment(clock, drive, make_plan, client, make_user):
    """Issue 13: why it was started and why it was cancelled are part of the evidence."""
    plan = make_plan("Commented", [("Database", ["db-01"], {}), ("Web", ["web-01"], {})])
    execution = execution_start(plan=plan, mode="RECOVERY", requested_by=None, comment="Region lost, INC-981")
    execution = drive(execution, until=lambda e: e.server_launches.filter(status="LAUNCHED").exists())
    execution_cancel(execution=execution, user=None, comment="Primary back online")
    drive(execution)

    client.force_login(make_user("vera", role="Viewer"))
    text = pdf_text(client.get(f"/executions/{execution.pk}/report.pdf").content)
    assert "Start comment Region lost, INC-981" in text
    page = client.get(f"/executions/{execution.pk}/report/").content.decode()
    assert 'id="start-comment">Region lost, INC-981<' in page
    assert "launched. Comment: \u201cPrimary back online\u201d" in page
