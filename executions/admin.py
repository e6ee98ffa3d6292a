from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError

from drsorch.roles import ACTION_PERMISSIONS

from . import services
from .exceptions import ExecutionError
from .models import (
    ActionRun,
    DrsJob,
    Execution,
    ExecutionEvent,
    LaunchAttempt,
    ScheduledDrillRun,
    ServerLaunch,
    WaveRun,
)


class ReadOnlyAdminMixin:
    """Executions are changed only by the engine and the services: statuses are never edited by
    hand, so the admin shows them and offers no add, change or delete."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class WaveRunInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = WaveRun
    extra = 0
    fields = ["index", "name", "status", "depends_on", "approval_required", "approved_by", "started_at", "finished_at"]
    readonly_fields = fields
    show_change_link = True


class ActionRunInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The wave actions as they ran (not their config: a webhook's secret stays out of pages)."""

    model = ActionRun
    extra = 0
    fields = [
        "wave_run",
        "when",
        "position",
        "name",
        "kind",
        "on_failure",
        "status",
        "attempt",
        "intent_at",
        "started_at",
        "finished_at",
        "error",
        "completed_by_username",
    ]
    readonly_fields = fields


class ServerLaunchInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ServerLaunch
    extra = 0
    fields = [
        "wave_run",
        "hostname",
        "source_server_id",
        "critical",
        "status",
        "phase",
        "job",
        "recovery_instance_id",
        "launched_at",
        "error",
    ]
    readonly_fields = fields


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["short_id", "plan_name", "mode", "status", "requested_by_username", "started_at", "finished_at"]
    list_filter = ["mode", "status", "plan"]
    search_fields = ["id", "plan_name", "requested_by_username", "idempotency_key"]
    date_hierarchy = "created_at"
    inlines = [WaveRunInline, ActionRunInline, ServerLaunchInline]
    actions = ["approve", "cancel", "retry", "cleanup"]

    @admin.display(description="ID")
    def short_id(self, obj):
        return str(obj.pk)[:8]

    def _act(self, request, queryset, service, done):
        """Run one execution service per selected execution; report each refusal by name."""
        for execution in queryset:
            try:
                service(execution=execution, user=request.user)
            except (ExecutionError, PermissionDenied) as exc:
                self.message_user(request, f"{execution}: {getattr(exc, 'message', exc)}", messages.ERROR)
            except ValidationError as exc:
                # The admin's bulk actions take no comment: a RECOVERY's approval or cancellation,
                # which needs one, is done on the execution's page (its confirmation asks for it).
                self.message_user(
                    request,
                    f"{execution}: {' '.join(exc.messages)} Use the execution's page: {execution.get_absolute_url()}",
                    messages.ERROR,
                )
            else:
                self.message_user(request, f"{execution}: {done}.", messages.SUCCESS)

    @admin.action(description="Approve the waiting gate", permissions=["approve"])
    def approve(self, request, queryset):
        self._act(request, queryset, services.execution_approve, "gate approved")

    @admin.action(description="Cancel", permissions=["cancel"])
    def cancel(self, request, queryset):
        self._act(request, queryset, services.execution_cancel, "cancelling")

    @admin.action(description="Retry failed servers", permissions=["retry"])
    def retry(self, request, queryset):
        self._act(request, queryset, services.execution_retry, "retrying")

    @admin.action(description="Clean up drill instances", permissions=["cleanup"])
    def cleanup(self, request, queryset):
        self._act(request, queryset, services.execution_cleanup, "clean-up started")

    def has_approve_permission(self, request):
        return request.user.has_perm(ACTION_PERMISSIONS["approve"])

    def has_cancel_permission(self, request):
        return request.user.has_perm(ACTION_PERMISSIONS["cancel"])

    def has_retry_permission(self, request):
        return request.user.has_perm(ACTION_PERMISSIONS["retry"])

    def has_cleanup_permission(self, request):
        return request.user.has_perm(ACTION_PERMISSIONS["cleanup"])


@admin.register(WaveRun)
class WaveRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["execution", "index", "name", "status", "started_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["name", "execution__plan_name"]
    inlines = [ServerLaunchInline]


class LaunchAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = LaunchAttempt
    extra = 0
    fields = ["job", "launch_status", "error", "started_at", "ended_at"]
    readonly_fields = fields


@admin.register(ServerLaunch)
class ServerLaunchAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "hostname",
        "source_server_id",
        "execution",
        "status",
        "phase",
        "recovery_instance_id",
        "launched_at",
        "snapshot_at",
    ]
    inlines = [LaunchAttemptInline]
    list_filter = ["status", "critical"]
    search_fields = ["hostname", "source_server_id", "recovery_instance_id"]


@admin.register(DrsJob)
class DrsJobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "type", "state", "drs_status", "target", "execution", "server_count", "requested_at"]
    list_filter = ["type", "state", "drs_status", "target"]
    search_fields = ["job_id", "launch_token"]


@admin.register(ExecutionEvent)
class ExecutionEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "execution", "kind", "actor_name", "message"]
    list_filter = ["kind"]
    search_fields = ["message", "actor_name", "source_server_id"]


@admin.register(ScheduledDrillRun)
class ScheduledDrillRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The slots the schedule took, as the worker recorded them (STARTING while it starts one)."""

    list_display = ["plan", "scheduled_for", "outcome", "execution", "reason"]
    list_filter = ["outcome", "plan"]
    list_select_related = ["plan", "execution"]
    search_fields = ["plan__name", "reason"]
    date_hierarchy = "scheduled_for"
