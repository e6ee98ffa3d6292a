"""Filters of the deliveries list, shared by the page and the API; a bad value is refused
naming it (drsorch.filters)."""

import django_filters

from drsorch.filters import IdChoiceFilter, choice_messages
from executions.notable import READINESS_RECOVERED, SUBSCRIBABLE_EVENTS

from .choices import TEST_EVENT, NotificationStatus
from .models import Notification, NotificationChannel

EVENT_FILTER_CHOICES = [(event, event) for event in (*SUBSCRIBABLE_EVENTS, READINESS_RECOVERED, TEST_EVENT)]


class NotificationFilterSet(django_filters.FilterSet):
    """Deliveries by status, channel and event."""

    status = django_filters.ChoiceFilter(
        choices=NotificationStatus.choices, empty_label="Any",
        error_messages=choice_messages("a delivery status", NotificationStatus.choices),
    )
    channel = IdChoiceFilter(queryset=NotificationChannel.objects.all())
    event = django_filters.ChoiceFilter(
        choices=EVENT_FILTER_CHOICES, empty_label="Any",
        error_messages=choice_messages("an event", EVENT_FILTER_CHOICES),
    )

    class Meta:
        model = Notification
        fields = ["status", "channel", "event"]
