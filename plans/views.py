"""Pages of the inventory, protection groups and recovery plans.

Views parse input with plans.forms and call plans.services; they never write a model
themselves. The plan's own page (readiness, executions, the start forms) is composed in
executions.views, which may see both apps.
"""

import logging
import re

from botocore.exceptions import BotoCoreError, ClientError
from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import Count, Max, Q
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View

from drsorch.web import RoleRequiredMixin, filtered_page, search_text, whole_number, whole_numbers

from .filtersets import ProtectionGroupFilterSet, RecoveryPlanFilterSet, SourceServerFilterSet
from .forms import (
    ProtectionGroupForm,
    RecoveryPlanForm,
    ServerSyncForm,
    WaveActionForm,
    WaveFormSet,
    action_row_initial,
    apply_service_errors,
    new_wave_initial,
    optional_server_rows,
    parse_tag_selector,
    plan_service_errors,
    wave_initial,
)
from .models import (
    ProtectionGroup,
    RecoveryPlan,
    SourceServer,
    Target,
    Wave,
    servers_matching_tags,
    validate_tag_selector,
)
from .selectors import plan_drill_age, plans_with_drill_age, server_groups
from .services import (
    plan_delete,
    plan_delete_refusal,
    plan_save,
    plan_wave_specs,
    protection_group_delete,
    protection_group_delete_refusal,
    protection_group_save,
    source_servers_sync,
    target_connection_test,
    wave_action_secrets_keep,
)

logger = logging.getLogger(__name__)

PICKER_LIMIT = 200
PREVIEW_LIMIT = 25


# --- Inventory --------------------------------------------------------------------------------------

class ServerListView(RoleRequiredMixin, View):
    """The source-server inventory, filtered by SourceServerFilterSet and paginated."""

    permission_required = "plans.view_sourceserver"

    def get(self, request):
        filterset = SourceServerFilterSet(
            request.GET or None, queryset=SourceServer.objects.select_related("target", "membership__group")
        )
        page, status = filtered_page(request, filterset)
        groups = server_groups(page.object_list)
        for server in page.object_list:
            server.groups = groups[server.pk]
        return render(request, "plans/server_list.html", {
            "filterset": filterset, "page": page, "sync_form": ServerSyncForm(),
        }, status=status)


class ServerSyncView(RoleRequiredMixin, View):
    """Refresh the inventory from DRS for one target or all of them (Planners)."""

    permission_required = "plans.change_sourceserver"

    def post(self, request):
        form = ServerSyncForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose a target to sync, or all targets.")
            return redirect("plans:server_list")
        targets = [form.cleaned_data["target"]] if form.cleaned_data["target"] else list(Target.objects.all())
        if not targets:
            messages.warning(request, "There is no target to sync yet; add one in the admin.")
        for target in targets:
            try:
                result = source_servers_sync(target=target)
            except (BotoCoreError, ClientError) as exc:
                logger.warning("Sync of target %s failed: %s", target.name, exc)
                messages.error(request, f"Could not sync target '{target.name}': {exc}")
                continue
            if result.uninitialized:
                messages.warning(request, f"DRS is not initialized for target '{target.name}'; it has no servers.")
            else:
                messages.success(
                    request,
                    f"Synced target '{target.name}': {result.created} new, {result.updated} updated, "
                    f"{result.missing} no longer in DRS.",
                )
        return redirect(_local_url(request, request.POST.get("next")) or reverse("plans:server_list"))


def _local_url(request, url: str | None) -> str | None:
    """`url` when it points into this site, else None: a `next` from a form is the
    requester's to choose, and must never send a signed-in user to another site."""
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
        return url
    return None


# --- Protection groups ----------------------------------------------------------------------------

class GroupListView(RoleRequiredMixin, View):
    """Protection groups, filtered by name and target."""

    permission_required = "plans.view_protectiongroup"

    def get(self, request):
        queryset = ProtectionGroup.objects.select_related("target").annotate(
            explicit_count=Count("memberships", distinct=True), wave_count=Count("waves", distinct=True)
        ).order_by("name")
        filterset = ProtectionGroupFilterSet(request.GET or None, queryset=queryset)
        page, status = filtered_page(request, filterset)
        return render(request, "plans/group_list.html", {"filterset": filterset, "page": page}, status=status)


class GroupDetailView(RoleRequiredMixin, View):
    """A protection group: its servers (explicit and by tag) and the plans using it."""

    permission_required = "plans.view_protectiongroup"

    def get(self, request, pk):
        group = get_object_or_404(ProtectionGroup.objects.select_related("target"), pk=pk)
        explicit = set(group.memberships.values_list("server_id", flat=True))
        servers = list(group.resolved_servers())
        waves = Wave.objects.filter(protection_groups=group).select_related("plan").order_by("plan__name", "order")
        return render(request, "plans/group_detail.html", {
            "group": group, "servers": servers, "explicit": explicit, "waves": waves,
        })


class GroupFormView(RoleRequiredMixin, View):
    """Create or edit a protection group through protection_group_save."""

    def get_permission_required(self):
        return ["plans.change_protectiongroup" if "pk" in self.kwargs else "plans.add_protectiongroup"]

    def get_group(self):
        if "pk" in self.kwargs:
            return get_object_or_404(ProtectionGroup, pk=self.kwargs["pk"])
        return None

    def get(self, request, pk=None):
        group = self.get_group()
        initial = None
        target = whole_number(request.GET.get("target"))
        if group is None and target is not None:
            initial = {"target": target}
        form = ProtectionGroupForm(group=group, initial=initial) if initial else ProtectionGroupForm(group=group)
        return self.render_form(form, group)

    def post(self, request, pk=None):
        group = self.get_group()
        form = ProtectionGroupForm(request.POST, group=group)
        if form.is_valid():
            data = form.cleaned_data
            try:
                group = protection_group_save(
                    group=group, name=data["name"], target=data["target"], description=data["description"],
                    servers=data["servers"], tag_selector=data["tag_selector"],
                )
            except ValidationError as exc:
                apply_service_errors(form, exc)
            else:
                messages.success(request, f"Saved protection group '{group.name}'.")
                return redirect(group)
        return self.render_form(form, group, status=400)

    def render_form(self, form, group, status=200):
        target_id = form.selected_target_id()
        return render(request=self.request, template_name="plans/group_form.html", status=status, context={
            "form": form, "group": group,
            "picker": server_picker_context(target_id, form.selected_server_ids(), "", group),
        })


def server_picker_context(target_id, selected_ids, query, group=None):
    """The checkbox list of the server picker: ticked servers first, then matches of `query`."""
    if not target_id:
        return {"target_id": None, "rows": [], "more": 0, "query": query}
    base = SourceServer.objects.filter(target_id=target_id).select_related("membership__group")
    selected = list(base.filter(pk__in=selected_ids))
    matches = base.exclude(pk__in=selected_ids)
    if query:
        matches = matches.filter(Q(hostname__icontains=query) | Q(drs_id__icontains=query))
    total = matches.count()
    rows = [(server, True) for server in selected] + [(server, False) for server in matches[:PICKER_LIMIT]]
    group_pk = group.pk if group else None
    return {
        "target_id": target_id, "query": query, "more": max(0, total - PICKER_LIMIT),
        "rows": [
            {"server": server, "checked": checked,
             "taken_by": (server.membership.group if hasattr(server, "membership")
                          and server.membership.group_id != group_pk else None)}
            for server, checked in rows
        ],
    }


class ServerPickerView(RoleRequiredMixin, View):
    """htmx partial: the server checkboxes of a target, filtered by a search."""

    permission_required = "plans.view_sourceserver"

    def get(self, request):
        target = request.GET.get("target")
        group = None
        if (group_id := whole_number(request.GET.get("group"))) is not None:
            group = ProtectionGroup.objects.filter(pk=group_id).first()
        selected = whole_numbers(request.GET.getlist("servers"))
        context = server_picker_context(whole_number(target), selected, search_text(request.GET.get("q")), group)
        return render(request, "plans/_server_picker.html", {"picker": context})


class TagPreviewView(RoleRequiredMixin, View):
    """htmx partial: the servers of a target a tag selector matches, as it is typed."""

    permission_required = "plans.view_sourceserver"

    def get(self, request):
        target = whole_number(request.GET.get("target"))
        context = {"error": None, "servers": [], "count": 0, "selector": {}}
        try:
            selector = parse_tag_selector(request.GET.get("tag_selector", ""))
            # The values the group's own save refuses are never looked up (a NUL one would
            # reach PostgreSQL).
            validate_tag_selector(selector)
        except ValidationError as exc:
            context["error"] = exc.messages[0]
        else:
            context["selector"] = selector
            if selector and target is not None:
                matches = servers_matching_tags(SourceServer.objects.filter(target_id=target), selector)
                context["count"] = matches.count()
                context["servers"] = list(matches.order_by("hostname", "drs_id")[:PREVIEW_LIMIT])
        context["target_chosen"] = target is not None
        return render(request, "plans/_tag_preview.html", context)


class ServiceDeleteView(RoleRequiredMixin, View):
    """Confirm, then delete through a service that may refuse (its message is shown)."""

    model = None
    kind = ""  # shown on the confirmation page
    label = ""  # shown in the success message
    success_url = ""

    def delete(self, obj):
        raise ImproperlyConfigured(f"{type(self).__name__} must say which service deletes a {self.kind}.")

    def refusal(self, obj):
        """Why the service would refuse to delete `obj`, said before the click; None: it can go."""
        raise ImproperlyConfigured(f"{type(self).__name__} must say why a {self.kind} cannot be deleted.")

    def get(self, request, pk):
        obj = get_object_or_404(self.model, pk=pk)
        return render(request, "confirm_delete.html", {"object": obj, "kind": self.kind,
                                                       "refusal": self.refusal(obj),
                                                       "cancel_url": obj.get_absolute_url()})

    def post(self, request, pk):
        obj = get_object_or_404(self.model, pk=pk)
        try:
            self.delete(obj)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(obj)
        messages.success(request, f"Deleted {self.label} '{obj.name}'.")
        return redirect(self.success_url)


class GroupDeleteView(ServiceDeleteView):
    """Delete a protection group; protection_group_delete refuses groups used by plans."""

    permission_required = "plans.delete_protectiongroup"
    model, kind, label, success_url = ProtectionGroup, "protection group", "protection group", "plans:group_list"

    def delete(self, obj):
        protection_group_delete(group=obj)

    def refusal(self, obj):
        return protection_group_delete_refusal(group=obj)


# --- Recovery plans ------------------------------------------------------------------------------

class PlanListView(RoleRequiredMixin, View):
    """Recovery plans with their waves, last execution and drill age (OVERDUE)."""

    permission_required = "plans.view_recoveryplan"

    def get(self, request):
        queryset = plans_with_drill_age(RecoveryPlan.objects.annotate(wave_count=Count("waves")))
        queryset = queryset.prefetch_related("executions")
        queryset = queryset.order_by("name")
        filterset = RecoveryPlanFilterSet(request.GET or None, queryset=queryset)
        page, status = filtered_page(request, filterset)
        self.describe_plans(page.object_list)
        return render(request, "plans/plan_list.html", {"filterset": filterset, "page": page}, status=status)

    def describe_plans(self, plans):
        """Set what the list shows of each plan's executions: its last one. The list is served
        by executions.views.PlanListView, which adds each plan's failed-over state (plans
        never reads executions beyond the reverse relation)."""
        now = timezone.now()
        for plan in plans:
            # Executions point at their plan (related_name "executions"), newest first by their ordering.
            plan.last_execution = next(iter(plan.executions.all()), None)
            plan.drill_age = plan_drill_age(plan, now=now)


class PlanFormView(RoleRequiredMixin, View):
    """Create or edit a plan and its waves; plan_save validates the structure."""

    def get_permission_required(self):
        if "pk" in self.kwargs:
            return ["plans.change_recoveryplan"]
        return ["plans.add_recoveryplan"]

    def get_plan(self):
        return get_object_or_404(RecoveryPlan, pk=self.kwargs["pk"]) if "pk" in self.kwargs else None

    def get(self, request, pk=None):
        plan = self.get_plan()
        if plan is None:
            plan_form = RecoveryPlanForm()
            formset = WaveFormSet(prefix="waves", initial=[new_wave_initial(0)])
        else:
            plan_form = RecoveryPlanForm(instance=plan)
            formset = WaveFormSet(prefix="waves", initial=wave_initial(plan_wave_specs(plan=plan)))
        return self.render_form(plan, plan_form, formset)

    def post(self, request, pk=None):
        plan = self.get_plan()
        if "add_wave" in request.POST or "add_action" in request.POST:
            return self.render_form(plan, *self.with_new_wave(plan, request.POST))
        plan_form = RecoveryPlanForm(request.POST, instance=plan)
        formset = WaveFormSet(request.POST, prefix="waves")
        if plan_form.is_valid() and formset.is_valid():
            data = plan_form.cleaned_data
            waves = formset.wave_specs()
            wave_action_secrets_keep(plan=plan, waves=waves)
            try:
                plan = plan_save(
                    plan=plan, name=data["name"], description=data["description"],
                    rto_target_minutes=data["rto_target_minutes"], rpo_target_minutes=data["rpo_target_minutes"],
                    owner=request.user, waves=waves,
                    drill_schedule=data["drill_schedule"],
                    drill_instance_ttl_minutes=data["drill_instance_ttl_minutes"],
                    drill_max_age_days=data["drill_max_age_days"],
                    auto_approve=data["auto_approve"],
                )
            except ValidationError as exc:
                plan_service_errors(plan_form, formset, exc)
            else:
                messages.success(request, f"Saved plan '{plan.name}'.")
                return redirect(plan)
        return self.render_form(plan, plan_form, formset, status=400)

    def with_new_wave(self, plan, data):
        """Unbound forms holding what was typed, plus one new wave after the last ("add_wave"),
        or one new action row in the wave "add_action" names (the page without JavaScript)."""
        typed = {name: data.get(name) for name in RecoveryPlanForm.Meta.fields}
        plan_form = RecoveryPlanForm(instance=plan, initial=typed)
        bound = WaveFormSet(data, prefix="waves")
        kept = [form for form in bound.forms if not form.data.get(form.add_prefix("DELETE"))]
        new_position = {form.position: position for position, form in enumerate(kept)}
        initial = []
        for form in kept:
            values = {name: field.widget.value_from_datadict(data, None, form.add_prefix(name))
                      for name, field in form.fields.items() if name != "DELETE"}
            values["depends_on"] = [new_position[int(d)] for d in values.get("depends_on") or []
                                    if whole_number(d) in new_position]
            values["actions"] = form.actions.typed_initial()
            if data.get("add_action") == form.prefix:
                values["actions"].append({})
            initial.append(values)
        if "add_wave" in data:
            initial.append(new_wave_initial(len(initial)))
        return plan_form, WaveFormSet(prefix="waves", initial=initial)

    def render_form(self, plan, plan_form, formset, status=200):
        return render(self.request, "plans/plan_form.html", status=status, context={
            "plan": plan, "plan_form": plan_form, "formset": formset,
        })


WAVE_PREFIX = re.compile(r"waves-[0-9]{1,4}")


class WaveOptionalServersView(RoleRequiredMixin, View):
    """htmx partial of the plan form: a wave's optional-server checkboxes, limited to the
    servers of the protection groups ticked in that wave (`prefix`, e.g. waves-0)."""

    permission_required = ("plans.view_sourceserver", "plans.view_protectiongroup")

    def get(self, request):
        prefix = request.GET.get("prefix", "")
        if not WAVE_PREFIX.fullmatch(prefix):
            return HttpResponseBadRequest("prefix must name a wave of the form, e.g. waves-0.",
                                          content_type="text/plain")
        rows = optional_server_rows(
            group_ids=whole_numbers(request.GET.getlist(f"{prefix}-protection_groups")),
            ticked_ids=whole_numbers(request.GET.getlist(f"{prefix}-optional_servers")),
        )
        return render(request, "plans/_optional_servers.html", {"prefix": prefix, "rows": rows, "errors": []})


ACTION_ROW = re.compile(r"waves-[0-9]{1,4}-actions-[0-9]{1,4}")
# A wave holds at most this many action rows in the editor (a runbook, not a script).
MAX_ACTION_ROWS = 100


class WaveActionRowView(RoleRequiredMixin, View):
    """htmx partials of the plan form's action editor: a wave's new action row (`add_action`,
    the wave's prefix, with its actions' TOTAL_FORMS, which the answer raises out of band), a
    row shown again with the config fields of the kind just chosen (`row`, the row's prefix,
    with its fields), or the row removed (`row` and `remove`): a hidden DELETE in its place."""

    def has_permission(self):
        user = self.request.user
        return user.has_perm("plans.add_recoveryplan") or user.has_perm("plans.change_recoveryplan")

    def get(self, request):
        if "add_action" in request.GET:
            wave = request.GET.get("add_action", "")
            if not WAVE_PREFIX.fullmatch(wave):
                return HttpResponseBadRequest("add_action must name a wave of the form, e.g. waves-0.",
                                              content_type="text/plain")
            total = whole_number(request.GET.get(f"{wave}-actions-TOTAL_FORMS"), maximum=MAX_ACTION_ROWS)
            if total is None or total >= MAX_ACTION_ROWS:
                return HttpResponseBadRequest(f"A wave holds at most {MAX_ACTION_ROWS} action rows.",
                                              content_type="text/plain")
            form = WaveActionForm(prefix=f"{wave}-actions-{total}")
            return render(request, "plans/_action_row.html", {
                "action": form, "total": {"name": f"{wave}-actions-TOTAL_FORMS", "value": total + 1},
            })
        row = request.GET.get("row", "")
        if not ACTION_ROW.fullmatch(row):
            return HttpResponseBadRequest("row must name an action row of the form, e.g. waves-0-actions-0.",
                                          content_type="text/plain")
        if "remove" in request.GET:
            return render(request, "plans/_action_removed.html", {"prefix": row})
        form = WaveActionForm(prefix=row, initial=action_row_initial(request.GET, row))
        return render(request, "plans/_action_row.html", {"action": form})


class PlanDeleteView(ServiceDeleteView):
    """Delete a plan that never ran: plan_delete refuses plans with executions (evidence)."""

    permission_required = "plans.delete_recoveryplan"
    model, kind, label, success_url = RecoveryPlan, "recovery plan", "plan", "plans:plan_list"

    def delete(self, obj):
        plan_delete(plan=obj)

    def refusal(self, obj):
        return plan_delete_refusal(plan=obj)


# --- Targets -------------------------------------------------------------------------------------

# Testing a target's connection calls AWS as drsorch: for those who set targets up.
TEST_CONNECTION_PERMISSION = "plans.change_target"


def target_rows():
    """Targets with their inventory counts and last sync, in one query."""
    return Target.objects.annotate(
        server_count=Count("source_servers", filter=Q(source_servers__in_drs=True), distinct=True),
        group_count=Count("protection_groups", distinct=True),
        synced_at=Max("source_servers__synced_at"),
    ).order_by("name")


class TargetListView(RoleRequiredMixin, View):
    """The AWS accounts and regions (and the sandbox) drsorch drives DRS in."""

    permission_required = "plans.view_target"

    def get(self, request):
        return render(request, "plans/target_list.html", {"targets": list(target_rows())})


def render_target_detail(request, target, *, test=None):
    """A target's page: its settings, inventory by replication state, groups, and the
    connection test's result when one was just run."""
    context = {
        "target": target,
        "test": test,
        "can_test": request.user.has_perm(TEST_CONNECTION_PERMISSION),
    }
    if request.headers.get("HX-Request") and test is not None:
        return render(request, "plans/_connection_test.html", context)
    states = (
        SourceServer.objects.filter(target=target, in_drs=True)
        .values("replication_state")
        .annotate(count=Count("pk"))
        .order_by("-count")
    )
    context.update(
        states=list(states),
        groups=list(target.protection_groups.order_by("name")),
    )
    return render(request, "plans/target_detail.html", context)


class TargetDetailView(RoleRequiredMixin, View):
    """One target: where it is, how drsorch reaches it, its servers and groups."""

    permission_required = "plans.view_target"

    def get(self, request, pk):
        return render_target_detail(request, get_object_or_404(target_rows(), pk=pk))


class TargetTestConnectionView(RoleRequiredMixin, View):
    """ "Test connection": call the target once (STS, one DRS read) and say what works."""

    permission_required = TEST_CONNECTION_PERMISSION

    def post(self, request, pk):
        target = get_object_or_404(target_rows(), pk=pk)
        return render_target_detail(request, target, test=target_connection_test(target=target))
