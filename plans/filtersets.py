"""django-filter filtersets of the plans app, shared by the pages and the API.

Every filter refuses a bad value naming it (drsorch.filters): the API answers 400 with the
message under the parameter's name, the pages show it above an empty list.
"""

import django_filters
from django import forms
from django.db.models import Q

from drsorch.filters import IdChoiceFilter, WholeNumberFilter, YesNoFilter, choice_messages, refused

from .choices import ReplicationState, TargetKind
from .models import (
    ProtectionGroup,
    RecoveryPlan,
    SourceServer,
    Target,
    account_id_validator,
    region_validator,
    servers_matching_tags,
)


def parse_tag(value):
    """`Key=Value` (or just `Key`, meaning any value) into (key, value-or-None)."""
    key, sep, tag_value = value.partition("=")
    if not key.strip():
        raise refused("%(value)s is not a tag: write Key=Value (e.g. Tier=db), or Key for any value.", value)
    return key.strip(), (tag_value.strip() if sep else None)


class TagField(forms.CharField):
    """A tag to match, `Key=Value` or `Key`: cleaned into (key, value-or-None)."""

    def clean(self, value):
        text = super().clean(value)
        return parse_tag(text) if text else None


class TagFilter(django_filters.CharFilter):
    """Servers carrying a tag (TagField): with that value, or any value for a bare key."""

    field_class = TagField

    def filter(self, qs, value):
        if not value:
            return qs
        key, tag_value = value
        if tag_value is None:
            return qs.filter(tags__has_key=key)
        return servers_matching_tags(qs, {key: tag_value})


class SourceServerFilterSet(django_filters.FilterSet):
    """Inventory filters: target, replication state, lag, tag, search."""

    q = django_filters.CharFilter(method="filter_q", label="Search")
    target = IdChoiceFilter(queryset=Target.objects.all())
    replication_state = django_filters.MultipleChoiceFilter(
        choices=ReplicationState.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages=choice_messages("a replication state", ReplicationState.choices),
    )
    lag_above_seconds = WholeNumberFilter(
        field_name="lag_seconds", lookup_expr="gt", label="Lag above (seconds)", maximum=2**31 - 1
    )
    tag = TagFilter(label="Tag (Key=Value)")
    in_drs = YesNoFilter(label="Known to DRS")

    class Meta:
        model = SourceServer
        fields = ["q", "target", "replication_state", "lag_above_seconds", "tag", "in_drs"]

    def filter_q(self, queryset, name, value):
        return queryset.filter(Q(hostname__icontains=value) | Q(drs_id__icontains=value))


class ProtectionGroupFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Search")
    target = IdChoiceFilter(queryset=Target.objects.all())

    class Meta:
        model = ProtectionGroup
        fields = ["q", "target"]


class RecoveryPlanFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Search")

    class Meta:
        model = RecoveryPlan
        fields = ["q"]


class TargetFilterSet(django_filters.FilterSet):
    """Targets by kind, region and account: a region or account ID that no target could have
    is refused with the rule it breaks, not answered with an empty list."""

    kind = django_filters.ChoiceFilter(
        choices=TargetKind.choices,
        empty_label="Any",
        error_messages=choice_messages("a target kind", TargetKind.choices),
    )
    region = django_filters.CharFilter(validators=[region_validator])
    account_id = django_filters.CharFilter(validators=[account_id_validator], label="Account ID")

    class Meta:
        model = Target
        fields = ["kind", "region", "account_id"]
