"""Routes of executions under /api/v1/, and the routes of a plan that need executions
(readiness, execute, history, scheduled runs), at the paths and names the plans router would give them."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("executions", views.ExecutionViewSet, basename="api-execution")

urlpatterns = [
    re_path(r"^plans/(?P<pk>[^/.]+)/readiness/$", views.PlanReadinessView.as_view(), name="api-plan-readiness"),
    re_path(r"^plans/(?P<pk>[^/.]+)/execute/$", views.PlanExecuteView.as_view(), name="api-plan-execute"),
    re_path(r"^plans/(?P<pk>[^/.]+)/history/$", views.PlanHistoryView.as_view(), name="api-plan-history"),
    re_path(
        r"^plans/(?P<pk>[^/.]+)/scheduled-runs/$",
        views.PlanScheduledRunsView.as_view(),
        name="api-plan-scheduled-runs",
    ),
    *router.urls,
]
