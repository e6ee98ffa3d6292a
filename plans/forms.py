"""Forms of the plans pages. They only parse and check input; plans.services saves it."""

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from drsorch.web import whole_number, whole_numbers

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

    def error_summary(self):
        """The waves with errors, for the summary at the top of the form: each with its
        position (`index`, the anchor wave-<index>), `number`, `name` and its messages."""
        summary = []
        for form in self.forms:
            if not form.errors or (self.can_delete and self._should_delete_form(form)):
                continue
            messages = []
            for name, errors in form.errors.items():
                label = form.fields[name].label if name in form.fields else None
                label = label or (name.replace("_", " ").capitalize() if name != NON_FIELD_ERRORS else "")
                messages += [f"{label}: {error}" if label else error for error in errors]
            summary.append({"index": form.position, "number": form.position + 1,
                            "name": (form.data.get(form.add_prefix("name")) or "").strip(), "messages": messages})
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
            ))
        return specs

    def apply_service_errors(self, error):
        """Put "waves" messages into the non-form errors and "waves.<i>.<field>" next to the field."""
        kept = self.kept_forms()
        self.non_form_errors()
        for key, messages in error.message_dict.items():
            parts = key.split(".")
            if parts[0] != "waves":
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
        }
        for position, spec in enumerate(specs)
    ]


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
