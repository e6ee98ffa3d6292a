from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect

from . import services
from .models import ProtectionGroup, ProtectionGroupMembership, RecoveryPlan, SourceServer, Target, Wave


@admin.register(Target)
class TargetAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "account_id", "region", "role_arn", "server_count"]
    list_filter = ["kind", "region"]
    search_fields = ["name", "account_id", "region", "role_arn"]
    actions = ["sync_inventory"]

    @admin.display(description="Servers")
    def server_count(self, obj):
        return obj.source_servers.count()

    @admin.action(description="Sync source servers from DRS", permissions=["change"])
    def sync_inventory(self, request, queryset):
        for target in queryset:
            try:
                result = services.source_servers_sync(target=target)
            except Exception as exc:  # one target's outage must not hide the others' results
                self.message_user(request, f"{target.name}: sync failed: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{target.name}: {result}", messages.SUCCESS)


class MembershipInline(admin.TabularInline):
    model = ProtectionGroupMembership
    fk_name = "server"
    extra = 0
    can_delete = False
    readonly_fields = ["group"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SourceServer)
class SourceServerAdmin(admin.ModelAdmin):
    list_display = ["hostname", "drs_id", "target", "replication_state", "lag_seconds", "last_seen_at",
                    "in_drs", "tags"]
    list_filter = ["target", "replication_state", "in_drs"]
    search_fields = ["hostname", "drs_id", "tags"]
    # The inventory mirrors DRS: it is refreshed by sync, never edited by hand.
    readonly_fields = ["target", "drs_id", "arn", "hostname", "tags", "replication_state", "lag_seconds",
                       "last_seen_at", "recommended_instance_type", "os_name", "raw", "in_drs", "synced_at"]
    inlines = [MembershipInline]

    def has_add_permission(self, request):
        return False


class GroupMembershipInline(admin.TabularInline):
    model = ProtectionGroupMembership
    extra = 0
    autocomplete_fields = ["server"]


@admin.register(ProtectionGroup)
class ProtectionGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "target", "tag_selector", "explicit_count"]
    list_filter = ["target"]
    search_fields = ["name", "description"]
    inlines = [GroupMembershipInline]

    @admin.display(description="Explicit servers")
    def explicit_count(self, obj):
        return obj.memberships.count()


class WaveInline(admin.StackedInline):
    model = Wave
    extra = 0
    filter_horizontal = ["protection_groups", "optional_servers"]
    fields = ["order", "name", "protection_groups", "depends_on", "approval_required", "wait_after_minutes",
              "timeout_minutes", "optional_servers"]

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "depends_on":
            plan_id = request.resolver_match.kwargs.get("object_id")
            kwargs["queryset"] = Wave.objects.filter(plan_id=plan_id) if plan_id else Wave.objects.none()
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(RecoveryPlan)
class RecoveryPlanAdmin(admin.ModelAdmin):
    list_display = ["name", "rto_target_minutes", "rpo_target_minutes", "owner", "wave_count", "updated_at"]
    search_fields = ["name", "description"]
    inlines = [WaveInline]

    @admin.display(description="Waves")
    def wave_count(self, obj):
        return obj.waves.count()

    def save_related(self, request, form, formsets, change):
        """Save the inline waves, then hold the plan to the same structure rules as the pages and
        API; a violation rolls the whole save back and is reported next to the plan."""
        super().save_related(request, form, formsets, change)
        try:
            services.plan_validate_waves(waves=services.plan_wave_specs(plan=form.instance))
        except ValidationError as exc:
            raise AdminPlanInvalid(exc) from exc

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except AdminPlanInvalid as exc:
            for message in exc.messages:
                self.message_user(request, message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class AdminPlanInvalid(ValidationError):
    """Raised inside the admin's transaction so that an invalid plan is not saved."""

    def __init__(self, exc):
        super().__init__(exc.messages)
