"""Routes of executions under /api/v1/, and the two routes of a plan that need executions
(readiness, execute), at the paths and names the plans router would give them."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("executions", views.ExecutionViewSet, basename="api-execution")

urlpatterns = [
    re_path(r"^plans/(?P<pk>[^/.]+)/readiness/$", views.PlanReadinessView.as_view(), name="api-plan-readiness"),
    re_path(r"^plans/(?P<pk>[^/.]+)/execute/$", views.PlanExecuteView.as_view(), name="api-plan-execute"),
    *router.urls,
]
