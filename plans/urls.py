"""Pages of the inventory, protection groups and plans.

The plan list, the plan's own page and its start form are in executions (plan_urlpatterns of
executions/urls.py: they show executions); drsorch/urls.py puts them in this "plans" namespace too.
"""

from django.urls import path

from . import views

app_name = "plans"
urlpatterns = [
    path("servers/", views.ServerListView.as_view(), name="server_list"),
    path("servers/sync/", views.ServerSyncView.as_view(), name="server_sync"),
    path("groups/", views.GroupListView.as_view(), name="group_list"),
    path("groups/new/", views.GroupFormView.as_view(), name="group_create"),
    path("groups/server-picker/", views.ServerPickerView.as_view(), name="group_server_picker"),
    path("groups/tag-preview/", views.TagPreviewView.as_view(), name="group_tag_preview"),
    path("groups/<int:pk>/", views.GroupDetailView.as_view(), name="group_detail"),
    path("groups/<int:pk>/edit/", views.GroupFormView.as_view(), name="group_edit"),
    path("groups/<int:pk>/delete/", views.GroupDeleteView.as_view(), name="group_delete"),
    path("targets/", views.TargetListView.as_view(), name="target_list"),
    path("targets/<int:pk>/", views.TargetDetailView.as_view(), name="target_detail"),
    path("targets/<int:pk>/test/", views.TargetTestConnectionView.as_view(), name="target_test"),
    path("plans/new/", views.PlanFormView.as_view(), name="plan_create"),
    path("plans/<int:pk>/edit/", views.PlanFormView.as_view(), name="plan_edit"),
    path("plans/wave-optional-servers/", views.WaveOptionalServersView.as_view(), name="plan_wave_optional_servers"),
    path("plans/wave-action/", views.WaveActionRowView.as_view(), name="plan_wave_action"),
    path("plans/<int:pk>/delete/", views.PlanDeleteView.as_view(), name="plan_delete"),
]
