"""django-filter filtersets of executions, shared by the history page and the API."""

import django_filters

from plans.models import RecoveryPlan

from .choices import EventKind, ExecutionMode, ExecutionStatus
from .models import Execution, ExecutionEvent


class ExecutionFilterSet(django_filters.FilterSet):
    """Execution history: by plan, mode, status and start date."""

    plan = django_filters.ModelChoiceFilter(queryset=RecoveryPlan.objects.all())
    mode = django_filters.ChoiceFilter(choices=ExecutionMode.choices)
    status = django_filters.MultipleChoiceFilter(choices=ExecutionStatus.choices)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    date = django_filters.DateFromToRangeFilter(field_name="created_at", label="Started between")

    class Meta:
        model = Execution
        fields = ["plan", "mode", "status", "created_after", "created_before", "date"]


class ExecutionEventFilterSet(django_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=EventKind.choices)
    wave_index = django_filters.NumberFilter()

    class Meta:
        model = ExecutionEvent
        fields = ["kind", "wave_index"]
