"""Template helpers of plans: the wave diagram. Helpers every page uses (status tones,
durations, tags, pagination links) are in drsorch.templatetags.drsorch_ui."""

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

from drsorch.templatetags.drsorch_ui import tone
from plans.choices import ActionKind, ActionOnFailure, ActionWhen
from plans.services import WaveSpec

register = template.Library()

# --- The wave dependency diagram -----------------------------------------------------------------

BOX_W, BOX_H, COL_GAP, ROW_GAP, PAD = 190, 66, 70, 22, 12
ACTION_LINE_H = 15

# A glyph and a short label per action kind, for the diagram's boxes and the waves table.
ACTION_KIND_ICONS = {
    ActionKind.SSM_AUTOMATION: ("⚙", "SSM automation"),
    ActionKind.SSM_COMMAND: ("⌨", "SSM command"),
    ActionKind.WEBHOOK: ("↗", "Webhook"),
    ActionKind.MANUAL: ("✎", "Manual"),
    ActionKind.HEALTH_CHECK: ("♥", "Health check"),
}


def wave_depths(dependencies):
    """Column of each wave: the length of the longest dependency chain leading to it. A
    dependency on a wave that is already on the chain (a cycle in unsaved data) counts as 0.
    Its own stack, not recursion: a chain of thousands of waves must still draw."""
    depths = {}

    def known_deps(node):
        return [d for d in dependencies.get(node, ()) if d in dependencies]

    for root in dependencies:
        if root in depths:
            continue
        path, on_path, pending = [root], {root}, [iter(known_deps(root))]
        while path:
            for dep in pending[-1]:
                if dep not in depths and dep not in on_path:
                    path.append(dep)
                    on_path.add(dep)
                    pending.append(iter(known_deps(dep)))
                    break
            else:
                node = path[-1]
                depths[node] = 1 + max((0 if d in on_path else depths[d] for d in known_deps(node)), default=-1)
                path.pop()
                pending.pop()
                on_path.discard(node)
    return depths


def wave_diagram_svg(waves):
    """An SVG of waves in columns by dependency depth with arrows for depends_on.

    `waves` is a list of dicts: index, name, depends_on (indexes), approval_required,
    wait_after_minutes, and optional `detail` (a second line), `status` and `actions` (one
    line each below the wave's own, see wave_diagram_data: every box grows to the most).
    """
    if not waves:
        return ""
    most_actions = max(len(w.get("actions") or ()) for w in waves)
    box_h = BOX_H + (most_actions * ACTION_LINE_H + 6 if most_actions else 0)
    by_index = {w["index"]: w for w in waves}
    depths = wave_depths({w["index"]: list(w["depends_on"]) for w in waves})
    columns = {}
    for wave in waves:
        columns.setdefault(depths[wave["index"]], []).append(wave["index"])
    position = {}
    for column, members in columns.items():
        for row, index in enumerate(members):
            position[index] = (PAD + column * (BOX_W + COL_GAP), PAD + row * (box_h + ROW_GAP))
    width = PAD * 2 + len(columns) * BOX_W + (len(columns) - 1) * COL_GAP
    height = PAD * 2 + max(len(m) for m in columns.values()) * (box_h + ROW_GAP) - ROW_GAP
    parts = [format_html(
        '<svg class="diagram" role="img" viewBox="0 0 {} {}" width="{}" height="{}" '
        'aria-label="Waves and their dependencies">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/></marker></defs>',
        width, height, width, height,
    )]
    for wave in waves:
        x2, y2 = position[wave["index"]]
        for dep in wave["depends_on"]:
            if dep not in position:
                continue
            x1, y1 = position[dep]
            sx, sy, ex, ey = x1 + BOX_W, y1 + box_h / 2, x2 - 2, y2 + box_h / 2
            mid = (sx + ex) / 2
            parts.append(format_html(
                '<path class="edge" d="M{},{} C{},{} {},{} {},{}" marker-end="url(#arrow)"/>',
                sx, sy, mid, sy, mid, ey, ex, ey,
            ))
            gap = by_index[dep].get("wait_after_minutes") or 0
            if gap:
                parts.append(format_html('<text class="wait" x="{}" y="{}">wait {} min</text>',
                                         (sx + ex) / 2 - 22, (sy + ey) / 2 - 5, gap))
    for wave in waves:
        x, y = position[wave["index"]]
        status = wave.get("status") or ""
        parts.append(format_html(
            '<g class="wave tone-{}"><rect x="{}" y="{}" width="{}" height="{}" rx="8"/>'
            '<text class="title" x="{}" y="{}">{}. {}</text><text class="sub" x="{}" y="{}">{}</text>',
            tone(status) if status else "plan", x, y, BOX_W, box_h,
            x + 12, y + 24, wave["index"] + 1, _clip(wave["name"], 20),
            x + 12, y + 44, _clip(wave.get("detail", ""), 28),
        ))
        if wave.get("approval_required"):
            parts.append(format_html(
                '<g class="gate"><rect x="{}" y="{}" width="46" height="18" rx="9"/>'
                '<text x="{}" y="{}">gate</text></g>',
                x + BOX_W - 54, y + BOX_H - 24, x + BOX_W - 43, y + BOX_H - 11,
            ))
        if wave.get("wait_after_minutes"):
            parts.append(format_html('<text class="sub" x="{}" y="{}">then wait {} min</text>',
                                     x + 12, y + 60, wave["wait_after_minutes"]))
        for number, action in enumerate(wave.get("actions") or ()):
            parts.append(format_html(
                '<text class="sub action" x="{}" y="{}">{} {}: {}<title>{}</title></text>',
                x + 12, y + BOX_H + 8 + number * ACTION_LINE_H, action["icon"], action["when"],
                _clip(action["name"], 21), action["summary"],
            ))
        parts.append(mark_safe("</g>"))
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))


def wave_diagram_data(specs: list[WaveSpec]) -> list[dict]:
    """The waves of a plan (its WaveSpecs) as wave_diagram_svg and the plan page's wave table read them."""
    return [
        {
            "index": position, "name": spec.name, "depends_on": spec.dependencies(position),
            "approval_required": spec.approval_required, "wait_after_minutes": spec.wait_after_minutes,
            "detail": ", ".join(g.name for g in spec.protection_groups),
            "timeout_minutes": spec.timeout_minutes,
            "optional": ", ".join(s.display_name for s in spec.optional_servers),
            "actions": wave_actions_data(spec.actions),
        }
        for position, spec in enumerate(specs)
    ]


def wave_actions_data(actions) -> list[dict]:
    """A wave's actions (ActionSpecs) as the diagram and the waves table show them: those run
    before the launch first, each with its kind's glyph and label and a one-line summary."""
    ordered = sorted(actions, key=lambda a: a.when != ActionWhen.BEFORE)
    rows = []
    for action in ordered:
        icon, label = ACTION_KIND_ICONS.get(action.kind, ("•", action.kind))
        on_failure = "fails the wave" if action.on_failure == ActionOnFailure.FAIL else "the wave goes on"
        rows.append({
            "name": action.name, "kind": action.kind, "when": action.when, "icon": icon, "label": label,
            "timeout_minutes": action.timeout_minutes, "on_failure": action.on_failure,
            "summary": f"{ActionWhen(action.when).label if action.when in ActionWhen.values else action.when}: "
                       f"{action.name} ({label}), timeout {action.timeout_minutes} min; on failure {on_failure}",
        })
    return rows


def _clip(text, length):
    text = str(text or "")
    return escape(text if len(text) <= length else text[: length - 1] + "…")


@register.simple_tag
def wave_diagram(waves):
    return wave_diagram_svg(waves)
