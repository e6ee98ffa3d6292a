"""REST endpoints of targets, the source-server inventory, protection groups and plans."""

from botocore.exceptions import BotoCoreError, ClientError
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from drsorch.api import (
    CONFLICT_RESPONSE,
    ERROR_RESPONSES,
    FIELD_ERRORS_RESPONSE,
    NOT_FOUND_RESPONSE,
    Conflict,
    RoleViewSetMixin,
)
from plans.filtersets import ProtectionGroupFilterSet, RecoveryPlanFilterSet, SourceServerFilterSet, TargetFilterSet
from plans.models import ProtectionGroup, RecoveryPlan, SourceServer, Target, Wave
from plans.selectors import plan_readiness_evaluations, plans_with_drill_age, prefetch_last_readiness_evaluation
from plans.services import plan_delete, protection_group_delete, source_servers_sync, target_delete

from .serializers import (
    ProtectionGroupSerializer,
    ReadinessEvaluationSerializer,
    RecoveryPlanSerializer,
    SourceServerSerializer,
    SourceServerSyncSerializer,
    SyncResponseSerializer,
    TargetSerializer,
)


def crud_schema(noun, serializer, *, tag, delete_conflict):
    """Summaries, error responses and tag of the operations of a model viewset."""
    write = {400: FIELD_ERRORS_RESPONSE, **ERROR_RESPONSES}
    describe_operations = extend_schema_view(
        list=extend_schema(
            summary=f"List {noun}s",
            description="A bad filter value answers 400 naming the parameter and what was wrong.",
            responses={200: serializer(many=True), 400: FIELD_ERRORS_RESPONSE, **ERROR_RESPONSES},
        ),
        create=extend_schema(summary=f"Create a {noun}", responses={201: serializer, **write}),
        retrieve=extend_schema(summary=f"Read a {noun}",
                               responses={200: serializer, **ERROR_RESPONSES, **NOT_FOUND_RESPONSE}),
        update=extend_schema(summary=f"Replace a {noun}", responses={200: serializer, **write, **NOT_FOUND_RESPONSE}),
        partial_update=extend_schema(summary=f"Change fields of a {noun}",
                                     responses={200: serializer, **write, **NOT_FOUND_RESPONSE}),
        destroy=extend_schema(
            summary=f"Delete a {noun}",
            description=delete_conflict,
            responses={204: None, **ERROR_RESPONSES, **NOT_FOUND_RESPONSE, **CONFLICT_RESPONSE},
        ),
    )

    def decorate(viewset):
        return extend_schema(tags=[tag])(describe_operations(viewset))

    return decorate


@crud_schema("target", TargetSerializer, tag="targets",
             delete_conflict="409 `protected` while protection groups or executions use the target.")
class TargetViewSet(RoleViewSetMixin, viewsets.ModelViewSet):
    """AWS accounts and regions where DRS replicates servers, and sandbox targets."""

    queryset = Target.objects.all()
    serializer_class = TargetSerializer
    filterset_class = TargetFilterSet

    def perform_destroy(self, target):
        try:
            target_delete(target=target)
        except DjangoValidationError as exc:
            raise Conflict(" ".join(exc.messages), code="protected")


@crud_schema("source server", SourceServerSerializer, tag="source-servers",
             delete_conflict="Removes the server from its protection group and waves; executions keep their copy.")
class SourceServerViewSet(RoleViewSetMixin, viewsets.ModelViewSet):
    """The source-server inventory, as last synced from DRS; filter by target, replication
    state, lag, tag (`Key=Value` or `Key`) and search text."""

    queryset = SourceServer.objects.select_related("target", "membership")
    serializer_class = SourceServerSerializer
    filterset_class = SourceServerFilterSet
    action_permissions = {"sync": ["plans.add_sourceserver", "plans.change_sourceserver"]}

    @extend_schema(
        summary="Sync the inventory from DRS",
        description="Refreshes the inventory of one target, or of every target when `target` is omitted. "
        "A target DRS could not be reached for has its `error` set and the others still sync.",
        request=SourceServerSyncSerializer,
        responses={200: SyncResponseSerializer, 400: FIELD_ERRORS_RESPONSE, **ERROR_RESPONSES},
    )
    @action(detail=False, methods=["post"], filterset_class=None, pagination_class=None)
    def sync(self, request):
        serializer = SourceServerSyncSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        target = serializer.validated_data.get("target")
        targets = [target] if target else Target.objects.order_by("name")
        return Response({"results": [self.sync_one(target) for target in targets]})

    @staticmethod
    def sync_one(target):
        result = {"target": {"id": target.pk, "name": target.name}, "created": 0, "updated": 0, "missing": 0,
                  "uninitialized": False, "error": None}
        try:
            synced = source_servers_sync(target=target)
        except (BotoCoreError, ClientError) as exc:
            # One unreachable account must not hide the others' results.
            result["error"] = str(exc)
            return result
        result.update(created=synced.created, updated=synced.updated, missing=synced.missing,
                      uninitialized=synced.uninitialized)
        return result


@crud_schema("protection group", ProtectionGroupSerializer, tag="protection-groups",
             delete_conflict="409 `protected` while a plan's wave uses the group.")
class ProtectionGroupViewSet(RoleViewSetMixin, viewsets.ModelViewSet):
    """Protection groups: explicit servers and/or a tag selector of one target, with the
    servers they resolve to now."""

    queryset = ProtectionGroup.objects.select_related("target").prefetch_related("servers")
    serializer_class = ProtectionGroupSerializer
    filterset_class = ProtectionGroupFilterSet

    def perform_destroy(self, group):
        try:
            protection_group_delete(group=group)
        except DjangoValidationError as exc:
            raise Conflict(" ".join(exc.messages), code="protected")


@crud_schema("recovery plan", RecoveryPlanSerializer, tag="plans",
             delete_conflict="409 `protected` while executions of the plan exist.")
class RecoveryPlanViewSet(RoleViewSetMixin, viewsets.ModelViewSet):
    """Recovery plans with their waves. Writes are checked like the plan editor's: no cycle,
    no empty wave, no server in two waves; errors name the wave field at fault."""

    # GET plans/<id>/readiness/ and POST plans/<id>/execute/ need executions: executions.api.views
    # serves them, and executions/api/urls.py registers them at the same paths and names.

    # The drill age and the last readiness evaluation come in the same query and one more,
    # whatever the number of plans.
    queryset = plans_with_drill_age(RecoveryPlan.objects.select_related("owner")).prefetch_related(
        Prefetch("waves", queryset=Wave.objects.order_by("order").prefetch_related(
            "protection_groups", "depends_on", "optional_servers", "actions")),
        prefetch_last_readiness_evaluation(),
    )
    serializer_class = RecoveryPlanSerializer
    filterset_class = RecoveryPlanFilterSet

    @extend_schema(
        summary="Readiness-watch evaluations of a plan",
        description="The worker's readiness watch evaluations of the plan, newest first and paginated like every "
        "list: the verdict, the findings, what changed since the previous one and the notice it sent.",
        responses={200: ReadinessEvaluationSerializer(many=True), **ERROR_RESPONSES, **NOT_FOUND_RESPONSE},
    )
    @action(detail=True, methods=["get"], url_path="readiness-evaluations", url_name="readiness-evaluations",
            serializer_class=ReadinessEvaluationSerializer, filterset_class=None)
    def readiness_evaluations(self, request, pk=None):
        plan = self.get_object()
        page = self.paginate_queryset(plan_readiness_evaluations(plan=plan))
        return self.get_paginated_response(ReadinessEvaluationSerializer(page, many=True).data)

    def perform_destroy(self, plan):
        try:
            plan_delete(plan=plan)
        except DjangoValidationError as exc:
            raise Conflict(" ".join(exc.messages), code="protected")
