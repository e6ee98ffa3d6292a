"""URLs of drsorch: pages, the admin, login, and the REST API under /api/v1/."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/profile/", include("drsorch.profile_urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("drsorch.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("", include("executions.urls")),
    path("", include("plans.urls")),
]

admin.site.site_header = "drsorch administration"
admin.site.site_title = "drsorch"
