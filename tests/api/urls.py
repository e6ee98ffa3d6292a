"""The site's URLs with the profile page at /accounts/profile/, as drsorch/urls.py routes it."""

from django.urls import include, path

from drsorch.urls import urlpatterns as site_urlpatterns

urlpatterns = [path("accounts/profile/", include("drsorch.profile_urls")), *site_urlpatterns]
