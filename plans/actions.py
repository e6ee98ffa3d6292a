"""Wave actions (runbook steps) as a plan holds them: what each kind's `config` may say, and
the checks that name the field at fault. The engine that runs them is executions' business;
here they are only data a Planner edits.

Errors are keyed like the rest of a plan's ("waves.<wave>.actions.<action>.<field>", with
"config.<key>" for a key of the config), so forms and the API show each message next to its
field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from drsorch.webhooks.addresses import PrivateAddressError, UnresolvableHost, check_webhook_url

from .choices import ACTION_KINDS_AFTER_LAUNCH_ONLY, ActionKind, ActionOnFailure, ActionWhen

ACTION_NAME_MAX_LENGTH = 100
# Shown in URLs (/executions/<id>/actions/<name>/complete/) and typed in commands: no slash,
# no control character, no leading or trailing space.
ACTION_NAME_RE = re.compile(r"\A[\w][\w .:()+@#-]{0,99}\Z")
MAX_ACTION_TIMEOUT_MINUTES = 1440
DEFAULT_ACTION_TIMEOUT_MINUTES = 30
# SSM's own limits (botocore's ssm model: DocumentARN pattern, ParameterValue lists).
SSM_DOCUMENT_RE = re.compile(r"\A[a-zA-Z0-9_\-.:/]{3,128}\Z")
SSM_PARAMETER_NAME_RE = re.compile(r"\A[a-zA-Z0-9_.-]{1,50}\Z")
MAX_SSM_PARAMETERS = 50
MAX_INSTRUCTIONS = 2000
MAX_SECRET = 200

# The keys each kind's config may hold, with the required ones.
CONFIG_KEYS = {
    ActionKind.SSM_AUTOMATION: ({"document", "parameters"}, {"document"}),
    ActionKind.SSM_COMMAND: ({"document", "parameters"}, {"document"}),
    ActionKind.WEBHOOK: ({"url", "secret"}, {"url"}),
    ActionKind.MANUAL: ({"instructions"}, {"instructions"}),
    ActionKind.HEALTH_CHECK: ({"ec2_status_checks", "ssm_ping"}, set()),
}


@dataclass
class ActionSpec:
    """A wave action before it is saved (contract: waves[].actions[])."""

    name: str
    kind: str
    when: str = ActionWhen.AFTER
    config: dict = field(default_factory=dict)
    timeout_minutes: int = DEFAULT_ACTION_TIMEOUT_MINUTES
    on_failure: str = ActionOnFailure.FAIL

    def as_json(self) -> dict:
        """The contract's shape, as the API reads and writes it and executions freeze it."""
        return {
            "name": self.name,
            "kind": self.kind,
            "when": self.when,
            "config": self.config,
            "timeout_minutes": self.timeout_minutes,
            "on_failure": self.on_failure,
        }


def _ssm_config(config: dict, errors: dict) -> dict:
    document = config.get("document")
    if not isinstance(document, str) or not SSM_DOCUMENT_RE.match(document):
        errors["config.document"] = (
            "Name the SSM document: 3 to 128 letters, digits and _-.:/ (e.g. AWS-RunShellScript), or its ARN."
        )
    parameters = config.get("parameters", {})
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        errors["config.parameters"] = 'Parameters are an object of names to lists of strings: {"commands": ["uptime"]}.'
        return {"document": document, "parameters": {}}
    if len(parameters) > MAX_SSM_PARAMETERS:
        errors["config.parameters"] = f"At most {MAX_SSM_PARAMETERS} parameters."
    clean = {}
    for name, value in parameters.items():
        if not isinstance(name, str) or not SSM_PARAMETER_NAME_RE.match(name):
            errors["config.parameters"] = f"Parameter name {name!r} is not valid: 1 to 50 letters, digits and _.-."
            continue
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            errors["config.parameters"] = f"Parameter {name!r} must be a string or a list of strings."
            continue
        clean[name] = values
    if "InstanceId" in clean:
        errors["config.parameters"] = (
            "Leave out InstanceId: drsorch passes each recovered instance of the wave itself."
        )
    return {"document": document, "parameters": clean}


def _webhook_config(config: dict, errors: dict) -> dict:
    url = config.get("url")
    secret = config.get("secret", "")
    if not isinstance(url, str) or not url.strip():
        errors["config.url"] = "Give the webhook's URL (http or https)."
    else:
        try:
            check_webhook_url(url)
        except UnresolvableHost:
            pass  # DNS may be down now; the engine resolves and checks again at every send
        except (PrivateAddressError, ValueError) as exc:
            errors["config.url"] = str(exc)
    if secret is None:
        secret = ""
    if not isinstance(secret, str) or len(secret) > MAX_SECRET:
        errors["config.secret"] = f"The secret is a string of at most {MAX_SECRET} characters."
    clean = {"url": url}
    if secret:
        clean["secret"] = secret
    return clean


def _manual_config(config: dict, errors: dict) -> dict:
    instructions = config.get("instructions")
    if not isinstance(instructions, str) or not instructions.strip():
        errors["config.instructions"] = "Say what the Operator must do and check before completing it."
    elif len(instructions) > MAX_INSTRUCTIONS:
        errors["config.instructions"] = f"At most {MAX_INSTRUCTIONS} characters."
    return {"instructions": instructions.strip() if isinstance(instructions, str) else instructions}


def _health_check_config(config: dict, errors: dict) -> dict:
    clean = {}
    for key, default in (("ec2_status_checks", True), ("ssm_ping", False)):
        value = config.get(key, default)
        if not isinstance(value, bool):
            errors[f"config.{key}"] = f"{key} is true or false."
            value = default
        clean[key] = value
    if not any(clean.values()):
        errors["config"] = "A health check needs ec2_status_checks or ssm_ping (or both)."
    return clean


CONFIG_CHECKS = {
    ActionKind.SSM_AUTOMATION: _ssm_config,
    ActionKind.SSM_COMMAND: _ssm_config,
    ActionKind.WEBHOOK: _webhook_config,
    ActionKind.MANUAL: _manual_config,
    ActionKind.HEALTH_CHECK: _health_check_config,
}


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def action_check(spec: ActionSpec) -> tuple[ActionSpec, dict[str, str]]:
    """The action with its config tidied (defaults filled, strings as lists), and its errors by
    field ("name", "kind", "when", "timeout_minutes", "on_failure", "config", "config.<key>")."""
    errors: dict[str, str] = {}
    name = spec.name.strip() if isinstance(spec.name, str) else ""
    if not name:
        errors["name"] = "An action needs a name."
    elif not ACTION_NAME_RE.match(name):
        errors["name"] = (
            f"Name {name!r} is not valid: up to {ACTION_NAME_MAX_LENGTH} letters, digits, spaces and .:()+@#-_, "
            "starting with a letter or digit (no slash: it appears in URLs)."
        )
    if spec.kind not in ActionKind.values:
        errors["kind"] = f"Unknown kind {spec.kind!r}; choose {', '.join(ActionKind.values)}."
    if spec.when not in ActionWhen.values:
        errors["when"] = f"Unknown time {spec.when!r}; choose before or after."
    elif spec.when == ActionWhen.BEFORE and spec.kind in ACTION_KINDS_AFTER_LAUNCH_ONLY:
        errors["when"] = f"A {spec.kind} action acts on the wave's recovered instances, so it runs after launch."
    if spec.on_failure not in ActionOnFailure.values:
        errors["on_failure"] = f"Unknown on_failure {spec.on_failure!r}; choose fail or continue."
    timeout = spec.timeout_minutes
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= MAX_ACTION_TIMEOUT_MINUTES:
        errors["timeout_minutes"] = (
            f"The timeout must be a whole number of minutes from 1 to {MAX_ACTION_TIMEOUT_MINUTES}."
        )
    config = spec.config if spec.config is not None else {}
    clean_config = config
    if not isinstance(config, dict):
        errors["config"] = "The config is an object."
    elif _holds_nul(config):
        # A JSON "\u0000" reaches here from a form's JSON text; PostgreSQL's jsonb refuses it.
        errors["config"] = "The config holds a NUL character (\\u0000), which no setting takes."
    elif spec.kind in CONFIG_KEYS:
        allowed, _required = CONFIG_KEYS[spec.kind]
        unknown = sorted(str(key) for key in config if key not in allowed)
        if unknown:
            errors["config"] = (
                f"Unknown config key(s) for {spec.kind}: {', '.join(unknown)} "
                f"(allowed: {', '.join(sorted(allowed))})."
            )
        clean_config = CONFIG_CHECKS[spec.kind](config, errors)
    tidied = ActionSpec(
        name=name, kind=spec.kind, when=spec.when, config=clean_config, timeout_minutes=timeout,
        on_failure=spec.on_failure,
    )
    return tidied, errors


def actions_check(waves) -> tuple[list[list[ActionSpec]], dict[str, list[str]]]:
    """Check the actions of every wave (each WaveSpec's `actions`): each action's fields, and
    names unique within the plan (an Operator completes a manual action by its name). Returns
    the tidied actions per wave and the errors keyed "waves.<w>.actions.<a>.<field>"."""
    errors: dict[str, list[str]] = {}
    tidied_waves = []
    seen: dict[str, tuple[int, int]] = {}
    for w, wave in enumerate(waves):
        tidied = []
        for a, spec in enumerate(getattr(wave, "actions", None) or []):
            clean, problems = action_check(spec)
            for field_name, message in problems.items():
                errors.setdefault(f"waves.{w}.actions.{a}.{field_name}", []).append(message)
            if clean.name and "name" not in problems:
                if clean.name in seen:
                    errors.setdefault(f"waves.{w}.actions.{a}.name", []).append(
                        f"Two actions are named '{clean.name}'; action names must be unique within a plan."
                    )
                else:
                    seen[clean.name] = (w, a)
            tidied.append(clean)
        tidied_waves.append(tidied)
    return tidied_waves, errors
