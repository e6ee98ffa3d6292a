"""The evidence report as a PDF that leaves the building: the same sections as the report page,
drawn with fpdf2 and an embedded DejaVu font (so any hostname or DRS message prints as written),
every time in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from drsorch.templatetags.drsorch_ui import duration

from .evidence import ExecutionReport, wave_numbers

FONTS = Path(__file__).resolve().parent / "fonts"
FONT = "DejaVu"
MONO = "DejaVuMono"
GREY = (90, 90, 90)
OK, BAD = (21, 115, 71), (176, 32, 32)
HEADINGS = FontFace(emphasis="BOLD", fill_color=(232, 236, 241))


def utc(moment: datetime | None, *, date: bool = True) -> str:
    """An instant as `2026-12-02 06:22:27 UTC` (or just the time), `-` when unknown."""
    if moment is None:
        return "-"
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC" if date else "%H:%M:%S")


def gate_text(run) -> str:
    """Who opened a wave's gate and when: a user, the engine (auto-approve), or nobody yet."""
    if not run.approval_required:
        return "no gate"
    if not run.approved_at:
        return "not approved"
    who = run.approved_by.get_username() if run.approved_by else "automatically"
    return f"{who} {utc(run.approved_at, date=False)}"


def verdict_text(met: bool | None, note: str) -> str:
    if met is True:
        return "MET"
    if met is False:
        return f"MISSED ({note})" if note else "MISSED"
    return f"not known ({note})" if note else "not known"


class ReportPdf(FPDF):
    """A4 landscape pages (room for DRS ids in tables), the execution in the header, page numbers in
    the footer."""

    def __init__(self, report: ExecutionReport):
        super().__init__(orientation="landscape", unit="mm", format="A4")
        self.report = report
        self.add_font(FONT, "", FONTS / "DejaVuSans.ttf")
        self.add_font(FONT, "B", FONTS / "DejaVuSans-Bold.ttf")
        self.add_font(MONO, "", FONTS / "DejaVuSansMono.ttf")
        self.set_auto_page_break(auto=True, margin=15)
        self.set_margins(12, 14, 12)
        execution = report.execution
        self.set_title(f"Evidence report: {execution.get_mode_display().lower()} of {execution.plan_name}")
        self.set_author("drsorch")
        self.set_subject(f"Execution {execution.pk}")
        self.set_creation_date(report.generated_at)

    def header(self):
        self.set_font(FONT, "", 7)
        self.set_text_color(*GREY)
        self.cell(
            0, 4, f"drsorch evidence report · execution {self.report.execution.pk}", new_x="LMARGIN", new_y="NEXT"
        )
        self.set_text_color(0)
        self.ln(2)

    def footer(self):
        self.set_y(-10)
        self.set_font(FONT, "", 7)
        self.set_text_color(*GREY)
        self.cell(0, 4, f"Generated {utc(self.report.generated_at)} · page {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(0)

    # --- building blocks ---

    def heading(self, text: str) -> None:
        if self.will_page_break(20):
            self.add_page()
        self.ln(3)
        self.set_font(FONT, "B", 11)
        self.cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
        self.set_font(FONT, "", 8)

    def paragraph(self, text: str, *, size: int = 8, color: tuple[int, int, int] | None = None) -> None:
        self.set_font(FONT, "", size)
        if color:
            self.set_text_color(*color)
        self.multi_cell(0, 4.2, text, new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0)

    def facts(self, rows: list[tuple[str, str]], *, verdicts: dict[str, bool | None] | None = None) -> None:
        """Label and value rows; the rows named in `verdicts` in bold, green when met, red when not."""
        verdicts = verdicts or {}
        self.set_font(FONT, "", 8)
        with self.table(
            col_widths=(18, 168), first_row_as_headings=False, line_height=4.6, borders_layout="HORIZONTAL_LINES"
        ) as table:
            for label, value in rows:
                row = table.row()
                row.cell(label, style=FontFace(emphasis="BOLD"))
                if label in verdicts:
                    met = verdicts[label]
                    row.cell(value, style=FontFace(emphasis="BOLD", color=OK if met else BAD if met is False else 0))
                else:
                    row.cell(value)

    def grid(
        self, headings: tuple[str, ...], widths: tuple[float, ...], rows: list[tuple[str, ...]], *, size: int = 7
    ) -> None:
        self.set_font(FONT, "", size)
        with self.table(
            col_widths=widths, headings_style=HEADINGS, line_height=size * 0.55, text_align="LEFT"
        ) as table:
            table.row(headings)
            for values in rows:
                table.row([str(value) for value in values])


def report_pdf(report: ExecutionReport) -> bytes:
    """The evidence report of one execution as PDF bytes."""
    pdf = ReportPdf(report)
    pdf.add_page()
    _title(pdf, report)
    _summary(pdf, report)
    _frozen_plan(pdf, report)
    _risks_and_actions(pdf, report)
    _waves(pdf, report)
    _servers(pdf, report)
    _failures(pdf, report)
    _cleanup(pdf, report)
    return bytes(pdf.output())


def _title(pdf: ReportPdf, report: ExecutionReport) -> None:
    execution = report.execution
    pdf.set_font(FONT, "B", 15)
    pdf.multi_cell(
        0,
        7,
        f"Evidence report: {execution.get_mode_display().lower()} of {execution.plan_name}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.paragraph(
        "Times are DRS's own (job creation and end, launch, recovery snapshot, clean-up job end), "
        "in UTC; the event log's times are drsorch's.",
        color=GREY,
    )


def _summary(pdf: ReportPdf, report: ExecutionReport) -> None:
    execution = report.execution
    note = report.verdict_note
    rto = execution.rto_achieved
    rpo = execution.rpo_worst_seconds
    pdf.heading("Summary")
    pdf.facts(
        [
            ("Execution", str(execution.pk)),
            ("Plan", f"{execution.plan_name} (plan #{execution.plan_id})"),
            ("Mode", execution.get_mode_display()),
            ("Result", execution.get_status_display()),
            (
                "Started by",
                (execution.requested_by_username or "-")
                + (" (gates approved automatically)" if execution.auto_approve else ""),
            ),
            ("Start comment", execution.comment or "none given"),
            ("Requested", utc(execution.created_at)),
            ("Started", utc(execution.started_at)),
            ("Ended", utc(execution.finished_at) if execution.finished_at else "not yet"),
            ("Point in time", utc(execution.point_in_time) if execution.point_in_time else "latest snapshot"),
            (
                "RTO",
                f"{verdict_text(execution.rto_met, note)}: achieved {duration(rto)} (start to the last critical "
                f"server's launch, on DRS's clock) against a target of {execution.rto_target_minutes} min",
            ),
            (
                "RPO",
                f"{verdict_text(execution.rpo_met, note)}: worst {duration(rpo)} (the oldest snapshot a server "
                f"was launched from) against a target of {execution.rpo_target_minutes} min",
            ),
            (
                "Servers",
                f"{report.launched} launched, {report.failed} failed, {len(report.servers)} in all; "
                f"{len(report.failed_attempts)} failed launch attempt(s)",
            ),
            ("Clean-up", report.cleanup_summary),
        ],
        verdicts={"RTO": execution.rto_met, "RPO": execution.rpo_met},
    )


def _frozen_plan(pdf: ReportPdf, report: ExecutionReport) -> None:
    plan = report.frozen_plan.get("plan", {})
    waves = report.frozen_plan.get("waves", [])
    hostnames = {s.launch.source_server_id: s.name for s in report.servers}
    pdf.heading("The plan as it was at start")
    if plan.get("description"):
        pdf.paragraph(plan["description"])
    rows = []
    for position, wave in enumerate(waves):
        groups = ", ".join(
            g["name"] + (f" (tags {g['tag_selector']})" if g.get("tag_selector") else "")
            for g in wave.get("protection_groups", [])
        )
        optional = ", ".join(hostnames.get(i, i) for i in wave.get("optional_servers", [])) or "none"
        rows.append(
            (
                str(position + 1),
                wave["name"],
                wave_numbers(wave.get("depends_on", [])),
                groups or "-",
                "yes" if wave.get("approval_required") else "no",
                f"{wave.get('wait_after_minutes', 0)} min",
                f"{wave.get('timeout_minutes', '-')} min",
                optional,
            )
        )
    if rows:
        pdf.grid(
            ("#", "Wave", "After", "Protection groups", "Gate", "Wait", "Timeout", "Optional servers"),
            (7, 28, 14, 55, 12, 14, 16, 40),
            rows,
        )
    else:
        pdf.paragraph("No frozen copy of the plan was kept for this execution.", color=GREY)


def _risks_and_actions(pdf: ReportPdf, report: ExecutionReport) -> None:
    execution = report.execution
    pdf.heading("Accepted risks")
    if execution.accepted_risks:
        pdf.paragraph(
            f"{execution.requested_by_username or 'cli'} started it accepting "
            f"{len(execution.accepted_risks)} readiness warning(s):"
        )
        for risk in execution.accepted_risks:
            pdf.paragraph(f"• {risk}")
    else:
        pdf.paragraph("None: readiness found no warning at start.", color=GREY)
    pdf.heading("Who approved, cancelled, retried and cleaned up")
    if report.human_actions:
        pdf.grid(
            ("When (UTC)", "Who", "Action"),
            (38, 26, 122),
            [(utc(e.created_at), e.actor_name or "-", e.message) for e in report.human_actions],
        )
    else:
        pdf.paragraph("No human action recorded.", color=GREY)


def _waves(pdf: ReportPdf, report: ExecutionReport) -> None:
    pdf.heading("Waves")
    rows = []
    for wave in report.waves:
        run = wave.run
        gate = gate_text(run)
        rows.append(
            (
                str(run.number),
                run.name,
                run.get_status_display(),
                utc(run.started_at, date=False),
                utc(run.finished_at, date=False),
                duration(wave.duration_seconds),
                gate,
                f"{wave.launched}/{len(wave.servers)}" + (f", {wave.failed} failed" if wave.failed else ""),
            )
        )
    pdf.grid(
        ("#", "Wave", "Status", "Started", "Ended", "Duration", "Gate approved by", "Servers"),
        (7, 32, 22, 18, 18, 22, 38, 29),
        rows,
    )
    actions = [(wave.run, action) for wave in report.waves for action in wave.actions]
    if actions:
        pdf.heading("Wave actions")
        pdf.grid(
            ("#", "Action", "Kind", "When", "Status", "Started", "Ended", "Outcome"),
            (7, 32, 22, 14, 20, 16, 16, 59),
            [
                (
                    str(run.number),
                    action.name,
                    action.kind,
                    action.when,
                    action.get_status_display() + (f" (attempt {action.attempt})" if action.attempt > 1 else ""),
                    utc(action.started_at, date=False),
                    utc(action.finished_at, date=False),
                    action_outcome(action),
                )
                for run, action in actions
            ],
        )


def action_outcome(action) -> str:
    """One line of what an action came to: who completed it, its error, or its output."""
    if action.completed_by_username:
        return f"completed by {action.completed_by_username}: {action.comment}"
    text = action.error or action.output or ""
    return text if len(text) <= 200 else text[:199] + "…"


def _servers(pdf: ReportPdf, report: ExecutionReport) -> None:
    pdf.heading("Servers")
    rows = [
        (
            str(s.wave.number),
            s.name + ("" if s.launch.critical else " (optional)"),
            s.launch.get_status_display(),
            s.launch.recovery_instance_id or "-",
            s.launch.job.job_id if s.launch.job else "-",
            utc(s.launch.snapshot_at, date=False),
            duration(s.rpo_seconds),
            utc(s.launch.launched_at, date=False),
            duration(s.launch_seconds),
            str(len(s.attempts)),
        )
        for s in report.servers
    ]
    pdf.grid(
        ("Wave", "Server", "Status", "Instance", "DRS job", "Snapshot", "RPO", "Launched", "Launch time", "Tries"),
        (8, 34, 16, 30, 32, 14, 13, 14, 16, 9),
        rows,
        size=6,
    )


def _failures(pdf: ReportPdf, report: ExecutionReport) -> None:
    pdf.heading("Failures and the retries that followed")
    if report.retried:
        rows = [
            (
                s.name,
                a.job.job_id if a.job else "-",
                a.get_launch_status_display(),
                utc(a.started_at, date=False),
                utc(a.ended_at, date=False),
                a.error or "-",
            )
            for s in report.retried
            for a in s.attempts
        ]
        pdf.grid(("Server", "DRS job", "Result", "Started", "Ended", "DRS's message"), (26, 34, 16, 14, 14, 82), rows)
    if report.failed_servers or report.error_events:
        pdf.ln(2)
        for server in report.failed_servers:
            pdf.paragraph(
                f"• {server.name} ({server.launch.get_status_display()}): {server.launch.error or 'no error text'}",
                color=BAD,
            )
        for event in report.error_events:
            pdf.paragraph(f"• {utc(event.created_at)} {event.message}", color=BAD)
    elif not report.retried:
        pdf.paragraph("No failure: every launch attempt succeeded.", color=OK)


def _cleanup(pdf: ReportPdf, report: ExecutionReport) -> None:
    pdf.heading("Clean-up proof")
    pdf.paragraph(report.cleanup_summary[:1].upper() + report.cleanup_summary[1:] + ".")
    if report.cleanup:
        outcomes = {
            "terminated": "terminated (DRS confirmed)",
            "gone": "already gone before the clean-up",
            "terminating": "terminating",
            "running": "still running",
        }
        pdf.grid(
            ("Server", "Recovery instance", "Outcome", "DRS job", "Confirmed at"),
            (30, 34, 52, 32, 38),
            [
                (
                    item.server.name,
                    item.server.launch.recovery_instance_id,
                    outcomes[item.outcome],
                    item.job_id or "-",
                    utc(item.confirmed_at),
                )
                for item in report.cleanup
            ],
        )
