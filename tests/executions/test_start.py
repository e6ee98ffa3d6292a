"""Starting executions in an outage and under concurrency: risks accepted, servers claimed by
the database, readiness reads that write nothing, idempotent starts racing in threads."""

import threading

import pytest
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from drsorch.sandbox.services import sandbox_configure, sandbox_server_update, sandbox_status
from executions.exceptions import PlanNotReady, ServerBusy
from executions.models import Execution, ServerClaim
from executions.services import execution_retry, execution_start
from plans.demo import DEMO_PLAN_NAME, sandbox_seed
from plans.models import RecoveryPlan, SourceServer
from plans.services import source_servers_sync

from .conftest import launch_counts

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)


def at_once(count, work):
    """Run work(n) in `count` threads released together; their results, in order."""
    barrier = threading.Barrier(count)
    results, errors = [None] * count, []

    def run(n):
        try:
            barrier.wait()
            results[n] = work(n)
        except Exception as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def api_client(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def demo_servers():
    return {s["hostname"]: s["source_server_id"] for s in sandbox_status()["servers"]}


# --- a recovery in an outage ---------------------------------------------------------------------


def test_a_recovery_of_disconnected_servers_starts_once_the_risks_are_accepted(clock, drive, make_user):
    sandbox_seed()
    plan = RecoveryPlan.objects.get(name=DEMO_PLAN_NAME)
    databases = {name: drs_id for name, drs_id in demo_servers().items() if name.startswith("db-")}
    for drs_id in databases.values():
        sandbox_server_update(source_server_id=drs_id, replication_state="DISCONNECTED", lag_seconds=2400)
    source_servers_sync(target=plan.waves.first().protection_groups.first().target)
    commander = make_user("commander", role="Commander")

    with pytest.raises(PlanNotReady) as refused:
        execution_start(plan=plan, mode="RECOVERY", requested_by=commander)
    assert refused.value.only_risks
    for name, drs_id in databases.items():
        assert (
            f"Server {name} ({drs_id}) replication is DISCONNECTED, not CONTINUOUS; a recovery now starts "
            "from a snapshot about 40 min old."
        ) in refused.value.message
    assert not Execution.objects.exists()

    execution = drive(execution_start(plan=plan, mode="RECOVERY", requested_by=commander, accept_risks=True))

    assert execution.status == "SUCCEEDED"
    assert set(launch_counts().values()) == {1}
    assert len(execution.accepted_risks) == 2 * len(databases)  # replication and lag, per server
    client = api_client(commander)
    body = client.get(f"/api/v1/executions/{execution.pk}/").json()
    assert body["accepted_risks"] == execution.accepted_risks
    page = Client()
    page.force_login(commander)
    report = page.get(reverse("executions:report", args=[execution.pk])).content.decode()
    assert "Accepted risks" in report and "replication is DISCONNECTED, not CONTINUOUS" in report
    # the human action, with who accepted what
    assert f"commander accepted {len(execution.accepted_risks)} readiness risk(s)" in report
    assert not ServerClaim.objects.exists()  # released when it ended


# --- one active execution per server -------------------------------------------------------------


def test_two_plans_sharing_a_server_started_at_once_give_one_202_and_one_409(shared, make_user):
    operator = make_user("operator", role="Operator")
    responses = at_once(
        2,
        lambda n: api_client(operator).post(f"/api/v1/plans/{shared[n].pk}/execute/", {"mode": "DRILL"}, format="json"),
    )

    assert sorted(r.status_code for r in responses) == [202, 409]
    winner = next(r for r in responses if r.status_code == 202).json()
    loser = next(r for r in responses if r.status_code == 409).json()
    assert loser["code"] == "server_busy"
    assert loser["execution"] == winner["id"] and winner["id"] in loser["detail"] and "db-01" in loser["detail"]
    assert Execution.objects.count() == 1
    assert ServerClaim.objects.filter(execution_id=winner["id"]).count() == 2


def test_claims_are_released_when_an_execution_ends_and_taken_again_by_a_retry(shared, drive):
    first, second = shared
    sandbox_configure(launch_seconds=0, fail_launch=["web-01"])
    ended = drive(execution_start(plan=first, mode="DRILL", requested_by=None))
    assert ended.status == "FAILED" and not ServerClaim.objects.exists()

    running = execution_start(plan=second, mode="DRILL", requested_by=None)
    with pytest.raises(ServerBusy) as busy:
        execution_retry(execution=ended, user=None)
    assert busy.value.execution == running and busy.value.as_json()["code"] == "server_busy"
    ended.refresh_from_db()
    assert ended.status == "FAILED"  # the refused retry changed nothing

    drive(running)
    sandbox_configure(clear=True)
    sandbox_configure(launch_seconds=0)
    retried = execution_retry(execution=ended, user=None)
    assert set(ServerClaim.objects.values_list("execution_id", flat=True)) == {retried.pk}
    assert drive(retried).status == "SUCCEEDED"
    assert not ServerClaim.objects.exists()


def test_an_ending_tick_deletes_claims_with_one_query(shared, clock):
    from executions import engine
    from executions.tasks import launch_budget_seconds

    sandbox_configure(launch_seconds=0)
    execution = execution_start(plan=shared[0], mode="DRILL", requested_by=None)
    deletes = []
    for _ in range(10):
        with CaptureQueriesContext(connection) as queries:
            engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
        deletes.append(sum('DELETE FROM "executions_serverclaim"' in q["sql"] for q in queries.captured_queries))
        execution.refresh_from_db()
        if execution.is_terminal:
            break
        clock.shift(5)
    assert execution.status == "SUCCEEDED"
    assert deletes[-1] == 1 and sum(deletes) == 1  # only in the tick that ended it


# --- a read never writes -------------------------------------------------------------------------

WRITES = ("INSERT", "UPDATE", "DELETE")


def test_a_viewers_readiness_read_writes_nothing_and_post_refreshes(shared, make_user):
    plan = shared[0]
    db = SourceServer.objects.get(hostname="db-01")
    synced_at = db.synced_at
    sandbox_server_update(source_server_id=db.drs_id, replication_state="STALLED")
    viewer, operator = make_user("viewer", role="Viewer"), make_user("operator", role="Operator")
    page = Client()
    page.force_login(viewer)

    with CaptureQueriesContext(connection) as queries:
        body = api_client(viewer).get(f"/api/v1/plans/{plan.pk}/readiness/").json()
        assert page.get(plan.get_absolute_url()).status_code == 200
    assert [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)] == []
    assert SourceServer.objects.get(pk=db.pk).synced_at == synced_at
    assert body["ready"] is True and not [c for c in body["checks"] if c["severity"] == "warning"]

    assert api_client(viewer).post(f"/api/v1/plans/{plan.pk}/readiness/").status_code == 403
    refreshed = api_client(operator).post(f"/api/v1/plans/{plan.pk}/readiness/")
    assert refreshed.status_code == 200
    assert [c["code"] for c in refreshed.json()["checks"]] == ["replication_unhealthy"]
    assert SourceServer.objects.get(pk=db.pk).synced_at != synced_at


def test_the_plan_page_refreshes_from_drs_for_those_who_may_start(shared, make_user):
    plan = shared[0]
    viewer, planner = make_user("viewer", role="Viewer"), make_user("planner", role="Planner")
    url = reverse("plans:plan_readiness_refresh", args=[plan.pk])
    client = Client()
    client.force_login(viewer)
    assert client.post(url).status_code == 403
    client.force_login(planner)
    assert "Refresh from DRS" in client.get(plan.get_absolute_url()).content.decode()
    db = SourceServer.objects.get(hostname="db-01")
    sandbox_server_update(source_server_id=db.drs_id, replication_state="DISCONNECTED")
    partial = client.post(url, headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert 'id="readiness"' in partial.content.decode() and "DISCONNECTED" in partial.content.decode()
    assert SourceServer.objects.get(pk=db.pk).replication_state == "DISCONNECTED"


# --- idempotent starts ---------------------------------------------------------------------------


def idempotent_starts(plan, user, count=10):
    return at_once(
        count,
        lambda n: api_client(user).post(
            "/api/v1/executions/",
            {"plan": plan.pk, "mode": "DRILL"},
            format="json",
            headers={"Idempotency-Key": "one-drill"},
        ),
    )


def test_ten_parallel_posts_with_one_idempotency_key_give_one_execution(shared, make_user):
    responses = idempotent_starts(shared[0], make_user("operator", role="Operator"))

    assert [r.status_code for r in responses] == [202] * 10, [r.json() for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert Execution.objects.count() == 1


def test_a_start_whose_twin_wins_while_it_checks_readiness_gets_the_twins_execution(shared, make_user, monkeypatch):
    """The narrow window of the race above, made certain: the same request (same key) commits
    its execution while this one checks readiness."""
    from executions import services

    operator = make_user("operator", role="Operator")
    real = services.plan_readiness
    twin = {}

    def readiness_with_a_twin(**kwargs):
        if not twin:
            twin["started"] = True
            twin["execution"] = at_once(
                1,
                lambda n: execution_start(
                    plan=shared[0], mode="DRILL", requested_by=operator, idempotency_key="one-drill"
                ),
            )[0]
        return real(**kwargs)

    monkeypatch.setattr(services, "plan_readiness", readiness_with_a_twin)
    response = api_client(operator).post(
        "/api/v1/executions/",
        {"plan": shared[0].pk, "mode": "DRILL"},
        format="json",
        headers={"Idempotency-Key": "one-drill"},
    )

    assert response.status_code == 202, response.json()
    assert response.json()["id"] == str(twin["execution"].pk)
    assert Execution.objects.count() == 1
