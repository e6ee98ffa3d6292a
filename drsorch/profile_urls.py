"""The profile page, included at /accounts/profile/ by drsorch/urls.py."""

from django.urls import path

from .profile import profile

urlpatterns = [path("", profile, name="profile")]
