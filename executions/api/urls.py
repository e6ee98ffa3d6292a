"""Routes of executions under /api/v1/."""

from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("executions", views.ExecutionViewSet, basename="api-execution")

urlpatterns = router.urls
