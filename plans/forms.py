"""Forms of the plans pages. They only parse and check input; plans.services saves it."""

import json

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.urls import reverse

from drsorch.web import whole_number, whole_numbers

from .actions import DEFAULT_ACTION_TIMEOUT_MINUTES, ActionSpec
from .choices import ActionKind, ActionOnFailure, ActionWhen
from .filtersets import parse_tag
from .models import ProtectionGroup, RecoveryPlan, SourceServer, Target
from .selectors import servers_of_groups
from .services import WaveSpec


def tag_selector_to_text(selector):
    return "\n".join(f"{key}={value}" for key, value in sorted((selector or {}).items()))


def parse_tag_selector(text):
    """`Key=Value` lines (blank lines ignored) into a dict; raises ValidationError naming the line."""
    selector = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            key, value = parse_tag(line)
        except ValidationError:
            raise ValidationError(f"Line {number}: write a tag as Key=Value, e.g. Tier=db.")
        if value is None:
            raise ValidationError(f"Line {number}: '{key}' has no value; write it as {key}=Value.")
        if key in selector:
            raise ValidationError(f"Line {number}: tag '{key}' is given twice.")
        selector[key] = value
    return selector


def apply_service_errors(form, error, fields=None):
    """Attach a service's ValidationError to `form`: known field keys next to their field,
    anything else as a non-field error."""
    fields = form.fields if fields is None else fields
    for key, messages in error.message_dict.items():
        field = key if key in fields else None
        for message in messages:
            form.add_error(field, message)


class ServerSyncForm(forms.Form):
    target = forms.ModelChoiceField(
        queryset=Target.objects.all(), required=False, empty_label="All targets", label="Target to sync"
    )


class ProtectionGroupForm(forms.Form):
    """A protection group: explicit servers picked from the target's inventory, and/or tags."""

    name = forms.CharField(max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    target = forms.ModelChoiceField(queryset=Target.objects.all())
    servers = forms.ModelMultipleChoiceField(
        queryset=SourceServer.objects.all(), required=False, widget=forms.MultipleHiddenInput,
        label="Servers",
    )
    tag_selector = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Tier=db\nApp=billing"}), required=False,
        label="Tag selector", help_text="One Key=Value per line; servers of the target carrying every tag belong "
        "to the group.",
    )

    def __init__(self, *args, group=None, **kwargs):
        self.group = group
        if group is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": group.name,
                "description": group.description,
                "target": group.target_id,
                "servers": list(group.servers.values_list("pk", flat=True)),
                "tag_selector": tag_selector_to_text(group.tag_selector),
            }
        super().__init__(*args, **kwargs)

    def clean_tag_selector(self):
        return parse_tag_selector(self.cleaned_data.get("tag_selector"))

    def selected_server_ids(self):
        """The servers currently ticked, for the picker (bound data first, else initial)."""
        if self.is_bound:
            values = self.data.getlist("servers") if hasattr(self.data, "getlist") else self.data.get("servers", [])
            return whole_numbers(values)
        return set(self.initial.get("servers") or [])

    def selected_target_id(self):
        value = self.data.get("target") if self.is_bound else self.initial.get("target")
        return whole_number(value)


class RecoveryPlanForm(forms.ModelForm):
    """The plan's own fields; uniqueness and ranges are checked again by plan_save."""

    class Meta:
        model = RecoveryPlan
        fields = ["name", "description", "rto_target_minutes", "rpo_target_minutes", "drill_schedule",
                  "auto_approve", "drill_instance_ttl_minutes", "drill_max_age_days"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2}),
                   "drill_schedule": forms.TextInput(attrs={"placeholder": "0 3 * * 1", "spellcheck": "false"})}


class WaveForm(forms.Form):
    """One wave. `depends_on` holds positions of the other forms of the formset."""

    name = forms.CharField(max_length=100, required=False)
    protection_groups = forms.ModelMultipleChoiceField(
        queryset=ProtectionGroup.objects.select_related("target"), required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    depends_on = forms.TypedMultipleChoiceField(
        coerce=int, required=False, widget=forms.CheckboxSelectMultiple, label="Depends on",
        help_text="Waves that must end before this one starts; none means it starts at once.",
    )
    approval_required = forms.BooleanField(required=False, label="Approval gate",
                                           help_text="Hold the wave until someone approves it.")
    wait_after_minutes = forms.IntegerField(min_value=0, initial=0, label="Wait after (minutes)")
    timeout_minutes = forms.IntegerField(min_value=1, initial=120, label="Timeout (minutes)")
    # Any server is accepted here, so that plan_save's error names a server that is not in
    # the wave; the page offers only the wave's own (optional_server_rows).
    optional_servers = forms.ModelMultipleChoiceField(
        queryset=SourceServer.objects.all(), required=False, label="Optional servers",
        widget=forms.CheckboxSelectMultiple,
        help_text="Servers whose failure ends the wave PARTIAL instead of FAILED.",
    )

    def __init__(self, *args, wave_labels=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["depends_on"].choices = [
            (position, label) for position, label in enumerate(wave_labels) if position != self.position
        ]
        self.actions = self._action_formset()

    def _action_formset(self):
        """The wave's actions (rows prefixed "<wave prefix>-actions-<n>"). A post without the
        actions' management form (a script, an older page) means the wave has none."""
        prefix = self.add_prefix("actions")
        if not self.is_bound:
            return WaveActionFormSet(prefix=prefix, initial=(self.initial or {}).get("actions") or [])
        data = self.data
        if f"{prefix}-TOTAL_FORMS" not in data:
            data = data.copy()
            data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
        return WaveActionFormSet(data, prefix=prefix)

    def _ticked(self, name):
        """The ids ticked in the checkboxes `name`: posted ones first, else the initial ones."""
        if self.is_bound:
            return whole_numbers(self.data.getlist(self.add_prefix(name)) if hasattr(self.data, "getlist")
                                 else self.data.get(self.add_prefix(name)) or [])
        return whole_numbers(self.initial.get(name) or [])

    def optional_server_rows(self):
        """The optional-server checkboxes: see optional_server_rows()."""
        return optional_server_rows(group_ids=self._ticked("protection_groups"),
                                    ticked_ids=self._ticked("optional_servers"))

    @property
    def position(self):
        return int(self.prefix.rsplit("-", 1)[-1]) if self.prefix else 0


def optional_server_rows(*, group_ids, ticked_ids):
    """The checkboxes of a wave's optional servers: every server of its protection groups
    `group_ids` (tag matches included), ticked when in `ticked_ids`; a ticked server that is
    not in the wave (its group was just removed) is listed too, marked, so it can be unticked
    and plan_save's error about it has a box next to it."""
    servers = servers_of_groups(group_ids=group_ids)
    in_wave = {server.pk for server in servers}
    rows = [{"server": server, "checked": server.pk in ticked_ids, "outside": False} for server in servers]
    outside = SourceServer.objects.filter(pk__in=set(ticked_ids) - in_wave).order_by("hostname", "drs_id")
    rows += [{"server": server, "checked": True, "outside": True} for server in outside]
    return rows


# --- Wave actions (runbook steps) ------------------------------------------------------------------

# The form fields that hold each kind's config, in the order the row shows them.
ACTION_CONFIG_FIELDS = {
    ActionKind.SSM_AUTOMATION: ["document", "parameters"],
    ActionKind.SSM_COMMAND: ["document", "parameters"],
    ActionKind.WEBHOOK: ["url", "secret"],
    ActionKind.MANUAL: ["instructions"],
    ActionKind.HEALTH_CHECK: ["ec2_status_checks", "ssm_ping"],
}
# Short labels: the row's select is narrow (the kinds' long labels are the models').
ACTION_KIND_CHOICES = [
    (ActionKind.SSM_AUTOMATION, "SSM automation"),
    (ActionKind.SSM_COMMAND, "SSM command"),
    (ActionKind.WEBHOOK, "Webhook"),
    (ActionKind.MANUAL, "Manual step"),
    (ActionKind.HEALTH_CHECK, "Health check"),
]
CONFIG_FIELD_NAMES = ["document", "parameters", "url", "secret", "instructions", "ec2_status_checks", "ssm_ping"]


def parameters_to_text(parameters):
    """SSM parameters as the form shows them: one name=value line per value."""
    return "\n".join(f"{name}={value}" for name, values in (parameters or {}).items()
                     for value in ([values] if isinstance(values, str) else values))


def parse_parameters(text):
    """`name=value` lines (a name repeated gives a list), or a JSON object, into SSM parameters;
    raises ValidationError naming the line. What the names and values may be is the service's rule."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"This is not valid JSON ({exc.msg}, line {exc.lineno}).")
        if not isinstance(value, dict):
            raise ValidationError('Give a JSON object, e.g. {"commands": ["uptime"]}.')
        return value
    parameters = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise ValidationError(f"Line {number}: write a parameter as name=value, e.g. commands=uptime.")
        parameters.setdefault(name.strip(), []).append(value.strip())
    return parameters


class WaveActionForm(forms.Form):
    """One action of a wave: its own fields and the config fields of its kind. It parses only;
    plans.actions (through plan_save) says what is wrong, and its messages land on these fields."""

    name = forms.CharField(required=False, label="Name", widget=forms.TextInput(attrs={"maxlength": 100}))
    kind = forms.ChoiceField(choices=ACTION_KIND_CHOICES, initial=ActionKind.MANUAL, label="Kind")
    when = forms.ChoiceField(choices=ActionWhen.choices, initial=ActionWhen.AFTER, label="When")
    timeout_minutes = forms.IntegerField(initial=DEFAULT_ACTION_TIMEOUT_MINUTES, label="Timeout (minutes)")
    on_failure = forms.ChoiceField(choices=[(ActionOnFailure.FAIL, "Fail the wave"),
                                            (ActionOnFailure.CONTINUE, "Record it, go on")],
                                   initial=ActionOnFailure.FAIL, label="On failure")
    document = forms.CharField(
        required=False, label="SSM document",
        widget=forms.TextInput(attrs={"placeholder": "AWS-RunShellScript", "spellcheck": "false"}),
        help_text="Its name or ARN; it runs on each recovered instance of the wave.",
    )
    parameters = forms.CharField(
        required=False, label="Parameters",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "commands=systemctl restart app",
                                     "spellcheck": "false"}),
        help_text="One name=value per line (repeat a name for a list), or a JSON object. "
        "InstanceId is given by drsorch.",
    )
    url = forms.CharField(required=False, label="Webhook URL",
                          widget=forms.TextInput(attrs={"inputmode": "url", "placeholder": "https://"}),
                          help_text="Gets a signed POST of the execution; a 2xx answer is success.")
    secret = forms.CharField(
        required=False, label="Secret", strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Signs X-Drsorch-Signature. Never shown again; left blank, the current one is kept.",
    )
    instructions = forms.CharField(required=False, label="Instructions",
                                   widget=forms.Textarea(attrs={"rows": 3}),
                                   help_text="What the Operator must do and check before completing it.")
    ec2_status_checks = forms.BooleanField(required=False, initial=True, label="EC2 status checks pass")
    ssm_ping = forms.BooleanField(required=False, label="SSM agent answers (ping Online)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Changing the kind asks the server for the row with that kind's config fields.
        self.fields["kind"].widget.attrs.update({
            "hx-get": reverse("plans:plan_wave_action"), "hx-trigger": "change",
            "hx-include": "closest .action-row", "hx-target": "closest .action-row", "hx-swap": "outerHTML",
            "hx-vals": json.dumps({"row": self.prefix or ""}),
        })

    @property
    def number(self):
        """The row's 1-based number within its wave."""
        return int(self.prefix.rsplit("-", 1)[-1]) + 1 if self.prefix else 1

    def current_kind(self):
        value = self["kind"].value()
        return value if value in ACTION_CONFIG_FIELDS else None

    def config_fields(self):
        """The bound fields of the current kind's config, for the row."""
        return [self[name] for name in ACTION_CONFIG_FIELDS.get(self.current_kind(), [])]

    def clean_parameters(self):
        return parse_parameters(self.cleaned_data.get("parameters"))

    def action_spec(self) -> ActionSpec:
        """The ActionSpec this row stands for: the config of its kind only."""
        data = self.cleaned_data
        kind = data.get("kind", "")
        config = {}
        if kind in (ActionKind.SSM_AUTOMATION, ActionKind.SSM_COMMAND):
            config = {"document": (data.get("document") or "").strip()}
            if data.get("parameters"):
                config["parameters"] = data["parameters"]
        elif kind == ActionKind.WEBHOOK:
            config = {"url": (data.get("url") or "").strip()}
            if data.get("secret"):  # blank: keep the stored secret (wave_action_secrets_keep)
                config["secret"] = data["secret"]
        elif kind == ActionKind.MANUAL:
            config = {"instructions": data.get("instructions") or ""}
        elif kind == ActionKind.HEALTH_CHECK:
            config = {"ec2_status_checks": bool(data.get("ec2_status_checks")), "ssm_ping": bool(data.get("ssm_ping"))}
        return ActionSpec(
            name=(data.get("name") or "").strip(), kind=kind, when=data.get("when", ""), config=config,
            timeout_minutes=data.get("timeout_minutes"), on_failure=data.get("on_failure", ""),
        )

    def add_service_error(self, field, message):
        """A plan_save message about this action: "config.<key>" goes next to the key's field,
        "config" and anything unknown above the row's fields."""
        if field.startswith("config."):
            field = field.split(".", 1)[1]
        self.add_error(field if field in self.fields else None, message)


class BaseWaveActionFormSet(forms.BaseFormSet):
    """The actions of one wave (prefix "<wave prefix>-actions")."""

    def kept_forms(self):
        """The rows that stand for actions, in order: not removed, and typed in (a row added and
        left as it came is no action)."""
        return [
            form for index, form in enumerate(self.forms)
            if not self._should_delete_form(form) and (index < self.initial_form_count() or form.has_changed())
        ]

    def action_specs(self) -> list[ActionSpec]:
        return [form.action_spec() for form in self.kept_forms()]

    def typed_initial(self):
        """What was typed in each row that is not removed, as initial data of a rebuilt form."""
        rows = []
        for form in self.forms:
            if form.data.get(form.add_prefix("DELETE")):
                continue
            values = {name: field.widget.value_from_datadict(form.data, None, form.add_prefix(name))
                      for name, field in form.fields.items() if name not in ("DELETE", "secret")}
            rows.append(values)
        return rows


WaveActionFormSet = forms.formset_factory(WaveActionForm, formset=BaseWaveActionFormSet, extra=0, can_delete=True)


def action_initial(spec: ActionSpec) -> dict:
    """A row's initial data from a saved action (its secret is never put in the page)."""
    config = spec.config if isinstance(spec.config, dict) else {}
    return {
        "name": spec.name, "kind": spec.kind, "when": spec.when, "timeout_minutes": spec.timeout_minutes,
        "on_failure": spec.on_failure, "document": config.get("document", ""),
        "parameters": parameters_to_text(config.get("parameters")), "url": config.get("url", ""),
        "instructions": config.get("instructions", ""),
        "ec2_status_checks": config.get("ec2_status_checks", True), "ssm_ping": config.get("ssm_ping", False),
    }


def action_row_initial(data, prefix):
    """A row's values from a request (the htmx row editor), as initial data: what was typed,
    and, for the config fields of a kind the row did not show (the kind just changed), the
    fields' defaults."""
    form = WaveActionForm(prefix=prefix)
    shown = data.get(f"{prefix}-shown")
    kind = data.get(form.add_prefix("kind"))
    initial = {}
    for name, field in form.fields.items():
        if name in ("DELETE", "secret"):
            continue
        if name in CONFIG_FIELD_NAMES and shown != kind:
            continue
        initial[name] = field.widget.value_from_datadict(data, None, form.add_prefix(name))
    return initial


class BaseWaveFormSet(forms.BaseFormSet):
    """The waves of a plan. Builds WaveSpecs and maps plan_save's "waves.<i>.<field>" errors
    back to the form at fault."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._wave_labels = self._labels()

    def _labels(self):
        labels = []
        for index in range(self.total_form_count()):
            if self.is_bound:
                name = self.data.get(f"{self.prefix}-{index}-name", "")
            else:
                name = (self.initial[index] if self.initial and index < len(self.initial) else {}).get("name", "")
            labels.append(f"#{index + 1} {name}".strip())
        return labels

    def get_form_kwargs(self, index):
        return {**super().get_form_kwargs(index), "wave_labels": self._wave_labels}

    def is_valid(self):
        """The waves and, for every wave kept, its actions."""
        valid = super().is_valid()
        if not self.is_bound or self.management_form.errors:
            return valid
        actions_valid = [form.actions.is_valid() for form in self.kept_forms()]
        return valid and all(actions_valid)

    def error_summary(self):
        """The waves with errors (their own or their actions'), for the summary at the top of the
        form: each with its position (`index`, the anchor wave-<index>), `number`, `name` and its
        messages; an action's messages name it and link to its row (`links`)."""
        summary = []
        for form in self.forms if self.is_bound else ():
            messages = _labelled_messages(form)  # cleans the form, before asking whether it is deleted
            if self.can_delete and self._should_delete_form(form):
                continue
            links = []
            for action in form.actions.forms:
                if not action.is_bound or not action.errors or form.actions._should_delete_form(action):
                    continue
                name = (action.data.get(action.add_prefix("name")) or "").strip()
                title = f"Action {action.number}" + (f" “{name}”" if name else "")
                links.append({"anchor": action.prefix, "title": title, "messages": _labelled_messages(action)})
            if not messages and not links:
                continue
            summary.append({"index": form.position, "number": form.position + 1,
                            "name": (form.data.get(form.add_prefix("name")) or "").strip(), "messages": messages,
                            "actions": links})
        return summary

    def kept_forms(self):
        """Forms not marked for deletion, in order: their positions in the saved plan."""
        return [form for form in self.forms if not (self.can_delete and self._should_delete_form(form))]

    def wave_specs(self):
        kept = self.kept_forms()
        new_position = {form.position: position for position, form in enumerate(kept)}
        specs = []
        for form in kept:
            data = form.cleaned_data
            specs.append(WaveSpec(
                name=(data.get("name") or "").strip(),
                protection_groups=list(data.get("protection_groups") or []),
                # A dependency on a wave removed in the same edit is dropped with that wave.
                depends_on=[new_position[dep] for dep in data.get("depends_on") or [] if dep in new_position],
                approval_required=bool(data.get("approval_required")),
                wait_after_minutes=data.get("wait_after_minutes") or 0,
                timeout_minutes=data.get("timeout_minutes") or 0,
                optional_servers=list(data.get("optional_servers") or []),
                actions=form.actions.action_specs(),
            ))
        return specs

    def apply_service_errors(self, error):
        """Put "waves" messages into the non-form errors, "waves.<i>.<field>" next to the field,
        and "waves.<i>.actions.<a>.<field>" next to the field of the wave's action row."""
        kept = self.kept_forms()
        self.non_form_errors()
        for key, messages in error.message_dict.items():
            parts = key.split(".")
            if parts[0] != "waves":
                continue
            if len(parts) >= 5 and parts[2] == "actions":
                position, index = whole_number(parts[1]), whole_number(parts[3])
                rows = kept[position].actions.kept_forms() if position is not None and position < len(kept) else []
                if index is not None and index < len(rows):
                    for message in messages:
                        rows[index].add_service_error(".".join(parts[4:]), message)
                    continue
            position = whole_number(parts[1]) if len(parts) == 3 else None
            if position is not None and position < len(kept):
                form = kept[position]
                field = parts[2] if parts[2] in form.fields else None
                for message in messages:
                    form.add_error(field, message)
            else:
                self._non_form_errors.extend(messages)


WaveFormSet = forms.formset_factory(WaveForm, formset=BaseWaveFormSet, extra=0, can_delete=True, min_num=1,
                                    validate_min=True)


def wave_initial(specs):
    """Formset initial data from WaveSpecs (plan_wave_specs)."""
    return [
        {
            "name": spec.name,
            "protection_groups": [g.pk for g in spec.protection_groups],
            "depends_on": spec.dependencies(position),
            "approval_required": spec.approval_required,
            "wait_after_minutes": spec.wait_after_minutes,
            "timeout_minutes": spec.timeout_minutes,
            "optional_servers": [s.pk for s in spec.optional_servers],
            "actions": [action_initial(action) for action in spec.actions],
        }
        for position, spec in enumerate(specs)
    ]


def _labelled_messages(form):
    """A form's errors as "Label: message" lines, for the error summary."""
    messages = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else None
        label = label or (name.replace("_", " ").capitalize() if name != NON_FIELD_ERRORS else "")
        messages += [f"{label}: {error}" if label else error for error in errors]
    return messages


def new_wave_initial(position):
    return {"name": "", "depends_on": [position - 1] if position > 0 else [], "wait_after_minutes": 0,
            "timeout_minutes": 120}


def plan_service_errors(plan_form, formset, error):
    """Split a plan_save ValidationError between the plan form and the waves formset."""
    plan_fields = set(plan_form.fields)
    for key, messages in error.message_dict.items():
        if key.startswith("waves"):
            continue
        field = key if key in plan_fields and key != NON_FIELD_ERRORS else None
        for message in messages:
            plan_form.add_error(field, message)
    formset.apply_service_errors(error)
