"""The server-rendered SVGs of an execution: the launch timeline and the wave diagram."""

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from plans.templatetags.plan_ui import duration, tone, wave_diagram_svg

register = template.Library()

LABEL_W, CHART_W, ROW_H, HEAD_H, AXIS_H = 150, 760, 14, 22, 24


def _ticks(span_seconds):
    """A round tick step giving 4 to 10 ticks over the span."""
    for step in (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400):
        if span_seconds / step <= 10:
            return step
    return 86400 * 7


@register.simple_tag
def launch_timeline(execution, waves, now):
    """Gantt-style SVG: one row per server grouped by wave, a bar from the wave start (or
    the server's DRS job request) to its launch, or to now while it is still on its way."""
    origin = execution.started_at or execution.created_at
    end = execution.finished_at or now
    for wave in waves:
        for launch in wave.launches:
            if launch.launched_at and launch.launched_at > end:
                end = launch.launched_at
    span = max((end - origin).total_seconds(), 60.0)
    scale = CHART_W / span
    rows = sum(1 + len(wave.launches) for wave in waves)
    height = AXIS_H + rows * ROW_H + len(waves) * (HEAD_H - ROW_H) + 6
    width = LABEL_W + CHART_W + 20
    parts = [format_html(
        '<svg class="timeline" role="img" viewBox="0 0 {} {}" width="{}" height="{}" '
        'aria-label="Launch timeline of every server, by wave">', width, height, width, height)]
    step = _ticks(span)
    tick = 0
    while tick <= span:
        x = LABEL_W + tick * scale
        parts.append(format_html(
            '<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"/><text class="axis" x="{}" y="14">{}</text>',
            round(x, 1), AXIS_H - 4, round(x, 1), height, round(x + 3, 1), duration(tick)))
        tick += step
    y = AXIS_H
    for wave in waves:
        parts.append(format_html(
            '<text class="wavehead" x="4" y="{}">{}. {} · {}</text>',
            y + 15, wave.index + 1, wave.name, wave.get_status_display()))
        if wave.started_at:
            wave_end = wave.finished_at or now
            parts.append(format_html(
                '<rect class="waveband" x="{}" y="{}" width="{}" height="{}"/>',
                round(LABEL_W + (wave.started_at - origin).total_seconds() * scale, 1), y + 4,
                round(max(2.0, (wave_end - wave.started_at).total_seconds() * scale), 1), HEAD_H - 8))
        y += HEAD_H
        for launch in wave.launches:
            start = (launch.job.requested_at if launch.job else None) or wave.started_at
            parts.append(format_html('<text class="label" x="12" y="{}">{}</text>', y + 11,
                                     (launch.hostname or launch.source_server_id)[:20]))
            if start:
                stop = launch.launched_at or (wave.finished_at if launch.is_terminal else None) or now
                x = LABEL_W + max(0.0, (start - origin).total_seconds()) * scale
                bar = max(2.0, (stop - start).total_seconds() * scale)
                parts.append(format_html(
                    '<rect class="bar tone-{}" x="{}" y="{}" width="{}" height="{}" rx="2">'
                    '<title>{}: {} {}</title></rect>',
                    tone(launch.status), round(x, 1), y + 2, round(bar, 1), ROW_H - 4,
                    launch.hostname or launch.source_server_id, launch.get_status_display(),
                    duration((stop - start).total_seconds())))
            y += ROW_H
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))


@register.simple_tag
def execution_wave_diagram(waves):
    return wave_diagram_svg([
        {"index": wave.index, "name": wave.name, "depends_on": list(wave.depends_on),
         "approval_required": wave.approval_required, "wait_after_minutes": wave.wait_after_minutes,
         "status": wave.status, "detail": f"{wave.get_status_display()} · {wave.total} servers"}
        for wave in waves
    ])
