"""REST endpoints of executions: start, follow, act on, and read the audit log; and the
endpoints of a plan that need executions: its readiness, starting it and its history.

Every write calls a function of `executions.services`; their refusals (PermissionDenied,
ExecutionError subclasses) become 403 / 400 / 409 in drsorch.api.exception_handler.
"""

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.settings import api_settings

from drsorch.api import (
    CONFLICT_RESPONSE,
    ERROR_RESPONSES,
    FIELD_ERRORS_RESPONSE,
    NOT_FOUND_RESPONSE,
    ConflictSerializer,
    RolePermission,
    RoleViewSetMixin,
)
from drsorch.roles import ACTION_PERMISSIONS
from executions import services
from executions.choices import ExecutionMode
from executions.filtersets import ExecutionEventFilterSet, ExecutionFilterSet
from executions.models import ActionRun, Execution, ExecutionEvent
from executions.readiness import plan_readiness
from executions.selectors import executions_for_json, plan_history, scheduled_drill_runs
from plans.api.serializers import ReadinessQuerySerializer, ReadinessSerializer
from plans.api.views import RecoveryPlanViewSet

from .serializers import (
    IDEMPOTENCY_KEY_MAX_LENGTH,
    ExecutionActionCompleteSerializer,
    ExecutionApproveSerializer,
    ExecutionCancelSerializer,
    ExecutionEventSerializer,
    ExecutionHistorySerializer,
    ExecutionSerializer,
    ExecutionStartSerializer,
    PlanExecuteSerializer,
    PlanHistoryQuerySerializer,
    ScheduledDrillRunSerializer,
)

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
# Either start permission lets a request through; execution_start then checks the one the
# requested mode needs (start_drill or start_recovery).
START_PERMISSIONS = (ACTION_PERMISSIONS["start_drill"], ACTION_PERMISSIONS["start_recovery"])

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_KEY_HEADER,
    type={"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH},
    location=OpenApiParameter.HEADER,
    required=False,
    description="Any unique string, e.g. a UUID. Repeating a request with the same key returns the "
    "execution the first request started (202) instead of starting another; the same key with "
    "another plan or mode answers 409 idempotency_key_reused.",
)
START_RESPONSES = {
    202: OpenApiResponse(
        ExecutionSerializer,
        description="Started (or, with a repeated Idempotency-Key, the execution started before). "
        "The Location header is the execution's URL: poll it until `status` is terminal.",
    ),
    400: OpenApiResponse(
        OpenApiTypes.OBJECT,
        description='Invalid input (field errors, e.g. `{"plan": ["..."]}`), or the plan is not ready '
        "(`code` not_ready, with the `readiness` report): its errors, or warnings the request did not accept "
        "with `accept_risks` (the `detail` says so).",
    ),
    **ERROR_RESPONSES,
    409: OpenApiResponse(
        ConflictSerializer,
        description="The plan already runs (`code` plan_running, `execution` its id), a server is held by "
        "another running execution (`code` server_busy, `execution` the holder, `servers` the busy servers), "
        "or the Idempotency-Key was used for another request (idempotency_key_reused).",
    ),
}
ACTION_RESPONSES = {
    200: ExecutionSerializer,
    **ERROR_RESPONSES,
    **NOT_FOUND_RESPONSE,
    **CONFLICT_RESPONSE,
}
CLEANUP_RESPONSES = {202: ExecutionSerializer, **{k: v for k, v in ACTION_RESPONSES.items() if k != 200}}


def start_execution(request, *, plan, mode, auto_approve, accept_risks=False, point_in_time=None, comment=""):
    """Start `plan` for the requesting user and answer 202 with the execution JSON and its
    Location; shared by POST executions/ and POST plans/<id>/execute/."""
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER, "").strip() or None
    if key and len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise ValidationError({IDEMPOTENCY_KEY_HEADER: [f"Use at most {IDEMPOTENCY_KEY_MAX_LENGTH} characters."]})
    execution = services.execution_start(
        plan=plan,
        mode=mode,
        requested_by=request.user,
        auto_approve=auto_approve,
        idempotency_key=key,
        accept_risks=accept_risks,
        point_in_time=point_in_time,
        comment=comment or "",
    )
    execution = executions_for_json().get(pk=execution.pk)
    location = request.build_absolute_uri(reverse("api-execution-detail", args=[execution.pk]))
    return Response(
        ExecutionSerializer(execution).data, status=status.HTTP_202_ACCEPTED, headers={"Location": location}
    )


@extend_schema(tags=["executions"])
@extend_schema_view(
    list=extend_schema(
        summary="List executions",
        description="Newest first; filter by plan, mode, status and creation date. A bad filter value answers "
        "400 naming the parameter and what was wrong.",
        responses={200: ExecutionSerializer(many=True), 400: FIELD_ERRORS_RESPONSE, **ERROR_RESPONSES},
    ),
    retrieve=extend_schema(
        summary="Read an execution",
        description="The execution JSON of the contract, the same object `execution show --json` prints.",
        responses={200: ExecutionSerializer, **ERROR_RESPONSES, **NOT_FOUND_RESPONSE},
    ),
)
class ExecutionViewSet(RoleViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Executions of recovery plans."""

    serializer_class = ExecutionSerializer
    filterset_class = ExecutionFilterSet
    action_permissions = {
        "create": [START_PERMISSIONS],
        **{action: [ACTION_PERMISSIONS[action]] for action in ("approve", "cancel", "retry", "cleanup")},
        "complete": [ACTION_PERMISSIONS["approve"]],
        "events": ["executions.view_execution", "executions.view_executionevent"],
    }

    def get_queryset(self):
        if self.action in ("list", "retrieve"):
            return executions_for_json()
        return Execution.objects.all()

    def filter_queryset(self, queryset):
        # Filters choose executions of the list only; an action on one execution ignores them.
        if self.action == "list":
            return super().filter_queryset(queryset)
        return queryset

    def rendered(self, execution, status_code=status.HTTP_200_OK):
        return Response(ExecutionSerializer(executions_for_json().get(pk=execution.pk)).data, status=status_code)

    @extend_schema(
        summary="Start an execution",
        request=ExecutionStartSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses=START_RESPONSES,
    )
    def create(self, request):
        serializer = ExecutionStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return start_execution(request, **serializer.validated_data)

    @extend_schema(
        summary="Approve a gate",
        description="Lets the wave waiting for approval (or the wave `wave_index`) launch. The `comment` goes "
        "to the audit log with the approver; a RECOVERY's gate needs one (400 naming `comment`).",
        request=ExecutionApproveSerializer,
        responses={**ACTION_RESPONSES, 400: FIELD_ERRORS_RESPONSE},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        execution = self.get_object()
        serializer = ExecutionApproveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        execution = services.execution_approve(
            execution=execution,
            user=request.user,
            wave_index=serializer.validated_data.get("wave_index"),
            comment=serializer.validated_data.get("comment") or "",
        )
        return self.rendered(execution)

    @extend_schema(
        summary="Cancel",
        description="Stops launching; the execution ends CANCELLED. The `comment` goes to the audit log with "
        "who cancelled; cancelling a RECOVERY needs one (400 naming `comment`).",
        request=ExecutionCancelSerializer,
        responses={**ACTION_RESPONSES, 400: FIELD_ERRORS_RESPONSE},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        execution = self.get_object()
        serializer = ExecutionCancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self.rendered(
            services.execution_cancel(
                execution=execution, user=request.user, comment=serializer.validated_data.get("comment") or ""
            )
        )

    @extend_schema(
        summary="Complete a manual action",
        description="Completes the manual wave action `name`, which waits for an Operator (the permission to "
        "approve gates); the `comment` (required: what was done) goes to the audit log, and the wave moves "
        "on. 404 for an unknown action name, 409 when the action is not waiting.",
        request=ExecutionActionCompleteSerializer,
        responses={**ACTION_RESPONSES, 400: FIELD_ERRORS_RESPONSE},
    )
    @action(detail=True, methods=["post"], url_path=r"actions/(?P<name>[^/]+)/complete")
    def complete(self, request, pk=None, name=None):
        execution = self.get_object()
        serializer = ExecutionActionCompleteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.execution_action_complete(
                execution=execution, name=name, user=request.user, comment=serializer.validated_data["comment"]
            )
        except ActionRun.DoesNotExist as exc:
            raise NotFound(f"Execution {execution.pk} has no action named {name!r}.") from exc
        return self.rendered(execution)

    @extend_schema(
        summary="Retry",
        description="Runs the failed, timed-out and skipped waves of an ended execution again.",
        request=None,
        responses=ACTION_RESPONSES,
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        return self.rendered(services.execution_retry(execution=self.get_object(), user=request.user))

    @extend_schema(
        summary="Clean up",
        description="Starts terminating the recovery instances a drill launched "
        "and answers 202 at once: the worker terminates them (retrying throttling); their "
        "`launch_status` turns TERMINATED as DRS does it.",
        request=None,
        responses=CLEANUP_RESPONSES,
    )
    @action(detail=True, methods=["post"])
    def cleanup(self, request, pk=None):
        return self.rendered(
            services.execution_cleanup(execution=self.get_object(), user=request.user),
            status_code=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        summary="Audit log of an execution",
        description="Status changes, human actions and DRS job log items, oldest first. A bad filter value "
        "answers 400 naming the parameter.",
        parameters=[
            OpenApiParameter(
                "kind",
                OpenApiTypes.STR,
                many=True,
                enum=[k for k, _ in ExecutionEventFilterSet.base_filters["kind"].extra["choices"]],
                explode=True,
            ),
            OpenApiParameter("wave_index", OpenApiTypes.INT, description="A wave's `index` (from 0)."),
            OpenApiParameter(
                "people",
                OpenApiTypes.BOOL,
                description="`true`: only what people did (ACTION events of a user, or `cli` for a command): "
                "starts, approvals, cancels, retries, clean-ups. `false`: everything else.",
            ),
        ],
        responses={
            200: ExecutionEventSerializer(many=True),
            400: FIELD_ERRORS_RESPONSE,
            **ERROR_RESPONSES,
            **NOT_FOUND_RESPONSE,
        },
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def events(self, request, pk=None):
        execution = get_object_or_404(Execution.objects.all(), pk=pk)
        filterset = ExecutionEventFilterSet(
            request.query_params, queryset=ExecutionEvent.objects.filter(execution=execution), request=request
        )
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        page = self.paginate_queryset(filterset.qs.order_by("created_at", "pk"))
        return self.get_paginated_response(ExecutionEventSerializer(page, many=True).data)


# --- The endpoints of a plan that need executions --------------------------------------------
# Served at the paths and names a @action of the plans viewset would have (plans/<id>/...,
# api-plan-<name>, tag "plans"); registered in executions/api/urls.py.


class PlanEndpointView(generics.GenericAPIView):
    """One plan, found like RecoveryPlanViewSet finds it; the role permission of the API."""

    queryset = RecoveryPlanViewSet.queryset
    permission_classes = [RolePermission]
    filter_backends = []
    pagination_class = None


# Refreshing the inventory is a write: for those who may start drills or recoveries or edit plans.
REFRESH_PERMISSIONS = (*START_PERMISSIONS, "plans.change_recoveryplan")
READINESS_RESPONSES = {200: ReadinessSerializer, **ERROR_RESPONSES, **NOT_FOUND_RESPONSE}


@extend_schema(tags=["plans"])
class PlanReadinessView(PlanEndpointView):
    """Whether a plan can start now (plans' checks and those of other executions). GET only
    reads; POST refreshes the inventory from DRS first."""

    # POST takes no body; OPTIONS (DRF's metadata) describes the answer's fields.
    serializer_class = ReadinessSerializer

    @property
    def required_permissions(self):
        if self.request.method == "POST":
            return ["plans.view_recoveryplan", REFRESH_PERMISSIONS]
        return ["plans.view_recoveryplan"]

    @extend_schema(
        summary="Check readiness",
        description="Whether the plan can start now, from the stored inventory: replication health, lag "
        "against the RPO, DRS quotas, other executions and (with `live`) active DRS jobs, read without "
        "writing anything. `ready` is false when any check has severity error; warnings block a start "
        "unless it accepts them (`accept_risks`). POST to refresh the inventory from DRS first.",
        parameters=[
            OpenApiParameter(
                "live", OpenApiTypes.BOOL, default=True, description=ReadinessQuerySerializer().fields["live"].help_text
            )
        ],
        responses={**READINESS_RESPONSES, 400: FIELD_ERRORS_RESPONSE},
    )
    def get(self, request, pk=None):
        plan = self.get_object()
        query = ReadinessQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(plan_readiness(plan=plan, live=query.validated_data["live"]).as_json())

    @extend_schema(
        summary="Refresh the inventory and check readiness",
        description="Syncs the inventory of the plan's targets from DRS (a write), then answers like GET with "
        "`live`. For users who may start drills or recoveries or edit plans.",
        request=None,
        responses=READINESS_RESPONSES,
    )
    def post(self, request, pk=None):
        plan = self.get_object()
        return Response(plan_readiness(plan=plan, refresh=True).as_json())


@extend_schema(tags=["plans"])
class PlanExecuteView(PlanEndpointView):
    """Start a plan, like POST executions/ with this plan."""

    required_permissions = ["plans.view_recoveryplan", START_PERMISSIONS]
    serializer_class = PlanExecuteSerializer

    @extend_schema(
        summary="Start this plan",
        description="Same as POST /api/v1/executions/ with this plan.",
        request=PlanExecuteSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={**START_RESPONSES, **NOT_FOUND_RESPONSE},
    )
    def post(self, request, pk=None):
        plan = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return start_execution(request, plan=plan, **serializer.validated_data)


@extend_schema(tags=["plans"])
class PlanHistoryView(PlanEndpointView):
    """A plan's ended executions with their achieved RTO and worst RPO, for trends."""

    required_permissions = ["plans.view_recoveryplan", "executions.view_execution"]
    serializer_class = ExecutionHistorySerializer
    pagination_class = api_settings.DEFAULT_PAGINATION_CLASS

    @extend_schema(
        summary="History of a plan (RTO and RPO per execution)",
        description="The plan's ended executions, newest first and paginated like every list: achieved RTO "
        "and worst RPO against the targets frozen when each started (the `rto` and `rpo` objects of the "
        "execution JSON), and how many servers launched or failed. Running executions are left out: they "
        "have no measure yet.",
        parameters=[
            OpenApiParameter(
                "mode",
                OpenApiTypes.STR,
                enum=ExecutionMode.values,
                description=PlanHistoryQuerySerializer().fields["mode"].help_text,
            )
        ],
        responses={
            200: ExecutionHistorySerializer(many=True),
            400: FIELD_ERRORS_RESPONSE,
            **ERROR_RESPONSES,
            **NOT_FOUND_RESPONSE,
        },
    )
    def get(self, request, pk=None):
        plan = self.get_object()
        query = PlanHistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = self.paginate_queryset(plan_history(plan=plan, mode=query.validated_data.get("mode")))
        return self.get_paginated_response(ExecutionHistorySerializer(page, many=True).data)


@extend_schema(tags=["plans"])
class PlanScheduledRunsView(PlanEndpointView):
    """The slots of a plan's drill schedule the worker took: the drill each started, or why it
    was skipped (read only)."""

    required_permissions = ["plans.view_recoveryplan", "executions.view_execution"]
    serializer_class = ScheduledDrillRunSerializer
    pagination_class = api_settings.DEFAULT_PAGINATION_CLASS

    @extend_schema(
        summary="Scheduled runs of a plan",
        description="Each slot of the plan's `drill_schedule` the worker took, newest first and paginated: "
        "`STARTED` with the drill's execution id, or `SKIPPED` with the reason (the plan already running, "
        "readiness errors, the slot missed while the worker was not running).",
        responses={200: ScheduledDrillRunSerializer(many=True), **ERROR_RESPONSES, **NOT_FOUND_RESPONSE},
    )
    def get(self, request, pk=None):
        plan = self.get_object()
        page = self.paginate_queryset(scheduled_drill_runs(plan=plan))
        return self.get_paginated_response(ScheduledDrillRunSerializer(page, many=True).data)
