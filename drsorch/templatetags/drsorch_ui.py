"""Template helpers every page uses: status tones, durations, tags and pagination links.

Load with {% load drsorch_ui %}.
"""

from django import template
from django.utils.safestring import mark_safe

register = template.Library()

STATUS_TONES = {
    "SUCCEEDED": "ok", "LAUNCHED": "ok", "CONTINUOUS": "ok", "READY": "ok", "COMPLETED": "ok",
    "RUNNING": "run", "LAUNCHING": "run", "IN_PROGRESS": "run", "PENDING": "idle", "WAITING": "run",
    "BEFORE_ACTIONS": "run", "AFTER_ACTIONS": "run",
    "WAITING_APPROVAL": "gate", "CANCELLING": "warn", "PARTIAL": "warn", "TIMED_OUT": "bad",
    "FAILED": "bad", "CANCELLED": "muted", "SKIPPED": "muted", "TERMINATED": "muted", "NOT_STARTED": "idle",
    "STALLED": "bad", "DISCONNECTED": "bad", "STOPPED": "bad", "PAUSED": "warn", "BACKLOG": "warn",
    "INITIAL_SYNC": "warn", "INITIATING": "warn", "CREATING_SNAPSHOT": "warn", "RESCAN": "warn",
    "UNKNOWN": "muted", "error": "bad", "warning": "warn", "info": "idle",
}


@register.filter
def tone(status):
    """CSS tone of a status: ok, run, gate, warn, bad, idle or muted."""
    return STATUS_TONES.get(str(status), "idle")


@register.filter
def duration(seconds):
    """Seconds as `1 h 02 min`, `4 min 05 s` or `12 s`."""
    if seconds is None or seconds == "":
        return "—"
    seconds = int(round(float(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


@register.filter
def tags_text(tags):
    return ", ".join(f"{key}={value}" for key, value in sorted((tags or {}).items()))


@register.filter
def chosen_labels(bound_field, none="Any"):
    """The labels of the options ticked in a multiple-choice field, or `none`: what a
    checkbox dropdown shows while closed."""
    chosen = {str(value) for value in bound_field.value() or []}
    labels = [str(label) for value, label in bound_field.field.choices if str(value) in chosen]
    return ", ".join(labels) or none


@register.simple_tag(takes_context=True)
def query_with(context, **changes):
    """The current query string with some parameters replaced (for pagination links); a
    parameter given None is left out."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return params.urlencode()


@register.filter
def verdict(met, pending="—"):
    """A target's verdict: met (True), missed (False), or `pending` (None: still running, or
    unknown). Only an execution that ended SUCCEEDED or PARTIAL within its target is ever met."""
    if met is True:
        return mark_safe('<span class="text-ok">met</span>')
    if met is False:
        return mark_safe('<span class="text-bad">missed</span>')
    return pending
