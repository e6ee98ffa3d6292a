"""Pieces every app's pages use: the role check of a view, pagination and filtered lists."""

from collections.abc import Iterable

from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django_filters import FilterSet

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


def filtered_page(request: HttpRequest, filterset: FilterSet, size: int = PAGE_SIZE) -> tuple[Page, int]:
    """The page of a list page's filterset, and the status to answer with.

    A filter value that is not valid is never ignored (the list would claim to be filtered
    when it is not) nor applied as "nothing matches": the answer is 400 with an empty page,
    and the filter form (templates/includes/filters.html) names each field at fault."""
    if filterset.is_bound and not filterset.is_valid():
        return paginate(request, filterset.queryset.none(), size), 400
    return paginate(request, filterset.qs, size), 200


# The largest id the databases hold (a signed 64-bit integer).
MAX_ID = 2**63 - 1


def whole_number(value: object, *, maximum: int = MAX_ID) -> int | None:
    """`value` (a request's text) as a whole number from 0 to `maximum`, else None.

    `str.isdigit()` accepts "²" and "٢", which int() then refuses or turns into a 2 nobody
    typed, and a 20-digit number overflows the database's integer: only ASCII digits within
    range are a number here."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if number <= maximum else None


def search_text(value: object, *, max_length: int = 200) -> str:
    """`value` (a request's search box) as text the database can be asked about: stripped,
    without NUL characters (PostgreSQL refuses them in text, and nothing stored holds one),
    at most `max_length` characters."""
    return value.replace("\x00", "").strip()[:max_length] if isinstance(value, str) else ""


def whole_numbers(values: Iterable[object]) -> set[int]:
    """The values that are whole numbers (whole_number), the others dropped: ticked ids."""
    return {n for n in map(whole_number, values) if n is not None}
