"""The plan page's trend charts as plain geometry: achieved RTO and worst RPO of the last ended
executions against the targets, computed here without a query or a template, so every edge
(one execution, no measure at all, a value above the target, zero) is unit-tested.

`executions.templatetags.execution_ui.trend_chart_svg` draws a `TrendChart` as inline SVG.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from .choices import ExecutionMode

# The drawing's coordinate system (the SVG scales to its box): room for the value labels on
# the left and the dates below.
WIDTH, HEIGHT = 440, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 14, 16, 30
MARK = 6  # half the size of a point's mark
MEASURES = {"rto": ("RTO", "achieved"), "rpo": ("RPO", "worst")}
SHAPES = {ExecutionMode.DRILL: "circle", ExecutionMode.RECOVERY: "diamond"}


@dataclass(frozen=True)
class TrendRun:
    """One ended execution, as the charts read it: when, which mode, both measures in
    seconds (None when unknown) with the target frozen at its start and its own verdict."""

    when: datetime
    mode: str
    mode_label: str
    status_label: str
    url: str
    rto_seconds: float | None
    rto_target_minutes: int
    rto_met: bool | None
    rpo_seconds: float | None
    rpo_target_minutes: int
    rpo_met: bool | None


@dataclass(frozen=True)
class TrendPoint:
    """A point of a chart: where, its mark (circle: drill, diamond: recovery), its tone from
    its own verdict (ok, bad, muted when there is none), and the text of its tooltip."""

    x: float
    y: float
    shape: str
    tone: str
    measured: bool
    title: str
    url: str

    @property
    def diamond_path(self) -> str:
        """The SVG path of a diamond centred on the point (a little larger than a circle's
        radius, so both marks cover about the same area)."""
        x, y, r = self.x, self.y, MARK + 2
        return f"M{x:g},{y - r:g} L{x + r:g},{y:g} L{x:g},{y + r:g} L{x - r:g},{y:g} Z"


@dataclass(frozen=True)
class TrendChart:
    """One chart: the plot area, the value ticks, the dashed target line, the dates under
    the first and last points, and the points in time order."""

    measure: str
    title: str
    aria_label: str
    target_minutes: int
    target_y: float
    ticks: list[tuple[float, str]]
    dates: list[tuple[float, str, str]]
    points: list[TrendPoint]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def trend_run(execution) -> TrendRun:
    """The TrendRun of an ended Execution (no query: only its own columns), dated in the
    current time zone like every date of the pages."""
    return TrendRun(
        when=timezone.localtime(execution.started_at or execution.created_at),
        mode=execution.mode,
        mode_label=str(execution.get_mode_display()),
        status_label=str(execution.get_status_display()),
        url=execution.get_absolute_url(),
        rto_seconds=execution.rto_achieved,
        rto_target_minutes=execution.rto_target_minutes,
        rto_met=execution.rto_met,
        rpo_seconds=execution.rpo_worst_seconds,
        rpo_target_minutes=execution.rpo_target_minutes,
        rpo_met=execution.rpo_met,
    )


def minutes_text(minutes: float) -> str:
    """Minutes as an axis or tooltip reads them: `12`, `12.5`, `0.3`."""
    return f"{round(minutes, 1):g}"


def nice_step(top: float) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving at most 5 steps up to `top`."""
    if top <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(top))
    for factor in (0.1, 0.2, 0.5, 1, 2, 5, 10):
        step = factor * magnitude
        if top / step <= 5:
            return step
    return 10 * magnitude


def verdict_text(met: bool | None) -> str:
    """The verdict as a tooltip says it."""
    return {True: "met", False: "missed"}.get(met, "no verdict")


def trend_chart(*, runs: Sequence[TrendRun], measure: str, target_minutes: int) -> TrendChart:
    """The chart of `measure` ("rto" or "rpo") over `runs` (oldest first), its dashed line at
    `target_minutes` (the plan's target now). Each point keeps the verdict of its own
    execution, judged against the target frozen at its start, so a point under today's line
    may still be "missed" (a failed drill, or a stricter target then).

    The value axis runs from 0 to a round value above both the highest measure and the
    target, so nothing is ever clipped; a run without a measure sits on the axis, hollow."""
    name, measured_as = MEASURES[measure]
    values = [getattr(run, f"{measure}_seconds") for run in runs]
    minutes = [None if value is None else max(0.0, value) / 60 for value in values]
    top_value = max([m for m in minutes if m is not None] + [target_minutes, 0])
    step = nice_step(top_value)
    y_max = max(step, math.ceil(top_value / step - 1e-9) * step)
    plot_top, plot_bottom, plot_left, plot_right = TOP, HEIGHT - BOTTOM, LEFT, WIDTH - RIGHT

    def y_of(value: float) -> float:
        return round(plot_bottom - (plot_bottom - plot_top) * value / y_max, 1)

    ticks = [(y_of(i * step), minutes_text(i * step)) for i in range(round(y_max / step) + 1)]
    slot = (plot_right - plot_left) / max(1, len(runs))
    points = []
    for index, (run, value) in enumerate(zip(runs, minutes, strict=True)):
        met = getattr(run, f"{measure}_met")
        frozen = getattr(run, f"{measure}_target_minutes")
        shown = f"{minutes_text(value)} min" if value is not None else "not measured"
        points.append(
            TrendPoint(
                x=round(plot_left + (index + 0.5) * slot, 1),
                y=y_of(value or 0.0),
                shape=SHAPES.get(run.mode, "circle"),
                tone={True: "ok", False: "bad"}.get(met, "muted"),
                measured=value is not None,
                title=f"{run.when:%Y-%m-%d %H:%M} · {run.mode_label} · {run.status_label} · {name} {measured_as} "
                f"{shown} (target {frozen} min): {verdict_text(met)}",
                url=run.url,
            )
        )
    dates = []
    if runs:
        dates.append((plot_left, "start", f"{runs[0].when:%Y-%m-%d}"))
    if len(runs) > 1:
        dates.append((plot_right, "end", f"{runs[-1].when:%Y-%m-%d}"))
    missed = sum(1 for point in points if point.tone == "bad")
    title = f"{name} {measured_as} per execution (minutes)"
    aria = (
        f"{title}: {len(points)} executions, oldest first; target {target_minutes} min; {missed} missed their target."
        if points
        else f"{title}: no ended execution yet."
    )
    return TrendChart(
        measure=measure,
        title=title,
        aria_label=aria,
        target_minutes=target_minutes,
        target_y=y_of(target_minutes),
        ticks=ticks,
        dates=dates,
        points=points,
    )


def trend_summary(runs: Sequence[TrendRun]) -> list[str]:
    """One line per mode that ran, drills first: how many of its last runs met each target,
    e.g. "Last 10 drills: 9 of 10 met the RTO target, 8 of 10 the RPO target."."""
    lines = []
    for mode, singular, plural in (
        (ExecutionMode.DRILL, "drill", "drills"),
        (ExecutionMode.RECOVERY, "recovery", "recoveries"),
    ):
        of_mode = [run for run in runs if run.mode == mode]
        if not of_mode:
            continue
        count = len(of_mode)
        rto = sum(1 for run in of_mode if run.rto_met is True)
        rpo = sum(1 for run in of_mode if run.rpo_met is True)
        lines.append(
            f"Last {count} {singular if count == 1 else plural}: {rto} of {count} met the RTO target, "
            f"{rpo} of {count} the RPO target."
        )
    return lines
