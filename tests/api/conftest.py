"""Fixtures of the REST API tests: clients per role and a plan of the sandbox."""

from datetime import UTC, datetime

import pytest
import time_machine
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from executions.services import execution_start
from plans.services import WaveSpec, plan_save, protection_group_save

START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
ROLES = ["Viewer", "Operator", "Commander", "Planner"]


@pytest.fixture(autouse=True)
def clock():
    """A stopped clock (move it with clock.shift(seconds)), set before the sandbox's servers
    and snapshots are created so they never lie in the future."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def api(make_user):
    """api(role) is an APIClient sending the token of a new user in `role` ("Viewer",
    "Operator", "Commander", "Planner", "superuser"); api(None) sends no credentials."""
    made = {}

    def make(role):
        client = APIClient()
        if role is None:
            return client
        if role not in made:
            user = make_user(
                username=role.lower(), superuser=role == "superuser", role=None if role == "superuser" else role
            )
            made[role] = Token.objects.create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {made[role].key}")
        client.user = made[role].user
        return client

    return make


@pytest.fixture
def groups(sandbox_servers):
    """One protection group per server of the sandbox: db, app, web."""
    return [
        protection_group_save(name=f"{server.hostname} group", target=server.target, servers=[server])
        for server in sandbox_servers
    ]


@pytest.fixture
def plan(groups):
    """A plan of three waves, Database → Application → Web, on the sandbox."""
    return plan_save(
        name="Three tiers",
        waves=[
            WaveSpec(name=name, protection_groups=[group])
            for name, group in zip(["Database", "Application", "Web"], groups, strict=True)
        ],
    )


@pytest.fixture
def execution(plan):
    """A DRILL of `plan`, started by the services (PENDING until the engine advances it)."""
    return execution_start(plan=plan, mode="DRILL", requested_by=None)
