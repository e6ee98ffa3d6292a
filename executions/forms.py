"""Forms of the execution pages."""

from django import forms


class StartForm(forms.Form):
    """Start a drill or a recovery; a recovery needs the plan's name typed again, and readiness
    warnings need `accept_risks` ticked (the service decides; errors are never accepted)."""

    mode = forms.ChoiceField(choices=[("DRILL", "Drill"), ("RECOVERY", "Recovery")])
    confirm_name = forms.CharField(required=False, label="Type the plan's name to confirm")
    auto_approve = forms.BooleanField(required=False, label="Approve gates automatically")
    accept_risks = forms.BooleanField(required=False, label="Accept these risks")
    idempotency_key = forms.CharField(required=False, max_length=255, widget=forms.HiddenInput)

    def __init__(self, *args, plan, **kwargs):
        self.plan = plan
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        if data.get("mode") == "RECOVERY" and (data.get("confirm_name") or "").strip() != self.plan.name:
            self.add_error("confirm_name", f"Type the plan's name, {self.plan.name}, exactly to start a recovery.")
        return data
