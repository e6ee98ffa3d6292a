"""django-filter filtersets of the plans app, shared by the pages and the API."""

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Q

from .choices import ReplicationState
from .models import ProtectionGroup, RecoveryPlan, SourceServer, Target, servers_matching_tags


def parse_tag(value):
    """`Key=Value` (or just `Key`, meaning any value) into (key, value-or-None)."""
    key, sep, tag_value = value.partition("=")
    if not key.strip():
        raise ValidationError("Write a tag as Key=Value, e.g. Tier=db.")
    return key.strip(), (tag_value.strip() if sep else None)


class SourceServerFilterSet(django_filters.FilterSet):
    """Inventory filters: target, replication state, lag, tag, search."""

    q = django_filters.CharFilter(method="filter_q", label="Search")
    target = django_filters.ModelChoiceFilter(queryset=Target.objects.all())
    replication_state = django_filters.MultipleChoiceFilter(choices=ReplicationState.choices)
    lag_above_seconds = django_filters.NumberFilter(field_name="lag_seconds", lookup_expr="gt",
                                                    label="Lag above (seconds)")
    tag = django_filters.CharFilter(method="filter_tag", label="Tag (Key=Value)")
    in_drs = django_filters.BooleanFilter(label="Known to DRS")

    class Meta:
        model = SourceServer
        fields = ["q", "target", "replication_state", "lag_above_seconds", "tag", "in_drs"]

    def filter_q(self, queryset, name, value):
        return queryset.filter(Q(hostname__icontains=value) | Q(drs_id__icontains=value))

    def filter_tag(self, queryset, name, value):
        try:
            key, tag_value = parse_tag(value)
        except ValidationError:
            return queryset.none()
        if tag_value is None:
            return queryset.filter(tags__has_key=key)
        return servers_matching_tags(queryset, {key: tag_value})


class ProtectionGroupFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Search")
    target = django_filters.ModelChoiceFilter(queryset=Target.objects.all())

    class Meta:
        model = ProtectionGroup
        fields = ["q", "target"]


class RecoveryPlanFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Search")

    class Meta:
        model = RecoveryPlan
        fields = ["q"]


class TargetFilterSet(django_filters.FilterSet):
    class Meta:
        model = Target
        fields = ["kind", "region", "account_id"]
