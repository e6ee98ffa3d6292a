"""Pages of notifications: channels with their deliveries, the channel form, and "Send test".

Views parse input with notifications.forms and call notifications.services; every permission
is checked here, on the server (Planner edits and tests channels; everyone may read).
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from drsorch.web import RoleRequiredMixin, filtered_page, paginate

from .filtersets import NotificationFilterSet
from .forms import NotificationChannelForm
from .models import NotificationChannel
from .selectors import channels_for_list, notifications_with_attempts
from .services import channel_delete, channel_save, channel_test

VIEW_PERMISSIONS = ("notifications.view_notificationchannel", "notifications.view_notification")
TEST_PERMISSION = "notifications.change_notificationchannel"
RECENT_DELIVERIES = 25


class NotificationListView(RoleRequiredMixin, View):
    """Channels, and the deliveries of every channel filtered by status, channel and event."""

    permission_required = VIEW_PERMISSIONS

    def get(self, request):
        filterset = NotificationFilterSet(request.GET or None, queryset=notifications_with_attempts())
        page, status = filtered_page(request, filterset)
        return render(request, "notifications/notification_list.html", {
            "channels": list(channels_for_list()), "filterset": filterset, "page": page,
        }, status=status)


def render_channel_detail(request, channel, *, attempt=None, status=200):
    deliveries = paginate(request, notifications_with_attempts().filter(channel=channel), RECENT_DELIVERIES)
    return render(request, "notifications/channel_detail.html", {
        "channel": channel, "plans": list(channel.plans.order_by("name")), "page": deliveries,
        "attempt": attempt, "can_test": request.user.has_perm(TEST_PERMISSION),
        "can_edit": request.user.has_perm("notifications.change_notificationchannel"),
        "can_delete": request.user.has_perm("notifications.delete_notificationchannel"),
    }, status=status)


class ChannelDetailView(RoleRequiredMixin, View):
    """One channel: where it sends, what, and its recent deliveries with every attempt."""

    permission_required = VIEW_PERMISSIONS

    def get(self, request, pk):
        return render_channel_detail(request, get_object_or_404(NotificationChannel, pk=pk))


class ChannelTestView(RoleRequiredMixin, View):
    """ "Send test": a test notification through the outbox, delivered now; shows the attempt."""

    permission_required = TEST_PERMISSION

    def post(self, request, pk):
        channel = get_object_or_404(NotificationChannel, pk=pk)
        try:
            attempt = channel_test(channel=channel)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(channel)
        return render_channel_detail(request, channel, attempt=attempt)


class ChannelFormView(RoleRequiredMixin, View):
    """Create or edit a channel through channel_save."""

    def get_permission_required(self):
        if "pk" in self.kwargs:
            return ["notifications.change_notificationchannel"]
        return ["notifications.add_notificationchannel"]

    def get_channel(self):
        return get_object_or_404(NotificationChannel, pk=self.kwargs["pk"]) if "pk" in self.kwargs else None

    def get(self, request, pk=None):
        channel = self.get_channel()
        form = NotificationChannelForm(initial=NotificationChannelForm.initial_for(channel) if channel else None)
        return self.render_form(form, channel)

    def post(self, request, pk=None):
        channel = self.get_channel()
        form = NotificationChannelForm(request.POST)
        if form.is_valid():
            try:
                saved = channel_save(spec=form.spec(), channel=channel, secret=form.new_secret())
            except ValidationError as exc:
                for key, errors in exc.message_dict.items():
                    for error in errors:
                        form.add_error(key if key in form.fields else None, error)
            else:
                messages.success(request, f"Saved notification channel '{saved.name}'.")
                return redirect(saved)
        return self.render_form(form, channel, status=400)

    def render_form(self, form, channel, status=200):
        return render(self.request, "notifications/channel_form.html",
                      {"form": form, "channel": channel}, status=status)


class ChannelDeleteView(RoleRequiredMixin, View):
    """Confirm, then delete a channel (and its deliveries) through channel_delete."""

    permission_required = "notifications.delete_notificationchannel"

    def get(self, request, pk):
        channel = get_object_or_404(NotificationChannel, pk=pk)
        return render(request, "confirm_delete.html", {"object": channel, "kind": "notification channel",
                                                       "refusal": None, "cancel_url": channel.get_absolute_url()})

    def post(self, request, pk):
        channel = get_object_or_404(NotificationChannel, pk=pk)
        channel_delete(channel=channel)
        messages.success(request, f"Deleted notification channel '{channel.name}'.")
        return redirect("notifications:list")
