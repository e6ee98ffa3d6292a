"""The engine's concurrency guarantees on PostgreSQL (run by make test-e2e)."""

import pytest
from django.db import connection

from drsorch.sandbox.services import sandbox_configure
from executions.models import DrsJob
from executions.services import execution_start

from .conftest import finish, launch_counts
from .test_engine import race
from .test_start import api_client, at_once, idempotent_starts

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)]


def test_two_workers_at_once_launch_nothing_twice_on_postgresql(make_plan):
    assert connection.vendor == "postgresql"
    sandbox_configure(launch_seconds=0)
    plans = [
        make_plan(f"PG race {n}", [("Database", [f"db{n}-01", f"db{n}-02"], {}), ("Web", [f"web{n}-01"], {})])
        for n in range(4)
    ]
    executions = [execution_start(plan=plan, mode="DRILL", requested_by=None) for plan in plans]
    race([e.pk for e in executions], workers=3, rounds=8)
    assert finish(executions) == {"SUCCEEDED"}
    assert set(launch_counts().values()) == {1}
    assert DrsJob.objects.count() == 8


def test_second_start_races_lose_on_the_database_constraint(make_plan):
    from django.db import IntegrityError

    from executions.models import Execution

    plan = make_plan("PG once", [("Database", ["db-01"], {})])
    first = execution_start(plan=plan, mode="DRILL", requested_by=None)
    with pytest.raises(IntegrityError):
        Execution.objects.create(
            plan=plan, plan_name=plan.name, mode="DRILL", rto_target_minutes=1, rpo_target_minutes=1
        )
    assert Execution.objects.filter(plan=plan).get() == first


def test_ten_parallel_idempotent_posts_give_one_execution_on_postgresql(shared, make_user):
    assert connection.vendor == "postgresql"
    responses = idempotent_starts(shared[0], make_user("operator", role="Operator"))
    assert [r.status_code for r in responses] == [202] * 10, [r.json() for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1


def test_two_plans_sharing_a_server_started_at_once_on_postgresql(shared, make_user):
    assert connection.vendor == "postgresql"
    operator = make_user("operator", role="Operator")
    responses = at_once(
        2,
        lambda n: api_client(operator).post(f"/api/v1/plans/{shared[n].pk}/execute/", {"mode": "DRILL"}, format="json"),
    )
    assert sorted(r.status_code for r in responses) == [202, 409]
    assert next(r for r in responses if r.status_code == 409).json()["code"] == "server_busy"
