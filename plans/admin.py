from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse

from . import services
from .choices import ActionKind
from .models import (
    PlanOverdueNotice,
    PlanReadinessEvaluation,
    ProtectionGroup,
    ProtectionGroupMembership,
    RecoveryPlan,
    SourceServer,
    Target,
    Wave,
    WaveAction,
)


@dataclass(frozen=True)
class DeleteServices:
    """The services that check and carry out the delete of an admin's model, and the keyword
    they take the object by (plans.services.plan_delete_check(plan=...))."""

    check: Callable[..., None]
    delete: Callable[..., None]
    keyword: str


class ServiceDeleteAdminMixin:
    """Deletes through the delete service the pages and the API call, never past it.

    Each admin names its model's services in `delete_services`. `delete_check(obj)` raises
    ValidationError when the service would refuse, `delete_service(obj)` deletes. The single
    delete is refused before its confirmation page, the bulk "delete selected" action before
    its own when any selected object is refused: each refusal is reported by name and nothing
    is deleted.
    """

    delete_services: DeleteServices

    def delete_check(self, obj):
        self.delete_services.check(**{self.delete_services.keyword: obj})

    def delete_service(self, obj):
        self.delete_services.delete(**{self.delete_services.keyword: obj})

    def delete_model(self, request, obj):
        self.delete_service(obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                self.delete_service(obj)

    def _refuse(self, request, exc):
        for message in exc.messages:
            self.message_user(request, message, messages.ERROR)

    def delete_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        try:
            if obj is not None:
                self.delete_check(obj)
            return super().delete_view(request, object_id, extra_context)
        except ValidationError as exc:
            # Refused before the confirmation page, or (used meanwhile) by the service itself.
            self._refuse(request, exc)
            opts = self.model._meta
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            _, name, description = actions["delete_selected"]
            actions["delete_selected"] = (self._delete_selected_through_service, name, description)
        return actions

    @staticmethod
    def _delete_selected_through_service(modeladmin, request, queryset):
        refusals = []
        for obj in queryset:
            try:
                modeladmin.delete_check(obj)
            except ValidationError as exc:
                refusals.append(exc)
        try:
            if not refusals:
                # Atomic, so that a refusal met while deleting (a plan took a group meanwhile)
                # leaves neither deletions nor the admin log's entries of them.
                with transaction.atomic():
                    return delete_selected(modeladmin, request, queryset)
        except ValidationError as exc:
            refusals.append(exc)
        for exc in refusals:
            modeladmin._refuse(request, exc)
        modeladmin.message_user(request, "Nothing was deleted.", messages.WARNING)
        return None


@admin.register(Target)
class TargetAdmin(ServiceDeleteAdminMixin, admin.ModelAdmin):
    list_display = ["name", "kind", "account_id", "region", "role_arn", "server_count"]
    list_filter = ["kind", "region"]
    search_fields = ["name", "account_id", "region", "role_arn"]
    actions = ["sync_inventory"]

    @admin.display(description="Servers")
    def server_count(self, obj):
        return obj.source_servers.count()

    delete_services = DeleteServices(
        check=services.target_delete_check, delete=services.target_delete, keyword="target"
    )

    def get_deleted_objects(self, objs, request):
        # The target's synced inventory goes with it although servers are never deleted alone.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        perms_needed.discard(SourceServer._meta.verbose_name)
        return deleted, counts, perms_needed, protected

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

    def has_delete_permission(self, request, obj=None):
        # Deleting a server by hand would empty the waves whose groups name it, while DRS still
        # replicates it and the next sync brings it back: servers leave with the inventory.
        return False


class GroupMembershipInline(admin.TabularInline):
    model = ProtectionGroupMembership
    extra = 0
    autocomplete_fields = ["server"]


@admin.register(ProtectionGroup)
class ProtectionGroupAdmin(ServiceDeleteAdminMixin, admin.ModelAdmin):
    list_display = ["name", "target", "tag_selector", "explicit_count"]
    list_filter = ["target"]
    search_fields = ["name", "description"]
    inlines = [GroupMembershipInline]

    @admin.display(description="Explicit servers")
    def explicit_count(self, obj):
        return obj.memberships.count()

    delete_services = DeleteServices(
        check=services.protection_group_delete_check, delete=services.protection_group_delete, keyword="group"
    )

    def save_related(self, request, form, formsets, change):
        """Save the inline memberships, then save the group again through protection_group_save,
        which holds it to the pages' and API's rules (servers of its own target, each in one
        group, some server or a tag selector); a refusal rolls the whole save back."""
        super().save_related(request, form, formsets, change)
        group = form.instance
        try:
            services.protection_group_save(
                group=group,
                name=group.name,
                target=group.target,
                description=group.description,
                servers=list(group.servers.all()),
                tag_selector=group.tag_selector,
            )
        except ValidationError as exc:
            raise AdminSaveRefused(exc) from exc

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except AdminSaveRefused as exc:
            for message in exc.messages:
                self.message_user(request, message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


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


class WaveActionAdminForm(forms.ModelForm):
    """A wave action in the admin. A webhook's secret is write-only here as in the API and the
    plan page: the config is shown without it, and a config saved without "secret" keeps the
    stored one ("secret": "" removes it)."""

    class Meta:
        model = WaveAction
        fields = ["wave", "position", "name", "kind", "when", "config", "timeout_minutes", "on_failure"]
        help_texts = {"config": "By kind: ssm_automation/ssm_command {\"document\", \"parameters\"}, webhook "
                                "{\"url\", \"secret\"} (the secret is never shown; left out, it is kept), manual "
                                "{\"instructions\"}, health_check {\"ec2_status_checks\", \"ssm_ping\"}."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.config if self.instance.pk else None
        if isinstance(stored, dict) and "secret" in stored:
            self.initial["config"] = {key: value for key, value in stored.items() if key != "secret"}

    def clean_config(self):
        config = self.cleaned_data.get("config")
        stored = self.instance.config if self.instance.pk else None
        if (self.cleaned_data.get("kind") == ActionKind.WEBHOOK and isinstance(config, dict)
                and "secret" not in config and isinstance(stored, dict) and stored.get("secret")):
            config = {**config, "secret": stored["secret"]}
        return config


class WaveActionInline(admin.TabularInline):
    """The plan's wave actions; RecoveryPlanAdmin.save_related holds them to plans.actions' rules."""

    model = WaveAction
    form = WaveActionAdminForm
    fk_name = "plan"
    extra = 0

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "wave":
            plan_id = request.resolver_match.kwargs.get("object_id")
            kwargs["queryset"] = Wave.objects.filter(plan_id=plan_id) if plan_id else Wave.objects.none()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(RecoveryPlan)
class RecoveryPlanAdmin(ServiceDeleteAdminMixin, admin.ModelAdmin):
    list_display = ["name", "rto_target_minutes", "rpo_target_minutes", "drill_schedule", "owner", "wave_count",
                    "updated_at"]
    search_fields = ["name", "description"]
    inlines = [WaveInline, WaveActionInline]

    @admin.display(description="Waves")
    def wave_count(self, obj):
        return obj.waves.count()

    delete_services = DeleteServices(
        check=services.plan_delete_check, delete=services.plan_delete, keyword="plan"
    )

    def save_related(self, request, form, formsets, change):
        """Save the inline waves and actions, then hold the plan to the same rules as the pages and
        API (structure, and each action's kind and config); a violation rolls the whole save back
        and is reported next to the plan."""
        super().save_related(request, form, formsets, change)
        try:
            services.plan_stored_waves_check(plan=form.instance)
        except ValidationError as exc:
            raise AdminSaveRefused(exc) from exc

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except AdminSaveRefused as exc:
            for message in exc.messages:
                self.message_user(request, message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class AdminSaveRefused(ValidationError):
    """Raised inside the admin's transaction so that a plan or group the services refuse is not
    saved."""

    def __init__(self, exc):
        super().__init__(exc.messages)


class WatchRecordAdmin(admin.ModelAdmin):
    """What the worker's watch recorded is evidence: shown, never added, edited or deleted by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PlanReadinessEvaluation)
class PlanReadinessEvaluationAdmin(WatchRecordAdmin):
    list_display = ["plan", "sequence", "evaluated_at", "ready", "error_count", "warning_count", "notified"]
    list_filter = ["ready", "notified"]
    search_fields = ["plan__name"]
    date_hierarchy = "evaluated_at"


@admin.register(PlanOverdueNotice)
class PlanOverdueNoticeAdmin(WatchRecordAdmin):
    list_display = ["plan", "day", "sent_at"]
    search_fields = ["plan__name"]
    date_hierarchy = "day"
