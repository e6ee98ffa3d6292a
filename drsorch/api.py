"""Shared pieces of the REST API: the role permission, the error format and its schema.

Every error a script can act on has one of two shapes:

- 400 with the fields at fault: ``{"<field>": ["message", ...], "non_field_errors": [...]}``,
  nested for nested fields with items keyed by position, as DRF reports nested lists:
  ``{"waves": {"1": {"protection_groups": ["..."]}, "non_field_errors": ["..."]}}``;
- any other status: ``{"detail": "message", "code": "machine_readable_code"}``, plus, for a
  plan that already runs or a server held by another execution, ``"execution": "<uuid>"`` of
  the execution that holds it.
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .exceptions import ServiceError
from .web import MAX_ID, whole_number

NON_FIELD_ERRORS = "non_field_errors"


class IdRelatedField(serializers.PrimaryKeyRelatedField):
    """The id of an object: a whole number (or a string of ASCII digits) within the database's
    range. DRF's field hands any value to the ORM, which truncates 2.9 to plan 2 and sends a
    non-ASCII digit or a 20-digit number to the database (a 500): those are refused here."""

    default_error_messages = {
        **serializers.PrimaryKeyRelatedField.default_error_messages,
        "not_an_id": "Expected the id of an object, a whole number from 1 to {max_id}; got {value}.",
    }

    def to_internal_value(self, data):
        number = whole_number(data)
        if not number:
            self.fail("not_an_id", max_id=MAX_ID, value=repr(data)[:40])
        return super().to_internal_value(number)


class RequestTooLarge(exceptions.APIException):
    """413: a body past DATA_UPLOAD_MAX_MEMORY_SIZE (Django would answer its HTML 400 page)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


class Conflict(exceptions.APIException):
    """409: the request does not fit the current state of the resource."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


# Fields holding a list of nested objects: a message about the whole list is reported as
# {"<field>": {"non_field_errors": [...]}}, so a client always finds an object under them.
NESTED_LIST_FIELDS = frozenset({"waves"})


def field_errors(exc):
    """A Django ValidationError (from a model or a service) as DRF field errors.

    Services name nested fields with dotted keys ("waves.1.protection_groups"); these become
    nested objects keyed by position, the shape DRF itself gives errors of nested lists:
    ``{"waves": {"1": {"protection_groups": ["..."]}}}``. A message about a whole nested list
    (a dependency cycle, no wave at all) is that object's "non_field_errors". "__all__"
    becomes the top-level "non_field_errors".
    """
    if not hasattr(exc, "error_dict"):
        return {NON_FIELD_ERRORS: list(exc.messages)}
    errors = {}
    for key, messages in sorted(exc.message_dict.items()):
        if key == "__all__":
            errors.setdefault(NON_FIELD_ERRORS, []).extend(messages)
            continue
        *parents, leaf = key.split(".")
        node = errors
        for part in parents:
            if isinstance(node.get(part), list):
                node[part] = {NON_FIELD_ERRORS: node[part]}
            node = node.setdefault(part, {})
        if leaf in NESTED_LIST_FIELDS or isinstance(node.get(leaf), dict):
            node.setdefault(leaf, {}).setdefault(NON_FIELD_ERRORS, []).extend(messages)
        else:
            node.setdefault(leaf, []).extend(messages)
    return errors


def exception_handler(exc, context):
    """DRF's handler, plus the services' errors, and `{"detail", "code"}` on every non-400."""
    if isinstance(exc, ServiceError):
        return Response(exc.as_json(), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(field_errors(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge(
            f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes; no request of this "
            "API needs that much.")
    elif isinstance(exc, ProtectedError | RestrictedError):
        used_by = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
        names = sorted({f"{obj._meta.verbose_name} '{obj}'" for obj in used_by})
        exc = Conflict(
            f"It is still used by: {', '.join(names[:10])}{' …' if len(names) > 10 else ''}.",
            code="protected",
        )
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc.detail, str):
        response.data = {"detail": str(exc.detail), "code": getattr(exc.detail, "code", None) or exc.default_code}
    return response


def _holds(user, requirement):
    if isinstance(requirement, tuple):
        return any(user.has_perm(perm) for perm in requirement)
    return user.has_perm(requirement)


class RolePermission(permissions.DjangoModelPermissions):
    """The contract's roles on the API: reads need `view_<model>`, writes `add_`, `change_`
    or `delete_<model>` of the view's queryset model.

    A view may name the permissions of its extra actions in `action_permissions`:
    ``{"approve": ["executions.approve_execution"]}``, and a view that is not a viewset those
    of all its methods in `required_permissions`; every entry is required, and a tuple entry
    is satisfied by any one of its permissions (starting needs a drill *or* recovery
    permission here; the service then checks the one the requested mode needs).
    Unauthenticated requests are refused before any of this, so they answer 401.
    """

    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    def has_permission(self, request, view):
        user = request.user
        if not user or not user.is_authenticated:
            return False
        required = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if required is None:
            required = getattr(view, "required_permissions", None)
        if required is not None:
            return all(_holds(user, requirement) for requirement in required)
        return super().has_permission(request, view)


class RoleViewSetMixin:
    """The role permission of every API view; `action_permissions` names those of extra actions."""

    permission_classes = [RolePermission]
    action_permissions = {}


# --- Schema of the error bodies ------------------------------------------------------------------

class ErrorSerializer(serializers.Serializer):
    """Every error except 400: a message and a machine-readable code."""

    detail = serializers.CharField()
    code = serializers.CharField()


class ConflictSerializer(ErrorSerializer):
    """409: `code` is e.g. "plan_running", "server_busy", "conflict", "protected"; with
    "plan_running", `execution` is the id of the execution that runs the plan, with
    "server_busy" the one that holds the servers listed in `servers`."""

    execution = serializers.UUIDField(required=False)
    servers = serializers.ListField(child=serializers.CharField(), required=False,
                                    help_text="With server_busy: the busy servers, as 'hostname (s-...)'.")


FIELD_ERRORS_RESPONSE = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description='Invalid input: `{"<field>": ["message"], "non_field_errors": ["message"]}`, nested for '
    "nested fields.",
)
ERROR_RESPONSES = {
    401: OpenApiResponse(ErrorSerializer, description="No or invalid credentials."),
    403: OpenApiResponse(ErrorSerializer, description="The user's roles do not allow this."),
}
NOT_FOUND_RESPONSE = {404: OpenApiResponse(ErrorSerializer, description="No such object.")}
CONFLICT_RESPONSE = {409: OpenApiResponse(ConflictSerializer, description="The request conflicts with the state.")}
