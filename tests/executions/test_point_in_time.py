"""Point-in-time recovery (the ransomware case): a start names a point in time, and every
server is launched from its latest recovery snapshot at or before it; readiness warns about a
server without one, and the engine fails it rather than launch it from a newer snapshot."""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from drsorch.drs import gateway
from drsorch.sandbox.protocol import iso
from drsorch.sandbox.services import sandbox_configure, sandbox_servers_create
from executions import engine
from executions.exceptions import PlanNotReady
from executions.models import Execution, ExecutionEvent, ServerLaunch
from executions.services import execution_retry, execution_start
from executions.tasks import launch_budget_seconds
from plans.services import source_servers_sync

from .conftest import START, launch_counts

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

# 95 minutes back: older than the last hour's 10-minute snapshots, so the one at or before it
# is the hourly snapshot two hours back (the sandbox keeps DRS's retention).
POINT = START - timedelta(minutes=95)
EXPECTED_SNAPSHOT_AT = START - timedelta(hours=2)


@pytest.fixture
def plan(clock, make_plan):
    sandbox_configure(launch_seconds=20)
    return make_plan("Ransomware", [("Database", ["db-01"], {}), ("Web", ["web-01", "web-02"], {})])


@pytest.fixture
def lookups(monkeypatch):
    """The DescribeRecoverySnapshots lookups drsorch makes, by source server (the real call runs)."""
    asked = []
    real = gateway.latest_recovery_snapshot

    def spy(**kwargs):
        asked.append(kwargs["source_server_id"])
        return real(**kwargs)

    monkeypatch.setattr(gateway, "latest_recovery_snapshot", spy)
    return asked


def instances_by_server(drs_client):
    return {i["sourceServerID"]: i for i in drs_client.describe_recovery_instances()["items"]}


def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_point_in_time_drill_launches_every_server_from_its_snapshot_at_or_before_the_point(
    plan, drive, drs_client, make_user, lookups
):
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None, point_in_time=POINT))

    assert execution.status == "SUCCEEDED"
    assert execution.point_in_time == POINT
    launches = list(ServerLaunch.objects.filter(execution=execution))
    instances = instances_by_server(drs_client)
    assert len(instances) == 3
    for launch in launches:
        instance = instances[launch.source_server_id]
        assert instance["pointInTimeSnapshotDateTime"] == iso(EXPECTED_SNAPSHOT_AT)
        assert launch.recovery_snapshot_id.startswith("pit-")
    # Readiness asked once per server at the start, the engine once per server before its launch.
    assert sorted(lookups) == sorted(2 * [launch.source_server_id for launch in launches])
    assert set(launch_counts().values()) == {1}

    body = api(make_user("viewer", role="Viewer")).get(f"/api/v1/executions/{execution.pk}/").json()
    assert body["point_in_time"] == iso(POINT)
    assert "accepted_risks" in body and "waves" in body  # every other key stays
    # The RPO is measured from the requested point, not the start: the point minus the snapshot.
    assert body["rpo"]["worst_seconds"] == (POINT - EXPECTED_SNAPSHOT_AT).total_seconds()
    assert all(
        server["snapshot_at"] == iso(EXPECTED_SNAPSHOT_AT) for wave in body["waves"] for server in wave["servers"]
    )
    messages = list(ExecutionEvent.objects.filter(execution=execution).values_list("message", flat=True))
    assert any("Point-in-time drill" in m and iso(POINT) in m for m in messages)
    assert sum("launching from recovery snapshot" in m for m in messages) == 3


def test_a_drill_without_a_point_launches_from_fresh_snapshots_and_asks_for_none(plan, drive, drs_client, lookups):
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))

    assert execution.status == "SUCCEEDED" and execution.point_in_time is None
    assert lookups == []
    assert all(i["pointInTimeSnapshotDateTime"] > iso(START) for i in instances_by_server(drs_client).values())
    assert not ServerLaunch.objects.exclude(recovery_snapshot_id="").exists()


def test_a_server_without_a_snapshot_that_old_is_a_warning_and_fails_rather_than_launch_newer(
    clock, make_plan, sandbox_target, drive, drs_client, lookups
):
    sandbox_configure(launch_seconds=20)
    # A server replicating for 30 minutes only: DRS holds nothing of it two hours back.
    sandbox_servers_create(
        account_id=sandbox_target.account_id, region=sandbox_target.region, specs=[{"hostname": "new-01"}], snapshots=3
    )
    source_servers_sync(target=sandbox_target)
    plan = make_plan("Mixed", [("All", ["old-01"], {})])
    group = plan.waves.get().protection_groups.get()
    group.servers.add(*type(group.servers.first()).objects.filter(hostname="new-01"))

    with pytest.raises(PlanNotReady) as refused:
        execution_start(plan=plan, mode="RECOVERY", requested_by=None, point_in_time=POINT)
    warnings = [(c.code, c.server.hostname) for c in refused.value.report.warnings]
    assert warnings == [("no_snapshot_at_point", "new-01")]
    assert f"no recovery snapshot at or before {iso(POINT)}" in refused.value.message
    # The same plan without a point in time has nothing to warn about.
    assert execution_start(plan=plan, mode="DRILL", requested_by=None).point_in_time is None
    Execution.objects.all().delete()

    lookups.clear()
    execution = drive(
        execution_start(plan=plan, mode="RECOVERY", requested_by=None, point_in_time=POINT, accept_risks=True)
    )

    assert execution.status == "FAILED"
    new = ServerLaunch.objects.get(execution=execution, hostname="new-01")
    assert new.status == "FAILED" and new.recovery_snapshot_id == ""
    assert f"no recovery snapshot of this server taken at or before the point in time {iso(POINT)}" in new.error
    assert launch_counts() == {"new-01": 0, "old-01": 1}
    old = ServerLaunch.objects.get(execution=execution, hostname="old-01")
    assert instances_by_server(drs_client)[old.source_server_id]["pointInTimeSnapshotDateTime"] == iso(
        EXPECTED_SNAPSHOT_AT
    )

    # A retry asks DRS only for the server it has no snapshot for: the other's is kept.
    lookups.clear()
    execution_retry(execution=execution, user=None)
    drive(execution)
    assert old.source_server_id not in lookups and new.source_server_id in lookups


@pytest.mark.parametrize(
    "value, message",
    [
        ("yesterday", "not an ISO-8601 date and time"),
        ("2026-11-28T10:00:00", "must say its timezone"),
        ("2026-11-28T13:00:00Z", "must be in the past"),
        (12, "ISO-8601 string"),
    ],
)
def test_the_api_refuses_a_bad_point_in_time_naming_it(plan, make_user, value, message):
    client = api(make_user("commander", role="Commander"))
    for url, body in (
        (f"/api/v1/plans/{plan.pk}/execute/", {"mode": "DRILL"}),
        ("/api/v1/executions/", {"plan": plan.pk, "mode": "DRILL"}),
    ):
        response = client.post(url, {**body, "point_in_time": value}, format="json")
        assert response.status_code == 400, response.content
        assert message in " ".join(response.json()["point_in_time"])
    assert not Execution.objects.exists()


def test_the_api_starts_at_a_point_in_time_with_any_timezone(plan, make_user):
    client = api(make_user("commander", role="Commander"))
    response = client.post(
        f"/api/v1/plans/{plan.pk}/execute/",
        {"mode": "DRILL", "point_in_time": "2026-11-28T11:25:00+01:00"},
        format="json",
    )
    assert response.status_code == 202, response.content
    assert response.json()["point_in_time"] == "2026-11-28T10:25:00Z"
    plain = client.post("/api/v1/executions/", {"plan": plan.pk, "mode": "DRILL", "point_in_time": None}, format="json")
    assert plain.status_code in (202, 409)


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    except CommandError as exc:  # how manage.py reports it: the message on stderr, the code as exit status
        code = exc.returncode
        err.write(str(exc))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("value", ["not-a-time", "2026-11-28 10:00", "2030-01-01T00:00:00Z"])
def test_the_commands_exit_2_on_a_bad_point_in_time(plan, value):
    for args in (("drill", plan.name), ("recover", plan.name, "--confirm", plan.name)):
        code, _out, err = run(*args, "--point-in-time", value)
        assert code == 2
        assert err.strip().startswith("--point-in-time:") and len(err.strip().splitlines()) == 1
        assert "Traceback" not in err
    assert not Execution.objects.exists()


def test_drill_at_a_point_in_time_prints_it(plan):
    code, out, _err = run("drill", plan.name, "--point-in-time", iso(POINT), "--json")
    assert code == 0
    assert json.loads(out)["point_in_time"] == iso(POINT)


def test_the_plan_page_starts_at_a_point_in_time_read_as_utc(plan, make_user):
    page = Client()
    page.force_login(make_user("commander", role="Commander"))
    url = f"/plans/{plan.pk}/start/"
    future = page.post(url, {"mode": "DRILL", "point_in_time": "2030-01-01T00:00"})
    assert future.status_code == 400 and "must be in the past" in future.content.decode()
    assert not Execution.objects.exists()

    started = page.post(url, {"mode": "DRILL", "point_in_time": "2026-11-28T10:25"})
    assert started.status_code == 302
    assert Execution.objects.get().point_in_time == START - timedelta(minutes=95)
    assert 'name="point_in_time"' in page.get(f"/plans/{plan.pk}/").content.decode()


def test_an_idempotency_key_reused_for_another_point_in_time_is_a_conflict(plan, make_user):
    client = api(make_user("commander", role="Commander"))
    url, key = f"/api/v1/plans/{plan.pk}/execute/", {"HTTP_IDEMPOTENCY_KEY": "ransomware-1"}
    first = client.post(url, {"mode": "RECOVERY", "point_in_time": iso(POINT)}, format="json", **key)
    again = client.post(url, {"mode": "RECOVERY", "point_in_time": iso(POINT)}, format="json", **key)
    other = client.post(
        url, {"mode": "RECOVERY", "point_in_time": iso(START - timedelta(days=1))}, format="json", **key
    )
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"


def max_queries_per_tick(clock, make_plan, servers_per_wave):
    plan = make_plan(
        f"Size {servers_per_wave}",
        [
            ("Database", [f"db{servers_per_wave}-{n:02d}" for n in range(servers_per_wave)], {}),
            ("Web", [f"web{servers_per_wave}-{n:02d}" for n in range(servers_per_wave)], {}),
        ],
    )
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None, point_in_time=POINT)
    counts = []
    while not execution.is_terminal and len(counts) < 40:
        with CaptureQueriesContext(connection) as queries:
            engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
        counts.append(len(queries))
        clock.shift(5)
        execution.refresh_from_db()
    assert execution.status == "SUCCEEDED"
    assert not ServerLaunch.objects.filter(execution=execution, recovery_snapshot_id="").exists()
    return max(counts)


def test_the_snapshot_lookups_add_no_queries_per_server(clock, make_plan):
    sandbox_configure(launch_seconds=0)  # every wave takes the same ticks: counts comparable exactly
    assert max_queries_per_tick(clock, make_plan, 3) == max_queries_per_tick(clock, make_plan, 30)


def test_a_denied_snapshot_lookup_fails_the_servers_naming_the_permission(plan, drive, lookups):
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None, point_in_time=POINT)
    sandbox_configure(deny=["DescribeRecoverySnapshots"])  # after the start's readiness
    execution = drive(execution)

    assert execution.status == "FAILED"
    db = ServerLaunch.objects.get(execution=execution, hostname="db-01")
    assert db.status == "FAILED" and "drs:DescribeRecoverySnapshots" in db.error
    assert set(launch_counts().values()) == {0}  # nothing launched from a fresh snapshot instead
