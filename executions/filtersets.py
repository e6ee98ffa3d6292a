"""django-filter filtersets of executions, shared by the history page and the API."""

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from plans.models import RecoveryPlan

from .choices import EventKind, ExecutionMode, ExecutionStatus
from .models import Execution, ExecutionEvent


class UTCIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant converted to UTC: ISO allows offsets up to ±23:59, PostgreSQL only
    up to ±15:59, so `...+19:47` must not reach the database as given."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Enter a date and time between the years 1 and 9999 in UTC.", code="invalid")


class UTCIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField


class ExecutionFilterSet(django_filters.FilterSet):
    """Execution history: by plan, mode, status and start date (a day range for people,
    exact instants for scripts)."""

    plan = django_filters.ModelChoiceFilter(queryset=RecoveryPlan.objects.all())
    mode = django_filters.ChoiceFilter(choices=ExecutionMode.choices)
    status = django_filters.MultipleChoiceFilter(choices=ExecutionStatus.choices)
    date = django_filters.DateFromToRangeFilter(field_name="created_at", label="Started between")
    created_after = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Execution
        fields = ["plan", "mode", "status", "date", "created_after", "created_before"]


class ExecutionHistoryFilterSet(ExecutionFilterSet):
    """The history page's form: the day range only, so people see one set of date fields."""

    class Meta(ExecutionFilterSet.Meta):
        fields = ["plan", "mode", "status", "date"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("created_after", "created_before"):
            self.filters.pop(name)


class ExecutionEventFilterSet(django_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=EventKind.choices)
    wave_index = django_filters.NumberFilter()

    class Meta:
        model = ExecutionEvent
        fields = ["kind", "wave_index"]
