"""The server-rendered SVGs of an execution (the launch timeline and the wave diagram) and of a
plan's trends (achieved RTO and worst RPO per execution), and the report's small filters."""

from django import template
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from drsorch.drs.constants import LaunchActionRunStatus
from drsorch.templatetags.drsorch_ui import duration, tone
from executions.filtersets import is_person_event
from executions.reports import evidence
from executions.trends import MARK
from plans.templatetags.plan_ui import wave_diagram_svg

register = template.Library()

LABEL_W, CHART_W, ROW_H, HEAD_H, AXIS_H = 150, 760, 14, 22, 24


@register.filter
def by_person(event):
    """True for an action someone took: the event log shows these first-class."""
    return is_person_event(event)


def _tick_label(seconds):
    """Compact axis labels: 45s, 2m, 2m30, 1h05."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes}m{rest:02d}" if rest else f"{minutes}m"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}"


def _ticks(span_seconds):
    """A round tick step giving 4 to 10 ticks over the span."""
    for step in (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400):
        if span_seconds / step <= 10:
            return step
    return 86400 * 7


@register.simple_tag
def launch_timeline(execution, waves, now):
    """Gantt-style SVG: one row per server grouped by wave, a bar from the wave start (or
    the server's DRS job request) to its launch, or to now while it is still on its way; then
    one row per wave action (`wave.actions_shown`), from its start to its end.

    Built with plain string formatting and escape(): at 1,000 servers format_html per row
    costs more than the rest of the page."""
    origin = execution.started_at or execution.created_at
    end = execution.finished_at or now
    for wave in waves:
        for launch in wave.launches:
            if launch.launched_at and launch.launched_at > end:
                end = launch.launched_at
    span = max((end - origin).total_seconds(), 60.0)
    scale = CHART_W / span
    rows = sum(1 + len(wave.launches) + len(getattr(wave, "actions_shown", ())) for wave in waves)
    height = AXIS_H + rows * ROW_H + len(waves) * (HEAD_H - ROW_H) + 6
    width = LABEL_W + CHART_W + 20
    parts = [
        f'<svg class="timeline" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'aria-label="Launch timeline of every server, by wave">'
    ]
    step = _ticks(span)
    tick = 0
    while tick <= span:
        x = round(LABEL_W + tick * scale, 1)
        parts.append(
            f'<line class="grid" x1="{x}" y1="{AXIS_H - 4}" x2="{x}" y2="{height}"/>'
            f'<text class="axis" x="{x + 3}" y="14">{_tick_label(tick)}</text>'
        )
        tick += step
    y = AXIS_H
    for wave in waves:
        parts.append(
            f'<text class="wavehead" x="4" y="{y + 15}">{wave.number}. {escape(wave.name[:18])}'
            f"<title>{escape(wave.name)}: {escape(wave.get_status_display())}</title></text>"
        )
        if wave.started_at:
            left = round(LABEL_W + (wave.started_at - origin).total_seconds() * scale, 1)
            band = round(max(2.0, ((wave.finished_at or now) - wave.started_at).total_seconds() * scale), 1)
            parts.append(f'<rect class="waveband" x="{left}" y="{y + 4}" width="{band}" height="{HEAD_H - 8}"/>')
        y += HEAD_H
        for launch in wave.launches:
            start = (launch.job.drs_created_at if launch.job else None) or wave.started_at
            name = launch.hostname or launch.source_server_id
            parts.append(f'<text class="label" x="12" y="{y + 11}">{escape(name[:20])}</text>')
            if start:
                stop = launch.launched_at or (wave.finished_at if launch.is_terminal else None) or now
                seconds = (stop - start).total_seconds()
                x = round(LABEL_W + max(0.0, (start - origin).total_seconds()) * scale, 1)
                bar = round(max(2.0, seconds * scale), 1)
                parts.append(
                    f'<rect class="bar tone-{tone(launch.status)}" x="{x}" y="{y + 2}" width="{bar}" '
                    f'height="{ROW_H - 4}" rx="2"><title>{escape(name)}: {escape(launch.get_status_display())} '
                    f"{duration(seconds)}</title></rect>"
                )
            y += ROW_H
        # The wave's actions (runbook steps), before ones first, each from its start to its end.
        for run in getattr(wave, "actions_shown", ()):
            label = f"{escape(run.when)}: {escape(run.name[:14])}"
            parts.append(f'<text class="label action" x="12" y="{y + 11}">{label}</text>')
            if run.started_at:
                stop = run.finished_at or now
                seconds = (stop - run.started_at).total_seconds()
                x = round(LABEL_W + max(0.0, (run.started_at - origin).total_seconds()) * scale, 1)
                bar = round(max(2.0, seconds * scale), 1)
                parts.append(
                    f'<rect class="bar action tone-{tone(run.status)}" x="{x}" y="{y + 2}" width="{bar}" '
                    f'height="{ROW_H - 4}" rx="2"><title>{escape(run.name)} ({escape(run.kind)}): '
                    f"{escape(run.get_status_display())} {duration(seconds)}</title></rect>"
                )
            y += ROW_H
    parts.append("</svg>")
    return mark_safe("".join(parts))


@register.simple_tag
def server_rows(launches):
    """The rows of the server table, built in Python for the same reason as the timeline."""
    rows = []
    for s in launches:
        optional = "" if s.critical else ' <span class="small muted">optional</span>'
        launched = timezone.localtime(s.launched_at).strftime("%H:%M:%S") if s.launched_at else "—"
        # DRS's own post-launch actions (launch actions on the source server): the layer below
        # the plan's wave actions, shown so a team sees both.
        post_launch = ""
        if s.post_launch_status:
            label = LaunchActionRunStatus(s.post_launch_status).label
            post_launch = (
                f'<br><span class="small muted">DRS post-launch actions:</span> '
                f'<span class="badge tone-{tone(s.post_launch_status)}">{escape(label)}</span>'
            )
        rows.append(
            f"<tr><td>{s.wave.number}</td><td>{escape(s.hostname or s.source_server_id)}{optional}<br>"
            f'<span class="mono small muted">{escape(s.source_server_id)}</span></td>'
            f"<td>{escape(s.get_phase_display())}{post_launch}</td>"
            f'<td><span class="badge tone-{tone(s.status)}">{escape(s.get_status_display())}</span></td>'
            f'<td class="mono">{escape(s.recovery_instance_id or "—")}</td><td>{launched}</td>'
            f'<td class="text-bad small">{escape(s.error)}</td></tr>'
        )
    return mark_safe("".join(rows))


@register.simple_tag
def execution_wave_diagram(waves):
    return wave_diagram_svg(
        [
            {
                "index": wave.index,
                "name": wave.name,
                "depends_on": list(wave.depends_on),
                "approval_required": wave.approval_required,
                "wait_after_minutes": wave.wait_after_minutes,
                "status": wave.status,
                "detail": str(wave.get_status_display()),
            }
            for wave in waves
        ]
    )


@register.filter
def wave_numbers(indexes):
    """A frozen wave's 0-based dependency indexes as the 1-based wave numbers pages show."""
    return evidence.wave_numbers(list(indexes or []))


@register.simple_tag
def trend_chart_svg(chart):
    """A TrendChart (executions/trends.py) as inline SVG: value grid, dashed target line, one
    mark per execution (circle: drill, diamond: recovery; tone: its own verdict; hollow: not
    measured) linking to the execution, with a <title> tooltip. No script, no external file.

    role="img" with an aria-label states the chart in words; the page's table beside it holds
    every value for screen readers and print."""
    parts = [
        f'<svg class="trend" role="img" viewBox="0 0 {chart.width} {chart.height}" '
        f'aria-label="{escape(chart.aria_label)}" data-measure="{chart.measure}">'
    ]
    for y, label in chart.ticks:
        parts.append(
            f'<line class="grid" x1="{chart.left}" y1="{y:g}" x2="{chart.right}" y2="{y:g}"/>'
            f'<text class="axis" x="{chart.left - 5}" y="{y + 3:g}" text-anchor="end">{label}</text>'
        )
    parts.append(
        f'<line class="baseline" x1="{chart.left}" y1="{chart.bottom}" x2="{chart.right}" y2="{chart.bottom}"/>'
    )
    for x, anchor, label in chart.dates:
        parts.append(f'<text class="axis" x="{x:g}" y="{chart.height - 10}" text-anchor="{anchor}">{label}</text>')
    parts.append(
        f'<line class="target" x1="{chart.left}" y1="{chart.target_y:g}" x2="{chart.right}" '
        f'y2="{chart.target_y:g}"/><text class="target-label" x="{chart.right}" '
        f'y="{chart.target_y - 4:g}" text-anchor="end">target {chart.target_minutes} min</text>'
    )
    for point in chart.points:
        css = f"point tone-{point.tone}{'' if point.measured else ' unmeasured'}"
        title = f"<title>{escape(point.title)}</title>"
        if point.shape == "diamond":
            mark = f'<path class="{css} diamond" d="{point.diamond_path}">{title}</path>'
        else:
            mark = f'<circle class="{css} circle" cx="{point.x:g}" cy="{point.y:g}" r="{MARK}">{title}</circle>'
        parts.append(f'<a href="{escape(point.url)}">{mark}</a>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
