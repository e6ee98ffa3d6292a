"""django-filter filtersets of executions, shared by the history page, the execution page's
event log and the API.

Every filter refuses a bad value naming it (drsorch.filters): the API answers 400 with the
message under the parameter's name, the pages show it above an empty list.
"""

from datetime import UTC

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, Subquery
from django_filters.fields import IsoDateTimeField

from drsorch.filters import (
    DayFilter,
    IdChoiceFilter,
    RangeCheckForm,
    WholeNumberFilter,
    YesNoFilter,
    choice_messages,
    refused,
)
from plans.models import RecoveryPlan

from .choices import EventKind, ExecutionMode, ExecutionStatus
from .engine.rows import ENGINE_ACTOR
from .models import Execution, ExecutionEvent

INSTANT_EXAMPLE = "2026-11-28T04:00:00Z"


class UTCIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant converted to UTC: ISO allows offsets up to ±23:59, PostgreSQL only
    up to ±15:59, so `...+19:47` must not reach the database as given."""

    def to_python(self, value):
        try:
            value = super().to_python(value)
        except ValidationError:
            raise refused(
                "%(value)s is not an ISO-8601 date and time: use e.g. %(example)s.", value, example=INSTANT_EXAMPLE
            )
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Enter a date and time between the years 1 and 9999 in UTC.", code="invalid")


class UTCIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField


class ExecutionFilterForm(RangeCheckForm):
    ranges = (("date_after", "date_before"), ("created_after", "created_before"))


class ExecutionFilterSet(django_filters.FilterSet):
    """Execution history: by plan, mode, status and start date (a day range for people,
    exact instants for scripts)."""

    plan = IdChoiceFilter(queryset=RecoveryPlan.objects.all())
    mode = django_filters.ChoiceFilter(
        choices=ExecutionMode.choices,
        empty_label="Any",
        error_messages=choice_messages("a mode", ExecutionMode.choices),
    )
    status = django_filters.MultipleChoiceFilter(
        choices=ExecutionStatus.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages=choice_messages("a status", ExecutionStatus.choices),
    )
    date_after = DayFilter(field_name="created_at", lookup_expr="gte", label="Started from")
    date_before = DayFilter(field_name="created_at", lookup_expr="lte", label="Started to")
    created_after = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Execution
        form = ExecutionFilterForm
        fields = ["plan", "mode", "status", "date_after", "date_before", "created_after", "created_before"]


class ExecutionHistoryFilterSet(ExecutionFilterSet):
    """The history page's form: the day range only, so people see one set of date fields."""

    class Meta(ExecutionFilterSet.Meta):
        fields = ["plan", "mode", "status", "date_after", "date_before"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("created_after", "created_before"):
            self.filters.pop(name)


def is_person_event(event: ExecutionEvent) -> bool:
    """An action someone took (a user, or "cli" for a command), not one of the engine's: the
    rule of by_people, for an event in hand."""
    return event.kind == EventKind.ACTION and event.actor_name != ENGINE_ACTOR


def by_people(queryset, value: bool):
    """Events of people (`value` True: the actions someone took, from a page, the API or a
    command) or all the others (False: the engine's, DRS's, status changes)."""
    people = Q(kind=EventKind.ACTION) & ~Q(actor_name=ENGINE_ACTOR)
    return queryset.filter(people if value else ~people)


class ExecutionEventFilterSet(django_filters.FilterSet):
    """An execution's audit log: by kind, wave, and the people view (what people did)."""

    kind = django_filters.MultipleChoiceFilter(
        choices=EventKind.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages=choice_messages("an event kind", EventKind.choices),
    )
    wave_index = WholeNumberFilter(maximum=32767, label="Wave index (from 0)")
    people = YesNoFilter(method="filter_people", label="People only")

    class Meta:
        model = ExecutionEvent
        fields = ["kind", "wave_index", "people"]

    def filter_people(self, queryset, name, value):
        return queryset if value is None else by_people(queryset, value)


class EventLogFilterSet(ExecutionEventFilterSet):
    """The event log of the execution page: newest first, by kind and the people view, a page
    at a time from `before` (the id of the last event of the previous page: a page stays the
    same while new events arrive above it)."""

    before = WholeNumberFilter(method="filter_before", label="Older than event")

    class Meta(ExecutionEventFilterSet.Meta):
        fields = ["kind", "people", "before"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters.pop("wave_index")

    def filter_before(self, queryset, name, value):
        # The log is ordered by (created_at, pk), newest first: what comes after that event.
        when = Subquery(ExecutionEvent.objects.filter(pk=value).values("created_at")[:1])
        return queryset.filter(Q(created_at__lt=when) | Q(created_at=when, pk__lt=value))
