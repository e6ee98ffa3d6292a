"""Forms of the execution pages."""

from datetime import UTC

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .services import COMMENT_MAX_LENGTH, POINT_IN_TIME_EXAMPLE, comment_check, point_in_time_check


class StartForm(forms.Form):
    """Start a drill or a recovery; a recovery needs the plan's name typed again, and readiness
    warnings need `accept_risks` ticked (the service decides; errors are never accepted)."""

    mode = forms.ChoiceField(choices=[("DRILL", "Drill"), ("RECOVERY", "Recovery")])
    confirm_name = forms.CharField(required=False, label="Type the plan's name to confirm")
    auto_approve = forms.BooleanField(required=False, label="Approve gates automatically")
    accept_risks = forms.BooleanField(required=False, label="Accept these risks")
    point_in_time = forms.CharField(required=False, label="Point in time (UTC)")
    comment = forms.CharField(
        required=False,
        label="Comment (optional)",
        max_length=COMMENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why you start it; shown on the execution, its report and audit log.",
    )
    idempotency_key = forms.CharField(required=False, max_length=255, widget=forms.HiddenInput)

    def __init__(self, *args, plan, **kwargs):
        self.plan = plan
        super().__init__(*args, **kwargs)

    def clean_point_in_time(self):
        """The point in time, or None: the page's datetime-local field has no timezone, and
        the page says UTC, so a time without one is read as UTC."""
        text = (self.cleaned_data.get("point_in_time") or "").strip()
        if not text:
            return None
        try:
            parsed = parse_datetime(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise ValidationError(f"Not a date and time; use e.g. {POINT_IN_TIME_EXAMPLE}.")
        if timezone.is_naive(parsed):
            parsed = parsed.replace(tzinfo=UTC)
        try:
            return point_in_time_check(value=parsed)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["point_in_time"]) from exc

    def clean(self):
        data = super().clean()
        if data.get("mode") == "RECOVERY" and (data.get("confirm_name") or "").strip() != self.plan.name:
            self.add_error("confirm_name", f"Type the plan's name, {self.plan.name}, exactly to start a recovery.")
        return data


class ActionCommentForm(forms.Form):
    """The confirmation of an approval or a cancellation, with its comment (required for a
    RECOVERY: services.comment_check, so the page says what the API and the command say)."""

    comment = forms.CharField(
        required=False, max_length=COMMENT_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 3}), label="Comment"
    )
    wave_index = forms.IntegerField(required=False, min_value=0, max_value=32767, widget=forms.HiddenInput)

    def __init__(self, *args, required: bool, why: str, **kwargs):
        self.comment_required, self.why = required, why
        super().__init__(*args, **kwargs)
        if required:
            self.fields["comment"].label = "Comment (required)"
            self.fields["comment"].widget.attrs["required"] = True

    def clean_comment(self):
        try:
            return comment_check(value=self.cleaned_data.get("comment"), required=self.comment_required, why=self.why)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["comment"]) from exc
