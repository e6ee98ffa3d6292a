"""Pages of notification channels and deliveries."""

from django.urls import path

from . import views

app_name = "notifications"
urlpatterns = [
    path("notifications/", views.NotificationListView.as_view(), name="list"),
    path("notifications/channels/new/", views.ChannelFormView.as_view(), name="channel_create"),
    path("notifications/channels/<int:pk>/", views.ChannelDetailView.as_view(), name="channel_detail"),
    path("notifications/channels/<int:pk>/edit/", views.ChannelFormView.as_view(), name="channel_edit"),
    path("notifications/channels/<int:pk>/delete/", views.ChannelDeleteView.as_view(), name="channel_delete"),
    path("notifications/channels/<int:pk>/test/", views.ChannelTestView.as_view(), name="channel_test"),
]
