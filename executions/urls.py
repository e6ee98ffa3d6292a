"""Pages of executions: the dashboard, history, live detail, actions and evidence report."""

from django.urls import path

from . import views

app_name = "executions"
urlpatterns = [
    path("", views.DashboardView.as_view(), name="dashboard"),
    path("dashboard/running/", views.DashboardRunningView.as_view(), name="dashboard_running"),
    path("executions/", views.ExecutionListView.as_view(), name="list"),
    path("executions/<uuid:pk>/", views.ExecutionDetailView.as_view(), name="detail"),
    path("executions/<uuid:pk>/live/", views.ExecutionLiveView.as_view(), name="live"),
    path("executions/<uuid:pk>/report/", views.ExecutionReportView.as_view(), name="report"),
    path("executions/<uuid:pk>/report.pdf", views.ExecutionReportPdfView.as_view(), name="report-pdf"),
    path("executions/<uuid:pk>/report.csv", views.ExecutionReportCsvView.as_view(), name="report-csv"),
    path("executions/<uuid:pk>/approve/", views.ExecutionActionView.as_view(action="approve"), name="approve"),
    path("executions/<uuid:pk>/cancel/", views.ExecutionActionView.as_view(action="cancel"), name="cancel"),
    path("executions/<uuid:pk>/retry/", views.ExecutionActionView.as_view(action="retry"), name="retry"),
    path(
        "executions/<uuid:pk>/actions/<str:name>/complete/",
        views.ExecutionActionCompleteView.as_view(),
        name="action_complete",
    ),
    path("executions/<uuid:pk>/cleanup/", views.ExecutionActionView.as_view(action="cleanup"), name="cleanup"),
]

# The plan list, a plan's own page and its start form, composed here from both apps; drsorch/urls.py serves
# them in the "plans" namespace, so they keep their names (plans:plan_list, plans:plan_detail...).
plan_urlpatterns = [
    path("plans/", views.PlanListView.as_view(), name="plan_list"),
    path("plans/<int:pk>/", views.PlanDetailView.as_view(), name="plan_detail"),
    path("plans/<int:pk>/start/", views.PlanStartView.as_view(), name="plan_start"),
    path("plans/<int:pk>/readiness/refresh/", views.PlanReadinessRefreshView.as_view(), name="plan_readiness_refresh"),
]
