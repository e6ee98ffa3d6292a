"""Pieces every app's pages use: the role check of a view and pagination."""

from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest

PAGE_SIZE = 50


class RoleRequiredMixin(LoginRequiredMixin, PermissionRequiredMixin):
    """Login first (redirect), then the permission (403, never a redirect loop)."""

    def handle_no_permission(self):
        if self.request.user.is_authenticated:
            raise PermissionDenied
        return super().handle_no_permission()


def paginate(request: HttpRequest, queryset: QuerySet | list, size: int = PAGE_SIZE) -> Page:
    """The page of `queryset` the request's `page` parameter asks for (the last for too high a number)."""
    return Paginator(queryset, size).get_page(request.GET.get("page"))
