"""REST endpoints of notification channels (Planner writes, Viewer reads) and of the outbox's
deliveries (read only)."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from drsorch.api import ERROR_RESPONSES, FIELD_ERRORS_RESPONSE, NOT_FOUND_RESPONSE, Conflict, RoleViewSetMixin
from plans.api.views import crud_schema

from ..filtersets import NotificationFilterSet
from ..models import NotificationChannel
from ..selectors import notifications_with_attempts
from ..services import channel_delete, channel_test
from .serializers import ChannelTestSerializer, NotificationChannelSerializer, NotificationSerializer


@crud_schema("notification channel", NotificationChannelSerializer, tag="notifications",
             delete_conflict="Deletes the channel with its deliveries.")
class NotificationChannelViewSet(RoleViewSetMixin, viewsets.ModelViewSet):
    """Where notifications go: webhooks (signed JSON, Slack, Teams), email addresses and SNS topics."""

    queryset = NotificationChannel.objects.prefetch_related("plans").order_by("name")
    serializer_class = NotificationChannelSerializer
    filterset_class = None
    action_permissions = {"test": ["notifications.change_notificationchannel"]}

    def perform_destroy(self, channel):
        channel_delete(channel=channel)

    @extend_schema(
        summary="Send a test notification",
        description="Writes a test notification to the outbox and delivers it at once; answers the attempt "
        "(`ok` false with the error when it failed). A failed test is not retried.",
        request=None,
        responses={200: ChannelTestSerializer, **ERROR_RESPONSES, **NOT_FOUND_RESPONSE},
    )
    @action(detail=True, methods=["post"], filterset_class=None, pagination_class=None)
    def test(self, request, pk=None):
        channel = self.get_object()
        try:
            attempt = channel_test(channel=channel)
        except DjangoValidationError as exc:
            raise Conflict(" ".join(exc.messages))
        notification = notifications_with_attempts().get(pk=attempt.notification_id)
        return Response(ChannelTestSerializer({"ok": attempt.ok, "attempt": attempt,
                                               "notification": notification}).data)


@extend_schema(tags=["notifications"])
@extend_schema_view(
    list=extend_schema(
        summary="List deliveries",
        description="The outbox, newest first, each with every attempt; filter by status, channel and event.",
        responses={200: NotificationSerializer(many=True), 400: FIELD_ERRORS_RESPONSE, **ERROR_RESPONSES},
    ),
    retrieve=extend_schema(summary="Read a delivery",
                           responses={200: NotificationSerializer, **ERROR_RESPONSES, **NOT_FOUND_RESPONSE}),
)
class NotificationViewSet(RoleViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                          viewsets.GenericViewSet):
    """Deliveries of notifications (the outbox) and their attempts."""

    serializer_class = NotificationSerializer
    filterset_class = NotificationFilterSet
    action_permissions = {
        action: ["notifications.view_notification", "notifications.view_deliveryattempt"]
        for action in ("list", "retrieve")
    }

    def get_queryset(self):
        return notifications_with_attempts()
