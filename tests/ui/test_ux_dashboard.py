"""Issue 13's dashboard gaps, through the sandbox: a plan FAILED OVER after a recovery (plan
page, plan list, dashboard), drills whose instances still run (with a cost estimate and a
clean-up), recovery rows in the history, and the Targets pages with "Test connection"."""

import datetime as dt
import html
import re

import pytest
import time_machine
from django.urls import reverse

from drsorch.sandbox.services import sandbox_configure
from executions import engine
from executions.choices import ExecutionMode, ExecutionStatus, LaunchPhase, LaunchStatus
from executions.costs import ON_DEMAND_USD_PER_HOUR, hourly_cost_estimate
from executions.models import DrsJob, Execution, ServerLaunch
from executions.selectors import drills_left_running, plans_failed_over
from executions.services import execution_cleanup, execution_start
from executions.tasks import launch_budget_seconds
from plans.models import Target
from plans.services import target_connection_test

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

START = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def run(clock, make_user):
    """run(plan, mode) -> the execution, started by a Commander and ticked to its end."""
    commander = make_user(username="starter", role="Commander")

    def start(plan, mode, *, hours_after=0):
        execution = execution_start(plan=plan, mode=mode, requested_by=commander, auto_approve=True)
        for _ in range(200):
            engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
            execution.refresh_from_db()
            if execution.is_terminal:
                clock.shift(hours_after * 3600)
                return execution
            clock.shift(5)
        raise AssertionError(f"{execution} still {execution.status}")

    return start


def text(response):
    """A page's visible text, tags stripped and whitespace folded."""
    words = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())
    return re.sub(r" ([,.:)])", r"\1", words)


# --- 1. Failed over -----------------------------------------------------------------------------


def test_a_recovery_that_launched_marks_the_plan_failed_over_on_its_page(login, demo, run):
    recovery = run(demo["plan"], ExecutionMode.RECOVERY)
    assert recovery.status == ExecutionStatus.SUCCEEDED
    launches = list(recovery.server_launches.order_by("hostname"))
    page = login("Viewer").get(demo["plan"].get_absolute_url())
    body, words = page.content.decode(), text(page)
    assert 'id="failed-over"' in body and "FAILED OVER" in words
    for launch in launches:
        assert launch.recovery_instance_id and launch.recovery_instance_id in body
    assert "3 instances in target Sandbox test (account 123456789012, us-east-1)" in words
    assert "no clean-up for a recovery's instances" in words
    assert reverse("executions:report", args=[recovery.pk]) in body
    assert recovery.get_absolute_url() in body


def test_failed_over_is_on_the_dashboard_and_the_plan_list(login, demo, run):
    client = login("Viewer")
    assert "FAILED OVER" not in text(client.get(reverse("executions:dashboard")))
    assert "FAILED OVER" not in text(client.get(reverse("plans:plan_list")))
    recovery = run(demo["plan"], ExecutionMode.RECOVERY)
    dashboard = client.get(reverse("executions:dashboard"))
    words = text(dashboard)
    assert "FAILED OVER" in words and "ready" not in re.findall(r"\bready\b", words)
    assert reverse("executions:report", args=[recovery.pk]) in dashboard.content.decode()
    # The plans table names the last recovery too, not only the last drill.
    assert f'href="{recovery.get_absolute_url()}" title="Open this recovery"' in dashboard.content.decode()
    listing = client.get(reverse("plans:plan_list")).content.decode()
    assert "FAILED OVER" in listing and f"{demo['plan'].get_absolute_url()}#failed-over" in listing


def test_a_drill_or_a_recovery_that_launched_nothing_is_not_failed_over(demo, run):
    run(demo["plan"], ExecutionMode.DRILL)
    assert plans_failed_over() == {}
    sandbox_configure(deny=["StartRecovery"])
    recovery = run(demo["plan"], ExecutionMode.RECOVERY)
    assert recovery.status == ExecutionStatus.FAILED
    assert plans_failed_over() == {}


def test_failed_over_names_the_newest_recovery_that_launched(demo, run):
    first = run(demo["plan"], ExecutionMode.RECOVERY)
    # A later recovery that launched nothing leaves the first one's instances running.
    sandbox_configure(deny=["StartRecovery"])
    run(demo["plan"], ExecutionMode.RECOVERY)
    state = plans_failed_over(plan_ids=[demo["plan"].pk])[demo["plan"].pk]
    assert state.execution == first and len(state.instances) == 3
    sandbox_configure(deny=[])
    second = run(demo["plan"], ExecutionMode.RECOVERY)
    assert plans_failed_over()[demo["plan"].pk].execution == second


def test_no_clean_up_is_offered_or_allowed_for_recovery_instances(login, demo, run):
    recovery = run(demo["plan"], ExecutionMode.RECOVERY)
    client = login("Commander")
    assert "Clean up" not in text(client.get(recovery.get_absolute_url()))
    assert "Clean up" not in text(client.get(reverse("executions:dashboard")))
    response = client.post(reverse("executions:cleanup", args=[recovery.pk]), follow=True)
    assert "a recovery's instances are your production now" in text(response)
    api = client.post(f"/api/v1/executions/{recovery.pk}/cleanup/")
    assert api.status_code == 409
    admin = login(superuser=True).post(
        reverse("admin:executions_execution_changelist"),
        {"action": "cleanup", "_selected_action": [str(recovery.pk)]},
        follow=True,
    )
    assert "a recovery's instances are your production now" in text(admin)
    assert not DrsJob.objects.filter(execution=recovery, type="TERMINATE").exists()
    assert not recovery.server_launches.filter(phase=LaunchPhase.TERMINATING).exists()


# --- 2. Drills left running ---------------------------------------------------------------------


def test_cost_estimate_prices_known_types_and_names_the_others():
    estimate = hourly_cost_estimate(instance_types={"r5.large": 2, "t3.medium": 1, "x9.huge": 1, "": 2})
    assert estimate.usd_per_hour == pytest.approx(2 * 0.126 + 0.0416)
    assert estimate.unpriced == {"x9.huge": 1, "unknown type": 2}
    assert estimate.usd_for(10) == pytest.approx(10 * estimate.usd_per_hour)
    assert ON_DEMAND_USD_PER_HOUR["m5.large"] == 0.096


def test_drills_left_running_lists_instances_age_and_cost(login, make_sandbox_servers, sandbox_target, run):
    from plans.services import WaveSpec, plan_save, protection_group_save

    db = make_sandbox_servers("db-01", "db-02", recommended_instance_type="r5.large")
    web = make_sandbox_servers("web-01", recommended_instance_type="t3.medium")
    group = protection_group_save(name="All", target=sandbox_target, servers=db + web)
    plan = plan_save(name="Shop", waves=[WaveSpec(name="All", protection_groups=[group])])
    drill = run(plan, ExecutionMode.DRILL, hours_after=3)
    (left,) = drills_left_running()
    assert left.execution == drill and left.running == 3 and left.terminating == 0
    assert left.instance_types == {"r5.large": 2, "t3.medium": 1}
    assert 3 * 3600 <= left.age_seconds < 3 * 3600 + 600
    hourly = 2 * 0.126 + 0.0416
    assert left.cost.usd_per_hour == pytest.approx(hourly)
    page = login("Viewer").get(reverse("executions:dashboard"))
    words = text(page)
    assert "Drills left running" in words and "estimate" in words
    assert "2 × r5.large, 1 × t3.medium" in words
    assert f"≈ ${hourly:.2f}/hour" in words
    assert "3 h 0" in words  # the age
    assert drill.get_absolute_url() in page.content.decode()
    # Viewers see the card but no clean-up.
    assert reverse("executions:cleanup", args=[drill.pk]) not in page.content.decode()


def test_clean_up_from_the_dashboard_needs_an_operator(login, demo, run):
    drill = run(demo["plan"], ExecutionMode.DRILL)
    action = reverse("executions:cleanup", args=[drill.pk])
    operator = login("Operator")
    page = operator.get(reverse("executions:dashboard")).content.decode()
    assert f'action="{action}"' in page and "Yes, terminate them" in page
    assert login("Viewer").post(action).status_code == 403
    assert login("Planner").post(action).status_code == 403
    assert not ServerLaunch.objects.filter(execution=drill, phase=LaunchPhase.TERMINATING).exists()
    response = operator.post(action, follow=True)
    assert "Clean-up started." in text(response)
    assert ServerLaunch.objects.filter(execution=drill, phase=LaunchPhase.TERMINATING).count() == 3
    (left,) = drills_left_running()
    assert left.terminating == 3
    assert "clean-up running" in text(operator.get(reverse("executions:dashboard")))


def test_cleaned_up_drills_leave_the_card(login, demo, run, clock):
    drill = run(demo["plan"], ExecutionMode.DRILL)
    execution_cleanup(execution=drill, user=None)
    for _ in range(100):
        engine.tick(launch_budget_seconds=launch_budget_seconds())
        if not ServerLaunch.objects.filter(execution=drill, status=LaunchStatus.LAUNCHED).exists():
            break
        clock.shift(5)
    assert drills_left_running() == []
    assert "No drill left recovery instances running." in text(login("Viewer").get(reverse("executions:dashboard")))


def test_the_last_drill_badge_links_to_that_drill(login, demo, run):
    drill = run(demo["plan"], ExecutionMode.DRILL)
    page = login("Viewer").get(reverse("executions:dashboard")).content.decode()
    assert f'<a href="{drill.get_absolute_url()}" title="Open this drill"><span class="badge' in page


# --- 5. History ----------------------------------------------------------------------------------


def test_history_marks_recoveries_links_reports_and_keeps_dates_on_one_line(login, demo, run):
    drill = run(demo["plan"], ExecutionMode.DRILL)
    recovery = run(demo["plan"], ExecutionMode.RECOVERY)
    running = execution_start(plan=demo["plan"], mode=ExecutionMode.DRILL, requested_by=None)
    body = login("Viewer").get(reverse("executions:list")).content.decode()
    rows = {m.group(1): m.group(0) for m in re.finditer(r'<tr class="row-(\w+)">.*?</tr>', body, re.S)}
    assert set(rows) == {"drill", "recovery"}
    assert '<span class="badge mode-recovery">RECOVERY</span>' in rows["recovery"]
    assert '<span class="badge mode-drill">Drill</span>' in rows["drill"]
    for ended in (drill, recovery):
        assert reverse("executions:report", args=[ended.pk]) in body
    assert reverse("executions:report", args=[running.pk]) not in body
    started, full = f"{recovery.created_at:%Y-%m-%d %H:%M}", f"{recovery.created_at:%Y-%m-%d %H:%M:%S} UTC"
    assert f'<td class="nowrap"><a href="{recovery.get_absolute_url()}" title="{full}">{started}</a>' in body
    assert Execution.objects.count() == 3


# --- 10. Targets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["Viewer", "Operator", "Commander", "Planner"])
def test_every_role_reads_the_targets_pages(login, demo, role):
    client = login(role)
    target = demo["target"]
    listing = client.get(reverse("plans:target_list"))
    assert listing.status_code == 200
    assert reverse("plans:target_detail", args=[target.pk]) in listing.content.decode()
    assert 'href="/targets/"' in listing.content.decode()  # the navigation link
    detail = client.get(reverse("plans:target_detail", args=[target.pk]))
    words = text(detail)
    assert "123456789012" in words and "us-east-1" in words and "Databases" in words
    assert ("Test connection" in words) == (role == "Planner")


@pytest.mark.parametrize("role", ["Viewer", "Operator", "Commander"])
def test_only_planners_test_a_connection(login, demo, role):
    response = login(role).post(reverse("plans:target_test", args=[demo["target"].pk]))
    assert response.status_code == 403


def test_test_connection_reports_a_working_sandbox(login, demo):
    client = login("Planner")
    response = client.post(reverse("plans:target_test", args=[demo["target"].pk]))
    words = text(response)
    assert response.status_code == 200
    assert "Connection works." in words
    assert "DRS answers in us-east-1 and sees source servers." in words
    assert "no STS" in words and "not asked sts:GetCallerIdentity" in words
    assert "drsorch calls Sandbox test as arn:aws:sts::123456789012:assumed-role/drsorch/drsorch (simulated)" in words
    partial = client.post(reverse("plans:target_test", args=[demo["target"].pk]), HTTP_HX_REQUEST="true")
    assert "<html" not in partial.content.decode() and "Connection works." in text(partial)


def test_test_connection_names_the_denied_operation(login, demo):
    sandbox_configure(deny=["DescribeSourceServers"])
    response = login("Planner").post(reverse("plans:target_test", args=[demo["target"].pk]))
    words = text(response)
    assert "1 problem found." in words
    assert "AccessDenied on drs:DescribeSourceServers" in words
    assert "Add drs:DescribeSourceServers to its IAM policy" in words


def test_test_connection_of_an_uninitialized_region_says_to_initialize_drs(sandbox_target):
    from drsorch.sandbox.services import sandbox_set_region_initialized

    sandbox_set_region_initialized(account_id=sandbox_target.account_id, region="eu-west-3", initialized=False)
    target = Target.objects.create(
        name="Empty", kind="sandbox", account_id=sandbox_target.account_id, region="eu-west-3"
    )
    result = target_connection_test(target=target)
    (problem,) = result.problems
    assert problem.operation == "drs:DescribeSourceServers"
    assert "Elastic Disaster Recovery is not initialized in this account and region" in problem.detail


def test_test_connection_without_aws_credentials_says_so(db, monkeypatch):
    from drsorch.aws import clear_session_cache

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    clear_session_cache()
    target = Target.objects.create(name="Prod", kind="aws", account_id="210987654321", region="eu-west-1")
    result = target_connection_test(target=target)
    clear_session_cache()
    assert not result.ok
    (problem,) = result.problems
    assert problem.operation == "sts:GetCallerIdentity"
    assert "drsorch has no AWS credentials" in problem.detail
    # Without credentials DRS is not asked: it would fail the same way.
    assert len(result.checks) == 1


def test_drill_instances_replaced_by_a_later_launch_are_not_left_running(login, demo, run):
    drill = run(demo["plan"], ExecutionMode.DRILL)
    assert [left.execution for left in drills_left_running()] == [drill]
    # DRS keeps one recovery instance per source server: the recovery replaced the drill's.
    recovery = run(demo["plan"], ExecutionMode.RECOVERY)
    assert drills_left_running() == []
    assert len(plans_failed_over()[demo["plan"].pk].instances) == 3
    # And a drill after the recovery replaces the recovery's instances in turn.
    run(demo["plan"], ExecutionMode.DRILL)
    state = plans_failed_over()[demo["plan"].pk]
    assert state.execution == recovery and state.instances == []
    words = text(login("Viewer").get(demo["plan"].get_absolute_url()))
    assert "FAILED OVER" in words and "replaced all its instances since" in words
