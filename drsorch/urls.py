"""URLs of drsorch: pages, the admin, login, the REST API under /api/v1/, /metrics and /healthz."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from drsorch.monitoring import healthz_view, metrics_view
from executions import urls as executions_urls
from plans import urls as plans_urls

urlpatterns = [
    path("metrics", metrics_view, name="metrics"),
    path("healthz", healthz_view, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/profile/", include("drsorch.profile_urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("drsorch.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("", include("executions.urls")),
    path("", include("notifications.urls")),
    # The "plans" namespace: plans' pages, and the plan page and start form that executions composes.
    path("", include((plans_urls.urlpatterns + executions_urls.plan_urlpatterns, plans_urls.app_name))),
]

admin.site.site_header = "drsorch administration"
admin.site.site_title = "drsorch"
