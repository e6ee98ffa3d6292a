"""Routes of targets, source servers, protection groups and plans under /api/v1/."""

from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("targets", views.TargetViewSet, basename="api-target")
router.register("source-servers", views.SourceServerViewSet, basename="api-source-server")
router.register("protection-groups", views.ProtectionGroupViewSet, basename="api-protection-group")
router.register("plans", views.RecoveryPlanViewSet, basename="api-plan")

urlpatterns = router.urls
