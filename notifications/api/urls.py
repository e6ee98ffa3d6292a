"""Routes of notification channels and deliveries under /api/v1/."""

from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("notification-channels", views.NotificationChannelViewSet, basename="api-notification-channel")
router.register("notifications", views.NotificationViewSet, basename="api-notification")

urlpatterns = router.urls
