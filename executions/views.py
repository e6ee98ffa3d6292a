"""Pages of executions: the dashboard, the history, the live detail, the evidence report,
and a plan's own page (its readiness, its executions and the forms that start it).

Views only read; every change of an execution goes through executions.services.
"""

import uuid

from botocore.exceptions import BotoCoreError, ClientError
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Prefetch, Q, Subquery
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import slugify
from django.views import View

from drsorch.roles import ACTION_PERMISSIONS
from drsorch.web import RoleRequiredMixin, filtered_page, whole_number
from plans.models import RecoveryPlan, SourceServer
from plans.schedules import next_drill_times
from plans.selectors import (
    last_readiness_evaluation,
    plan_drill_age,
    plan_readiness_evaluations,
    plans_with_drill_age,
    prefetch_last_readiness_evaluation,
)
from plans.services import plan_wave_specs
from plans.templatetags.plan_ui import wave_diagram_data
from plans.views import PlanListView as PlanOnlyListView

from . import services
from .choices import (
    EXECUTION_ACTIVE,
    EXECUTION_RETRYABLE,
    EXECUTION_TERMINAL,
    LAUNCH_TERMINAL,
    ActionStatus,
    ExecutionMode,
    ExecutionStatus,
    LaunchPhase,
    LaunchStatus,
    WaveStatus,
)
from .exceptions import ExecutionError, PlanAlreadyRunning, PlanNotReady, ServerBusy
from .filtersets import EventLogFilterSet, ExecutionHistoryFilterSet
from .forms import ActionCommentForm, StartForm
from .models import ActionRun, Execution, ExecutionEvent, ServerLaunch, WaveRun
from .readiness import plan_readiness
from .reports.evidence import execution_report
from .reports.pdf import report_pdf
from .reports.spreadsheet import report_csv
from .selectors import TREND_LIMIT, drills_left_running, plan_trend, plans_failed_over, scheduled_drill_runs
from .trends import trend_chart, trend_run, trend_summary
from .unattended.instance_ttl import drill_instances_expiry_shown

LAG_ALERT_SECONDS = 15 * 60
EVENT_PAGE_SIZE = 50
LAGGING_LIMIT = 20
# How many readiness-watch evaluations the plan page lists.
EVALUATION_HISTORY = 10
# What the detail, its partial and the report show of a launch: loading only these keeps
# building 1,000 rows cheap.
LAUNCH_FIELDS = [
    "execution_id",
    "wave_run_id",
    "source_server_id",
    "hostname",
    "critical",
    "status",
    "phase",
    "recovery_instance_id",
    "post_launch_status",
    "launched_at",
    "error",
    "job__job_id",
    "job__drs_created_at",
]


# --- Dashboard ---------------------------------------------------------------------------------


def running_executions():
    """Active executions with their launch counts and waves, in three queries."""
    return list(
        Execution.objects.filter(status__in=EXECUTION_ACTIVE)
        .annotate(
            launch_total=Count("server_launches"),
            launch_done=Count("server_launches", filter=Q(server_launches__status__in=LAUNCH_TERMINAL)),
        )
        .prefetch_related(Prefetch("wave_runs", queryset=WaveRun.objects.order_by("index")))
        .order_by("-created_at")
    )


class DashboardView(RoleRequiredMixin, View):
    """Running executions, failed-over plans, drills whose instances still run, every plan's
    last drill, readiness, drill age (OVERDUE) and last readiness-watch evaluation, and
    inventory health."""

    permission_required = ("executions.view_execution", "plans.view_recoveryplan")

    def get(self, request):
        last_drill = (
            Execution.objects.filter(plan=OuterRef("pk"), mode=ExecutionMode.DRILL, status__in=EXECUTION_TERMINAL)
            .order_by("-created_at")
            .values("pk")[:1]
        )
        last_recovery = (
            Execution.objects.filter(plan=OuterRef("pk"), mode=ExecutionMode.RECOVERY, status__in=EXECUTION_TERMINAL)
            .order_by("-created_at")
            .values("pk")[:1]
        )
        plans = list(
            plans_with_drill_age(RecoveryPlan.objects.all())
            .annotate(last_drill_id=Subquery(last_drill), last_recovery_id=Subquery(last_recovery))
            .prefetch_related(prefetch_last_readiness_evaluation())
        )
        ended = Execution.objects.in_bulk([pk for p in plans for pk in (p.last_drill_id, p.last_recovery_id) if pk])
        failed_over = plans_failed_over()
        rpo_lagging = {}
        now = timezone.now()
        for plan in plans:
            plan.drill_age = plan_drill_age(plan, now=now)
            plan.last_evaluation = last_readiness_evaluation(plan)
            plan.last_drill = ended.get(plan.last_drill_id)
            plan.last_recovery = ended.get(plan.last_recovery_id)
            plan.failed_over = failed_over.get(plan.pk)
            plan.readiness = plan_readiness(plan=plan, live=False)
            for check in plan.readiness.checks:
                if check.code == "lag_above_rpo" and check.server is not None:
                    rpo_lagging.setdefault(check.server.pk, (check.server, []))[1].append(plan)
        states = list(
            SourceServer.objects.filter(in_drs=True)
            .values("replication_state")
            .annotate(count=Count("pk"))
            .order_by("-count")
        )
        lagging = SourceServer.objects.filter(in_drs=True, lag_seconds__gt=LAG_ALERT_SECONDS).select_related("target")
        return render(
            request,
            "executions/dashboard.html",
            {
                "running": running_executions(),
                "plans": plans,
                "failed_over": [plan for plan in plans if plan.failed_over],
                "drills_left_running": drills_left_running(),
                "can_cleanup": request.user.has_perm(ACTION_PERMISSIONS["cleanup"]),
                "states": states,
                "server_total": sum(row["count"] for row in states),
                "healthy_total": sum(row["count"] for row in states if row["replication_state"] == "CONTINUOUS"),
                "lagging": list(lagging.order_by("-lag_seconds")[:LAGGING_LIMIT]),
                "lagging_count": lagging.count(),
                "rpo_lagging": sorted(rpo_lagging.values(), key=lambda item: -(item[0].lag_seconds or 0)),
                "lag_alert_minutes": LAG_ALERT_SECONDS // 60,
                "lag_alert_seconds": LAG_ALERT_SECONDS,
            },
        )


class DashboardRunningView(RoleRequiredMixin, View):
    """htmx partial of the dashboard: running executions, polled every few seconds."""

    permission_required = "executions.view_execution"

    def get(self, request):
        return render(request, "executions/_running.html", {"running": running_executions()})


# --- History -----------------------------------------------------------------------------------


class ExecutionListView(RoleRequiredMixin, View):
    """Execution history filtered by plan, mode, status and date."""

    permission_required = "executions.view_execution"

    def get(self, request):
        filterset = ExecutionHistoryFilterSet(request.GET or None, queryset=Execution.objects.order_by("-created_at"))
        page, status = filtered_page(request, filterset)
        return render(
            request,
            "executions/execution_list.html",
            {
                "filterset": filterset,
                "page": page,
            },
            status=status,
        )


# --- Detail ------------------------------------------------------------------------------------


def was_launched(launch):
    """Launched, including drill instances terminated since by a clean-up."""
    return launch.status == LaunchStatus.LAUNCHED or (
        launch.status == LaunchStatus.TERMINATED and launch.launched_at is not None
    )


def event_log_context(request, execution):
    """The execution page's event log: a page of EVENT_PAGE_SIZE events, newest first, chosen
    by the request's query (EventLogFilterSet: kind, people, before), in one query.

    `query` is that query, for the live partial's polling URL, so a refresh keeps the reader's
    view and page; an invalid value lists nothing and the log says what was wrong."""
    filterset = EventLogFilterSet(
        request.GET or None,
        queryset=ExecutionEvent.objects.filter(execution=execution).order_by("-created_at", "-pk"),
    )
    valid = not filterset.is_bound or filterset.is_valid()
    rows = list(filterset.qs[: EVENT_PAGE_SIZE + 1]) if valid else []
    events = rows[:EVENT_PAGE_SIZE]
    data = filterset.form.cleaned_data if filterset.is_bound and valid else {}
    kept = request.GET.copy()
    for name in set(kept) - {"kind", "people", "before"}:
        del kept[name]
    people, kinds = data.get("people"), data.get("kind") or []
    return {
        "filterset": filterset,
        "valid": valid,
        "events": events,
        "older": events[-1].pk if len(rows) > EVENT_PAGE_SIZE else None,
        "paged": data.get("before") is not None,
        "people": people is True,
        "kinds": kinds,
        "filtered": people is not None or bool(kinds),
        "query": kept.urlencode(),
    }


def execution_detail_context(request, pk):
    """Everything the detail page and its live partial show, in a fixed number of queries
    whatever the number of servers: the execution, its waves, its launches (with their DRS
    job) and a page of its event log."""
    execution = get_object_or_404(Execution.objects.select_related("plan"), pk=pk)
    now = timezone.now()
    waves = list(WaveRun.objects.filter(execution=execution).select_related("approved_by").order_by("index"))
    launches = list(
        ServerLaunch.objects.filter(execution=execution)
        .select_related("job")
        .only(*LAUNCH_FIELDS)
        .order_by("wave_run__index", "hostname", "source_server_id")
    )
    event_log = event_log_context(request, execution)

    by_wave = {wave.pk: [] for wave in waves}
    for launch in launches:
        by_wave.setdefault(launch.wave_run_id, []).append(launch)
    for wave in waves:
        wave.launches = by_wave.get(wave.pk, [])
        wave.total = len(wave.launches)
        wave.launched = sum(1 for item in wave.launches if was_launched(item))
        wave.failed = sum(1 for item in wave.launches if item.status == LaunchStatus.FAILED)
        done = sum(1 for item in wave.launches if item.status in LAUNCH_TERMINAL)
        wave.percent = round(100 * done / wave.total) if wave.total else (100 if wave.is_terminal else 0)
        wave.ok_percent = round(100 * wave.launched / wave.total) if wave.total else 0
        wave.failed_percent = round(100 * wave.failed / wave.total) if wave.total else 0
        wave.duration = ((wave.finished_at or now) - wave.started_at).total_seconds() if wave.started_at else None
        for launch in wave.launches:
            launch.wave = wave

    user = request.user
    # Only an execution whose waves have actions reads them (the page's query count stays fixed).
    can_complete = user.has_perm(ACTION_PERMISSIONS["approve"])
    action_runs = (
        list(ActionRun.objects.filter(execution=execution))
        if any(wave.before_actions or wave.after_actions for wave in waves)
        else []
    )
    for wave in waves:
        wave.actions_shown = [run for run in action_runs if run.wave_run_id == wave.pk]
        for run in wave.actions_shown:
            run.completable = can_complete and run.kind == "manual" and run.status == ActionStatus.WAITING

    elapsed = execution.elapsed_seconds(now)
    rto_seconds = execution.rto_target_minutes * 60
    active = execution.status in EXECUTION_ACTIVE
    has_instances = any(
        item.recovery_instance_id and item.status == LaunchStatus.LAUNCHED and item.phase != LaunchPhase.TERMINATING
        for item in launches
    )
    actions = {
        "approve": [wave for wave in waves if wave.status == WaveStatus.WAITING_APPROVAL]
        if user.has_perm(ACTION_PERMISSIONS["approve"])
        else [],
        "cancel": active
        and execution.status != ExecutionStatus.CANCELLING
        and user.has_perm(ACTION_PERMISSIONS["cancel"]),
        "retry": execution.status in EXECUTION_RETRYABLE and services.retry_allowed(user=user, execution=execution),
        "cleanup": execution.is_drill
        and execution.is_terminal
        and not execution.cleaned_up_at
        and has_instances
        and user.has_perm(ACTION_PERMISSIONS["cleanup"]),
    }
    # A clean-up runs after the execution ended: the page keeps polling until it is over.
    terminating = sum(1 for item in launches if item.phase == LaunchPhase.TERMINATING)
    terminated = sum(1 for item in launches if item.status == LaunchStatus.TERMINATED)
    instances_running = any(
        item.status == LaunchStatus.LAUNCHED and item.phase != LaunchPhase.TERMINATING for item in launches
    )
    return {
        "execution": execution,
        "waves": waves,
        "launches": launches,
        "event_log": event_log,
        "now": now,
        "active": active,
        "polling": active or bool(terminating),
        "cleanup": {"running": bool(terminating), "terminated": terminated, "total": terminated + terminating},
        "ttl_expires_at": drill_instances_expiry_shown(execution=execution, instances_running=instances_running),
        "elapsed": elapsed,
        "rto_seconds": rto_seconds,
        "rto_percent": min(100, round(100 * elapsed / rto_seconds)) if rto_seconds else 0,
        "over_rto": elapsed > rto_seconds,
        "actions": actions,
        "any_action": bool(actions["approve"]) or any(actions[k] for k in ("cancel", "retry", "cleanup")),
        "launch_counts": {
            "total": len(launches),
            "launched": sum(1 for item in launches if was_launched(item)),
            "failed": sum(1 for item in launches if item.status == LaunchStatus.FAILED),
        },
    }


class ExecutionDetailView(RoleRequiredMixin, View):
    """The live page of one execution: polls its partial while the execution is active."""

    permission_required = "executions.view_execution"

    def get(self, request, pk):
        context = execution_detail_context(request, pk)
        status = 200 if context["event_log"]["valid"] else 400
        return render(request, "executions/execution_detail.html", context, status=status)


class ExecutionLiveView(RoleRequiredMixin, View):
    """htmx partial of the detail page, replaced every few seconds; once the execution has
    ended it is returned without its polling trigger, so polling stops. Always a 200, even for
    an invalid event-log query (the log says what was wrong): htmx swaps no 4xx answer, and
    the rest of the page must go on updating."""

    permission_required = "executions.view_execution"

    def get(self, request, pk):
        return render(request, "executions/_live.html", execution_detail_context(request, pk))


class ExecutionReportView(RoleRequiredMixin, View):
    """The printable evidence report of one execution, for auditors."""

    permission_required = "executions.view_execution"

    def get(self, request, pk):
        return render(request, "executions/execution_report.html", {"report": execution_report(execution_id=pk)})


def report_filename(report, extension):
    """`drill-demo-plan-2026-12-02-0b1c2d3e.pdf`: mode, plan, day and the execution's id prefix."""
    execution = report.execution
    day = (execution.started_at or execution.created_at).strftime("%Y-%m-%d")
    plan = slugify(execution.plan_name) or "plan"
    return f"{execution.mode.lower()}-{plan}-{day}-{str(execution.pk)[:8]}.{extension}"


class ExecutionReportFileView(RoleRequiredMixin, View):
    """The evidence report as a file to keep or send: a PDF, or CSV (one row per launch
    attempt of every server)."""

    permission_required = "executions.view_execution"
    extension = content_type = disposition = ""
    render_report = None

    def get(self, request, pk):
        report = execution_report(execution_id=pk, event_log=False)
        response = HttpResponse(self.render_report(report), content_type=self.content_type)
        response["Content-Disposition"] = f'{self.disposition}; filename="{report_filename(report, self.extension)}"'
        return response


class ExecutionReportPdfView(ExecutionReportFileView):
    """The evidence report as a PDF, to file or send to the auditors."""

    extension, content_type, disposition = "pdf", "application/pdf", "inline"
    render_report = staticmethod(report_pdf)


class ExecutionReportCsvView(ExecutionReportFileView):
    """The evidence report as CSV: one row per launch attempt of every server."""

    extension, content_type, disposition = "csv", "text/csv; charset=utf-8", "attachment"
    render_report = staticmethod(report_csv)


# --- Actions -----------------------------------------------------------------------------------

DONE = {
    "approve": "Approved",
    "cancel": "Cancellation requested",
    "retry": "Retry started",
    "cleanup": "Clean-up started",
}


class ExecutionActionView(RoleRequiredMixin, View):
    """Approve a gate, cancel, retry or clean up, through the execution services.

    Approving and cancelling are confirmed first: GET shows the confirmation page with its
    comment box, and its POST acts. A RECOVERY needs the comment (services.comment_check)."""

    action = None
    CONFIRMED = ("approve", "cancel")

    def get_permission_required(self):
        return [ACTION_PERMISSIONS[self.action]]

    def _comment_form(self, execution, data=None, initial=None):
        recovery = execution.mode == ExecutionMode.RECOVERY
        why = "to approve a gate of a RECOVERY" if self.action == "approve" else "to cancel a RECOVERY"
        return ActionCommentForm(data, initial=initial, required=recovery, why=why)

    def _confirm_page(self, request, execution, form, status=200):
        waves = []
        if self.action == "approve":
            waves = list(execution.wave_runs.filter(status=WaveStatus.WAITING_APPROVAL).order_by("index"))
            index = form["wave_index"].value()
            index = whole_number(index) if index not in (None, "") else None
            if index is not None:
                waves = [wave for wave in waves if wave.index == index]
        return render(
            request,
            "executions/confirm_action.html",
            {"execution": execution, "action": self.action, "form": form, "waves": waves},
            status=status,
        )

    def get(self, request, pk):
        if self.action not in self.CONFIRMED:
            return HttpResponseNotAllowed(["POST"])
        execution = get_object_or_404(Execution, pk=pk)
        initial = {}
        if self.action == "approve":
            initial["wave_index"] = whole_number(request.GET.get("wave_index", ""), maximum=32767)
        return self._confirm_page(request, execution, self._comment_form(execution, initial=initial))

    def post(self, request, pk):
        execution = get_object_or_404(Execution, pk=pk)
        kwargs = {"execution": execution, "user": request.user}
        if self.action in self.CONFIRMED:
            form = self._comment_form(execution, data=request.POST)
            if not form.is_valid():
                return self._confirm_page(request, execution, form, status=400)
            kwargs["comment"] = form.cleaned_data["comment"]
            if self.action == "approve":
                kwargs["wave_index"] = form.cleaned_data["wave_index"]
        try:
            getattr(services, f"execution_{self.action}")(**kwargs)
        except ExecutionError as exc:
            messages.error(request, exc.message)
        except (BotoCoreError, ClientError) as exc:
            messages.error(request, f"DRS refused the request: {exc}")
        else:
            messages.success(request, f"{DONE[self.action]}.")
        return redirect(execution)


class ExecutionActionCompleteView(RoleRequiredMixin, View):
    """Complete a manual wave action (an Operator: the permission to approve gates): GET shows
    the confirmation page with the action's instructions and the comment box (required), its
    POST completes it through services.execution_action_complete."""

    def get_permission_required(self):
        return [ACTION_PERMISSIONS["approve"]]

    def _page(self, request, execution, run, form, status=200):
        return render(
            request,
            "executions/confirm_action.html",
            {
                "execution": execution,
                "action": "complete",
                "action_run": run,
                "form": form,
                "form_url": reverse("executions:action_complete", args=[execution.pk, run.name]),
                "waves": [],
            },
            status=status,
        )

    def _form(self, data=None):
        return ActionCommentForm(data, required=True, why="to complete a manual action")

    def get(self, request, pk, name):
        execution = get_object_or_404(Execution, pk=pk)
        run = get_object_or_404(ActionRun.objects.select_related("wave_run"), execution=execution, name=name)
        return self._page(request, execution, run, self._form())

    def post(self, request, pk, name):
        execution = get_object_or_404(Execution, pk=pk)
        run = get_object_or_404(ActionRun.objects.select_related("wave_run"), execution=execution, name=name)
        form = self._form(request.POST)
        if not form.is_valid():
            return self._page(request, execution, run, form, status=400)
        try:
            services.execution_action_complete(
                execution=execution, name=name, user=request.user, comment=form.cleaned_data["comment"]
            )
        except ExecutionError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Completed '{name}'; the wave moves on.")
        return redirect(execution)


# --- A plan's page: readiness, executions, start ----------------------------------------------
# The page of a plan lives here, above both apps, because it shows the full readiness (which
# needs executions), the plan's executions and the forms that start one. Its URLs keep their
# names in the "plans" namespace (see plan_urlpatterns in executions/urls.py).


class PlanListView(PlanOnlyListView):
    """The plan list with each plan's FAILED OVER state (plans_failed_over), which the plans
    app cannot read: served from here as plans:plan_list."""

    def describe_plans(self, plans):
        super().describe_plans(plans)
        failed_over = plans_failed_over(plan_ids=[plan.pk for plan in plans])
        for plan in plans:
            plan.failed_over = failed_over.get(plan.pk)


class PlanDetailView(RoleRequiredMixin, View):
    """A plan: the wave diagram, targets, readiness checks, trends, recent executions, start forms."""

    permission_required = "plans.view_recoveryplan"

    def get(self, request, pk):
        plan = get_object_or_404(RecoveryPlan, pk=pk)
        return render_plan_detail(request, plan)


# Refreshing the inventory from DRS is a write: for those who may start or edit the plan.
REFRESH_PERMISSIONS = (
    ACTION_PERMISSIONS["start_drill"],
    ACTION_PERMISSIONS["start_recovery"],
    "plans.change_recoveryplan",
)


def can_refresh_readiness(user):
    """Whether `user` may refresh the inventory from DRS on the plan page."""
    return any(user.has_perm(permission) for permission in REFRESH_PERMISSIONS)


def plan_trends(plan):
    """The plan page's trend charts: achieved RTO and worst RPO of its last ended executions
    (oldest first) against its targets, a line per mode on how many met them, and the runs
    themselves for the table beside the charts; one query."""
    runs = [trend_run(execution) for execution in plan_trend(plan=plan)]
    return {
        "runs": runs,
        "newest_first": runs[::-1],
        "limit": TREND_LIMIT,
        "summary": trend_summary(runs),
        "charts": [
            trend_chart(runs=runs, measure="rto", target_minutes=plan.rto_target_minutes),
            trend_chart(runs=runs, measure="rpo", target_minutes=plan.rpo_target_minutes),
        ],
    }


# The plan page lists the last few slots the schedule took; the API pages through all of them.
SCHEDULED_RUNS_SHOWN = 10


def render_plan_detail(request, plan, *, report=None, start_form=None, start_error=None, status=200):
    """The plan page, with the start form that was posted (and its errors) when there is one.

    A GET of the page writes nothing: readiness reads the stored inventory and asks DRS, read
    only, for active jobs; the "Refresh from DRS" button POSTs for a fresh inventory."""
    specs = plan_wave_specs(plan=plan)
    readiness_error = None
    if report is None:
        try:
            report = plan_readiness(plan=plan, live=True)
        except (BotoCoreError, ClientError) as exc:
            readiness_error = f"DRS could not be asked ({exc}); showing checks from stored data."
            report = plan_readiness(plan=plan, live=False)
    executions = plan.executions.order_by("-created_at")[:10]
    running = plan.executions.active().first()
    key = str(uuid.uuid4())
    return render(
        request,
        "plans/plan_detail.html",
        status=status,
        context={
            "plan": plan,
            "specs": specs,
            "diagram": wave_diagram_data(specs),
            "report": report,
            "readiness_error": readiness_error,
            "executions": executions,
            "running": running,
            "failed_over": plans_failed_over(plan_ids=[plan.pk]).get(plan.pk),
            "trends": plan_trends(plan),
            "next_drills": next_drill_times(plan, now=timezone.now(), count=3),
            "drill_age": plan_drill_age(plan, now=timezone.now()),
            "evaluations": list(plan_readiness_evaluations(plan=plan)[:EVALUATION_HISTORY]),
            "scheduled_runs": list(scheduled_drill_runs(plan=plan)[:SCHEDULED_RUNS_SHOWN]),
            "can_start_drill": request.user.has_perm(ACTION_PERMISSIONS["start_drill"]),
            "can_start_recovery": request.user.has_perm(ACTION_PERMISSIONS["start_recovery"]),
            "drill_form": start_form
            if start_form and start_form.data.get("mode") == "DRILL"
            else StartForm(plan=plan, initial={"mode": "DRILL", "idempotency_key": key}),
            "recovery_form": start_form
            if start_form and start_form.data.get("mode") == "RECOVERY"
            else StartForm(plan=plan, initial={"mode": "RECOVERY", "idempotency_key": key + "-r"}),
            "start_error": start_error,
            "can_refresh": can_refresh_readiness(request.user),
            "targets": sorted({server.target.name for server in report.servers}),
            "server_count": len(report.servers),
        },
    )


class PlanReadinessRefreshView(RoleRequiredMixin, View):
    """ "Refresh from DRS": sync the inventory of the plan's targets, then show its readiness
    (the readiness card for htmx, else back to the plan page)."""

    permission_required = "plans.view_recoveryplan"

    def post(self, request, pk):
        plan = get_object_or_404(RecoveryPlan, pk=pk)
        if not can_refresh_readiness(request.user):
            raise PermissionDenied
        report = plan_readiness(plan=plan, refresh=True)
        if request.headers.get("HX-Request"):
            return render(request, "plans/_readiness.html", {"plan": plan, "report": report, "can_refresh": True})
        messages.success(request, "Refreshed the inventory from DRS.")
        return redirect(f"{plan.get_absolute_url()}#readiness")


class PlanStartView(RoleRequiredMixin, View):
    """Start a drill (start_drill) or a recovery (start_recovery, confirmed by the plan's name)."""

    permission_required = "plans.view_recoveryplan"

    def post(self, request, pk):
        plan = get_object_or_404(RecoveryPlan, pk=pk)
        form = StartForm(request.POST, plan=plan)
        needed = services.START_PERMISSION.get(request.POST.get("mode"))
        if needed and not request.user.has_perm(needed):
            raise PermissionDenied
        if not form.is_valid():
            return render_plan_detail(request, plan, start_form=form, status=400)
        data = form.cleaned_data
        try:
            execution = services.execution_start(
                plan=plan,
                mode=data["mode"],
                requested_by=request.user,
                auto_approve=data["auto_approve"],
                idempotency_key=data["idempotency_key"] or None,
                accept_risks=data["accept_risks"],
                point_in_time=data["point_in_time"],
                comment=data["comment"],
            )
        except PlanNotReady as exc:
            error = (
                "The plan has risks; nothing was started. To start anyway, tick \u201cAccept these risks\u201d:"
                if exc.only_risks
                else "The plan is not ready; nothing was started. Fix these first:"
            )
            return render_plan_detail(request, plan, report=exc.report, start_form=form, status=400, start_error=error)
        except (PlanAlreadyRunning, ServerBusy) as exc:
            # Both name the drsorch execution that holds the plan or the server: link it.
            messages.error(
                request,
                format_html(
                    '{} <a href="{}">{}</a>.',
                    exc.message,
                    exc.execution.get_absolute_url(),
                    "Open the running execution"
                    if isinstance(exc, PlanAlreadyRunning)
                    else "Open the execution that holds the server",
                ),
            )
            return redirect(plan)
        except ExecutionError as exc:
            messages.error(request, exc.message)
            return redirect(plan)
        messages.success(request, f"Started the {execution.get_mode_display().lower()} of '{plan.name}'.")
        return HttpResponseRedirect(execution.get_absolute_url())
