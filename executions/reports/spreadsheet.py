"""The evidence report as CSV: one row per launch attempt DRS made of a server, oldest first
(a server never submitted gets one row without an attempt), for spreadsheets and audit tools.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime

from .evidence import ExecutionReport, ServerEvidence

COLUMNS = [
    "execution_id",
    "plan",
    "mode",
    "execution_status",
    "wave_number",
    "wave_name",
    "hostname",
    "source_server_id",
    "critical",
    "attempt",
    "job_id",
    "attempt_status",
    "attempt_started_at",
    "attempt_ended_at",
    "attempt_error",
    "launch_status",
    "recovery_instance_id",
    "snapshot_at",
    "rpo_seconds",
    "launched_at",
    "launch_seconds",
    "terminated_at",
    "cleanup_job_id",
]
# A spreadsheet runs a cell that starts with one of these as a formula; hostnames and DRS
# messages are not ours to trust.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else ""


def seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def cell(value: str) -> str:
    """Text as a spreadsheet shows it, never as a formula."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def report_csv(report: ExecutionReport) -> str:
    """The CSV text of the report, with a header row."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows(report_rows(report))
    return out.getvalue()


def report_rows(report: ExecutionReport) -> Iterator[list[str]]:
    """One row per attempt of every server, in wave and server order."""
    for server in report.servers:
        attempts = server.attempts or [None]
        for number, attempt in enumerate(attempts, start=1):
            yield _row(report, server, number if attempt else None, attempt)


def _row(report: ExecutionReport, server: ServerEvidence, number, attempt) -> list[str]:
    execution, launch = report.execution, server.launch
    return [
        str(execution.pk),
        cell(execution.plan_name),
        execution.mode,
        execution.status,
        str(server.wave.number),
        cell(server.wave.name),
        cell(launch.hostname),
        launch.source_server_id,
        "true" if launch.critical else "false",
        str(number or ""),
        attempt.job.job_id if attempt and attempt.job and attempt.job.job_id else "",
        attempt.launch_status if attempt else "",
        iso(attempt.started_at if attempt else None),
        iso(attempt.ended_at if attempt else None),
        cell(attempt.error) if attempt else "",
        launch.status,
        launch.recovery_instance_id,
        iso(launch.snapshot_at),
        seconds(server.rpo_seconds),
        iso(launch.launched_at),
        seconds(server.launch_seconds),
        iso(launch.terminated_at),
        launch.cleanup_job.job_id if launch.cleanup_job and launch.cleanup_job.job_id else "",
    ]
