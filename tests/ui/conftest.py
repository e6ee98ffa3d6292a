"""Fixtures of the page tests: logged-in clients per role and a small sandbox plan."""

import pytest
from django.test import Client

from plans.services import WaveSpec, plan_save, protection_group_save

ROLES = ["Viewer", "Operator", "Commander", "Planner"]


@pytest.fixture
def login(make_user):
    """login("Operator") -> a test Client logged in as a new user of that role."""

    def make(role=None, superuser=False):
        username = (role or ("admin" if superuser else "norole")).lower()
        user = make_user(username=username, role=role, superuser=superuser)
        client = Client()
        client.force_login(user)
        client.user = user
        return client

    return make


@pytest.fixture
def demo(make_sandbox_servers, sandbox_target):
    """A two-wave plan (Database, then Web behind an approval gate) on synced sandbox servers."""
    db = make_sandbox_servers("db-01", "db-02", tags={"Tier": "db", "Application": "demo"})
    web = make_sandbox_servers("web-01", tags={"Tier": "web", "Application": "demo"})
    db_group = protection_group_save(name="Databases", target=sandbox_target, servers=db)
    web_group = protection_group_save(name="Web", target=sandbox_target, tag_selector={"Tier": "web"})
    plan = plan_save(
        name="Demo plan",
        rto_target_minutes=30,
        waves=[
            WaveSpec(name="Database", protection_groups=[db_group]),
            WaveSpec(name="Web", protection_groups=[web_group], approval_required=True),
        ],
    )
    return {"plan": plan, "groups": [db_group, web_group], "servers": db + web, "target": sandbox_target}
