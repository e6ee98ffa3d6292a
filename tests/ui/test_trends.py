"""The plan page's trend charts: achieved RTO and worst RPO per ended execution, server-rendered SVG."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from executions.choices import ExecutionMode, ExecutionStatus
from tests.factories import ExecutionFactory

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def ended(plan, *, days_ago, mode=ExecutionMode.DRILL, status=ExecutionStatus.SUCCEEDED, rto=600, rpo=60):
    created = timezone.now() - timedelta(days=days_ago)
    return ExecutionFactory(
        plan=plan,
        mode=mode,
        status=status,
        created_at=created,
        started_at=created,
        finished_at=created + timedelta(minutes=20),
        rto_achieved_seconds=rto,
        rpo_worst_seconds=rpo,
    )


def charts(body):
    """{"rto": svg, "rpo": svg} of the page."""
    return dict(re.findall(r'<svg class="trend"[^>]*data-measure="(\w+)">(.*?)</svg>', body, re.S))


def test_a_plan_that_never_ended_an_execution_says_so_instead_of_a_chart(login, demo):
    ExecutionFactory(plan=demo["plan"], status=ExecutionStatus.RUNNING)
    body = login("Viewer").get(demo["plan"].get_absolute_url()).content.decode()
    assert "No ended execution yet" in body
    assert 'class="trend"' not in body


def test_each_chart_has_a_point_per_ended_execution_shaped_by_mode_against_a_dashed_target(login, demo):
    plan = demo["plan"]  # RTO target 30 min, RPO 15 min
    met = ended(plan, days_ago=3)
    slow = ended(plan, days_ago=2, rto=45 * 60, rpo=20 * 60)
    recovery = ended(plan, days_ago=1, mode=ExecutionMode.RECOVERY)
    ExecutionFactory(plan=plan, status=ExecutionStatus.RUNNING)

    response = login("Viewer").get(plan.get_absolute_url())
    body = response.content.decode()
    svgs = charts(body)
    assert set(svgs) == {"rto", "rpo"}
    for svg in svgs.values():
        assert svg.count('class="point ') == 3  # the running execution is not a point
        assert len(re.findall(r'<circle class="point [^"]*circle"', svg)) == 2
        assert len(re.findall(r'<path class="point [^"]*diamond"', svg)) == 1
        assert '<line class="target"' in svg
        assert re.findall(r'<a href="([^"]+)">', svg) == [
            met.get_absolute_url(),
            slow.get_absolute_url(),
            recovery.get_absolute_url(),
        ]
    assert "target 30 min</text>" in svgs["rto"] and "target 15 min</text>" in svgs["rpo"]
    assert re.findall(r'class="point (tone-\w+)', svgs["rto"]) == ["tone-ok", "tone-bad", "tone-ok"]
    assert "Recovery · Succeeded · RTO achieved 10 min (target 30 min): met</title>" in svgs["rto"]
    assert "Drill · Succeeded · RPO worst 20 min (target 15 min): missed</title>" in svgs["rpo"]
    assert 'role="img" viewBox' in body
    assert (
        'aria-label="RTO achieved per execution (minutes): 3 executions, oldest first; target 30 min; '
        '1 missed their target."' in body
    )
    assert "Last 2 drills: 1 of 2 met the RTO target, 1 of 2 the RPO target." in body
    assert "Last 1 recovery: 1 of 1 met the RTO target, 1 of 1 the RPO target." in body
    assert "<script" not in body.split('id="trends"')[1].split("</section>")[0]


def test_the_charts_show_the_last_30_ended_executions(login, demo):
    for days in range(32):
        ended(demo["plan"], days_ago=40 - days)
    svgs = charts(login("Viewer").get(demo["plan"].get_absolute_url()).content.decode())
    assert all(svg.count('class="point ') == 30 for svg in svgs.values())


def test_the_trend_costs_the_plan_page_one_query_whatever_the_number_of_executions(login, demo):
    client = login("Viewer")
    ended(demo["plan"], days_ago=20)

    def count_queries():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(demo["plan"].get_absolute_url()).status_code == 200
        return len(queries)

    one = count_queries()
    for days in range(8):
        ended(demo["plan"], days_ago=days + 1, mode=ExecutionMode.RECOVERY if days % 2 else ExecutionMode.DRILL)
    assert count_queries() == one
