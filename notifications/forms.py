"""Forms of the notification pages and the admin. They parse input; notifications.services
validates it fully (the model's rules) and saves it."""

from django import forms
from django.core.exceptions import ValidationError

from executions.notable import SUBSCRIBABLE_EVENTS
from plans.models import RecoveryPlan, Target

from .choices import ChannelKind, WebhookFormat
from .models import NotificationChannel
from .services import ChannelSpec

EVENT_LABELS = {
    "execution.started": "An execution started",
    "execution.waiting_approval": "An execution waits for approval",
    "execution.finished": "An execution ended (with its RTO verdict)",
    "readiness.degraded": "A plan is no longer ready (and again when it is)",
    "drill.overdue": "A plan's drill is overdue (once a day)",
    "drill_instances.expiring": "Drill instances are about to be cleaned up",
}
EVENT_CHOICES = [(event, f"{event}: {EVENT_LABELS.get(event, '')}") for event in SUBSCRIBABLE_EVENTS]
SECRET_HELP = ("Signs each webhook body: X-Drsorch-Signature: sha256=<HMAC-SHA256>. Never shown again; "
               "leave blank to keep the current secret.")


class ChannelFieldsMixin(forms.Form):
    events = forms.MultipleChoiceField(choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple,
                                       error_messages={"required": "Choose at least one event."})
    plans = forms.ModelMultipleChoiceField(queryset=RecoveryPlan.objects.order_by("name"), required=False,
                                           widget=forms.CheckboxSelectMultiple,
                                           help_text="Only these plans' events; none ticked: every plan.")
    secret = forms.CharField(max_length=200, required=False, strip=False, help_text=SECRET_HELP,
                             widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}))
    clear_secret = forms.BooleanField(required=False, label="Remove the secret (send unsigned)")


class NotificationChannelForm(ChannelFieldsMixin, forms.Form):
    """A channel on its page: the fields of its kind, its events and plans."""

    name = forms.CharField(max_length=100)
    kind = forms.ChoiceField(choices=ChannelKind.choices)
    url = forms.CharField(label="URL", max_length=2000, required=False,
                          help_text="Webhooks: http(s) URL; private and loopback addresses are refused.")
    webhook_format = forms.ChoiceField(choices=WebhookFormat.choices, initial=WebhookFormat.JSON, label="Format")
    address = forms.CharField(label="Email address", max_length=254, required=False)
    topic_arn = forms.CharField(label="Topic ARN", max_length=400, required=False)
    target = forms.ModelChoiceField(queryset=Target.objects.order_by("name"), required=False,
                                    help_text="SNS: whose credentials publish to the topic.")
    enabled = forms.BooleanField(required=False, initial=True)

    field_order = ["name", "kind", "url", "webhook_format", "secret", "clear_secret", "address", "topic_arn",
                   "target", "events", "plans", "enabled"]

    def clean(self):
        """Check the channel as channel_save will (the URL's address, the kind's destination),
        so every field at fault is named at once, even beside other errors."""
        data = super().clean()
        if data.get("kind"):
            probe = NotificationChannel(
                name="probe", kind=data["kind"], url=data.get("url") or "", address=data.get("address") or "",
                topic_arn=data.get("topic_arn") or "", target=data.get("target"),
                events=list(data.get("events") or ["execution.started"]),
                webhook_format=data.get("webhook_format") or WebhookFormat.JSON,
            )
            try:
                probe.full_clean(validate_unique=False, validate_constraints=False)
            except ValidationError as exc:
                for field, messages in exc.message_dict.items():
                    if field in self.fields and field not in self.errors:
                        for message in messages:
                            self.add_error(field, message)
        return data

    @classmethod
    def initial_for(cls, channel: NotificationChannel) -> dict:
        return {
            "name": channel.name, "kind": channel.kind, "url": channel.url, "webhook_format": channel.webhook_format,
            "address": channel.address, "topic_arn": channel.topic_arn, "target": channel.target_id,
            "events": list(channel.events), "plans": list(channel.plans.values_list("pk", flat=True)),
            "enabled": channel.enabled,
        }

    def spec(self) -> ChannelSpec:
        data = self.cleaned_data
        return ChannelSpec(
            name=data["name"], kind=data["kind"], events=list(data["events"]), url=data["url"],
            webhook_format=data["webhook_format"], address=data["address"], topic_arn=data["topic_arn"],
            target=data["target"], plans=tuple(data["plans"]), enabled=data["enabled"],
        )

    def new_secret(self) -> str | None:
        """The secret to save: None keeps the current one."""
        if self.cleaned_data.get("clear_secret"):
            return ""
        return self.cleaned_data.get("secret") or None


class NotificationChannelAdminForm(ChannelFieldsMixin, forms.ModelForm):
    """The admin's channel form (saved through services.channel_save by the admin)."""

    class Meta:
        model = NotificationChannel
        fields = ["name", "kind", "url", "webhook_format", "address", "topic_arn", "target", "events", "plans",
                  "enabled"]

    def new_secret(self) -> str | None:
        if self.cleaned_data.get("clear_secret"):
            return ""
        return self.cleaned_data.get("secret") or None
