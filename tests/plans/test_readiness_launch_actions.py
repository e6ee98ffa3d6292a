"""Readiness shows DRS's own post-launch actions (ListLaunchActions per server, only when DRS is
asked live), one info per wave; a DRS that will not answer for them is one info per target, never
a warning that would stand between a team and its recovery; a start does not ask for them."""

import pytest

from drsorch.drs import gateway
from drsorch.sandbox.services import sandbox_configure
from plans.readiness import INFO, plan_readiness
from plans.services import WaveSpec, plan_save, protection_group_save

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


@pytest.fixture
def plan(make_sandbox_servers, sandbox_target):
    db = make_sandbox_servers("db-01")
    apps = make_sandbox_servers("app-01", "app-02", post_launch_actions=True)
    (odd,) = make_sandbox_servers("app-03", post_launch_actions=[
        {"actionId": "a-1", "actionCode": "Corp-Warmup", "type": "SSM_AUTOMATION", "name": "Warm caches",
         "active": False, "order": 1, "optional": False, "category": "OTHER"},
    ])
    return plan_save(name="Layers", waves=[
        WaveSpec(name="Database", protection_groups=[protection_group_save(name="db", target=sandbox_target,
                                                                           servers=db)]),
        WaveSpec(name="Application", protection_groups=[protection_group_save(name="app", target=sandbox_target,
                                                                              servers=[*apps, odd])]),
    ])


def launch_findings(report):
    return [(c.severity, c.code, c.message, c.server.hostname if c.server else None) for c in report.checks
            if c.code in ("drs_launch_actions", "launch_actions_unchecked")]


def test_each_waves_drs_post_launch_actions_are_an_info_grouped_by_servers(plan):
    before = gateway.calls_made()
    report = plan_readiness(plan=plan, live=True)
    assert gateway.calls_made() - before >= 4  # the active jobs, and one ListLaunchActions per server

    findings = launch_findings(report)
    assert [f[:2] for f in findings] == [(INFO, "drs_launch_actions")] * 2
    assert findings[0][2] == (
        "Wave 'Application': post-launch actions on DRS run after the launch of app-01, app-02: Start application "
        "service, Application health check (optional). They are DRS's own, besides the plan's wave actions."
    )
    assert "app-03: Warm caches (inactive: DRS skips it)" in findings[1][2] and findings[1][3] == "app-03"
    assert report.ok and not report.warnings


def test_without_live_drs_is_not_asked(plan):
    before = gateway.calls_made()
    report = plan_readiness(plan=plan, live=False)
    assert gateway.calls_made() == before
    assert launch_findings(report) == []


def test_a_denied_list_launch_actions_is_one_info_for_the_target_and_blocks_no_start(plan, sandbox_target):
    from executions.services import execution_start

    sandbox_configure(deny=["ListLaunchActions"])
    report = plan_readiness(plan=plan, live=True)
    [(severity, code, message, _)] = launch_findings(report)
    assert (severity, code) == (INFO, "launch_actions_unchecked")
    assert f"target '{sandbox_target.name}'" in message and "AccessDenied" in message
    assert report.ok and not report.warnings
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)  # no accept_risks needed
    assert execution.accepted_risks == []


def test_a_start_does_not_ask_drs_for_launch_actions(plan):
    from executions.readiness import plan_readiness as start_readiness

    report = start_readiness(plan=plan, refresh=True, launch_actions=False)
    assert launch_findings(report) == []


def test_the_api_lists_them_with_the_readiness(plan, make_user):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=make_user('v', role='Viewer')).key}")
    checks = client.get(f"/api/v1/plans/{plan.pk}/readiness/").json()["checks"]
    assert [c["severity"] for c in checks if c["code"] == "drs_launch_actions"] == ["info", "info"]
    checks = client.get(f"/api/v1/plans/{plan.pk}/readiness/?live=false").json()["checks"]
    assert not [c for c in checks if c["code"] == "drs_launch_actions"]
