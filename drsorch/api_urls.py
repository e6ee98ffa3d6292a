"""The REST API under /api/v1/: the routes of each app's api package."""

from django.urls import include, path

urlpatterns = [
    path("", include("plans.api.urls")),
    path("", include("executions.api.urls")),
    path("", include("notifications.api.urls")),
]
