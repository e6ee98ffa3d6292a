"""The human words of a notification (email subject and body, Slack and Teams messages, the
SNS subject), computed from its stored payload only."""

from dataclasses import dataclass, field

from executions.notable import (
    DRILL_INSTANCES_EXPIRING,
    DRILL_OVERDUE,
    EXECUTION_FINISHED,
    EXECUTION_STARTED,
    EXECUTION_WAITING_APPROVAL,
    READINESS_DEGRADED,
    READINESS_RECOVERED,
)

from ..choices import TEST_EVENT


@dataclass(frozen=True)
class Summary:
    """A title (one line), facts (label, value) and the link to open."""

    title: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    link: str | None = None
    verdict: str = ""


def rto_verdict(execution: dict | None) -> str:
    """'RTO met', 'RTO missed' or '' (still running, or no execution)."""
    rto = (execution or {}).get("rto") or {}
    if rto.get("met") is True:
        return "RTO met"
    if rto.get("met") is False:
        return "RTO missed"
    return ""


def _minutes(seconds) -> str:
    return f"{seconds / 60:.1f} min" if isinstance(seconds, int | float) else "n/a"


def summarize(payload: dict) -> Summary:
    """The words of `payload` (the contract's payload, as stored on the outbox row)."""
    event = payload.get("event", "")
    execution = payload.get("execution") or None
    plan = payload.get("plan") or {}
    plan_name = plan.get("name") or (execution or {}).get("plan", {}).get("name") or "(no plan)"
    link = payload.get("execution_url") or plan.get("url")
    facts = [("Event", event)]
    verdict = ""
    if execution:
        mode = execution.get("mode", "")
        status = execution.get("status", "")
        what = f"{mode} of {plan_name}"
        facts += [("Plan", plan_name), ("Mode", mode), ("Status", status)]
        rto = execution.get("rto") or {}
        verdict = rto_verdict(execution)
        if event == EXECUTION_STARTED:
            title = f"{what} started"
        elif event == EXECUTION_WAITING_APPROVAL:
            waiting = [w for w in execution.get("waves", []) if w.get("status") == "WAITING_APPROVAL"]
            gate = f" at wave {waiting[0].get('number')} {waiting[0].get('name')}" if waiting else ""
            title = f"{what} waits for approval{gate}"
        elif event == EXECUTION_FINISHED:
            title = f"{what} ended {status}" + (f": {verdict}" if verdict else "")
            facts.append(("RTO", f"{_minutes(rto.get('achieved_seconds'))} of {rto.get('target_minutes')} min target"
                          + (f" ({verdict})" if verdict else "")))
        else:
            title = f"{what}: {event}"
        if execution.get("requested_by"):
            facts.append(("Requested by", execution["requested_by"]))
    elif event == READINESS_DEGRADED:
        title = f"Plan {plan_name} is not ready"
    elif event == READINESS_RECOVERED:
        title = f"Plan {plan_name} is ready again"
    elif event == DRILL_OVERDUE:
        title = f"Plan {plan_name}: a drill is overdue"
    elif event == DRILL_INSTANCES_EXPIRING:
        title = f"Plan {plan_name}: drill instances expire soon"
    elif event == TEST_EVENT:
        title = "Test notification from drsorch"
        facts.append(("Channel", str((payload.get("channel") or {}).get("name", ""))))
    else:
        title = f"{event} for {plan_name}"
    if plan and not execution:
        facts.append(("Plan", plan_name))
        for key, value in plan.items():
            if key not in ("id", "name", "url") and isinstance(value, str | int | float | bool):
                facts.append((key.replace("_", " ").capitalize(), str(value)))
    if link:
        facts.append(("Link", link))
    return Summary(title=title, facts=facts, link=link, verdict=verdict)
