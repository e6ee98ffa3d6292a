"""The execution history filters of the API: the pages' ExecutionFilterSet, with times
compared in UTC.

ISO 8601 (and Python) accept UTC offsets up to ±23:59, PostgreSQL only up to ±15:59: a
`created_before=...+19:47` would reach the database as given and fail there. Converting to
UTC first keeps the same instant and answers 400 for instants outside years 1 to 9999.
"""

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from executions.filtersets import ExecutionFilterSet


class UTCIsoDateTimeField(IsoDateTimeField):
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


class ExecutionAPIFilterSet(ExecutionFilterSet):
    created_after = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UTCIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
