"""URLs of drsorch: pages, the admin, login, and the REST API under /api/v1/."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
]

admin.site.site_header = "drsorch administration"
admin.site.site_title = "drsorch"
