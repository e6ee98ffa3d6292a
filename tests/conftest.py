"""Fixtures shared by the whole suite."""

import pytest
from django.contrib.auth.models import Group, User


@pytest.fixture
def make_user(db):
    """Create a user in one of the contract's roles (Viewer, Operator, Commander, Planner)."""

    def make(username="user", role=None, superuser=False):
        if superuser:
            return User.objects.create_superuser(username=username, password="pw", email=f"{username}@example.com")
        user = User.objects.create_user(username=username, password="pw")
        if role:
            if not Group.objects.filter(name=role).exists():  # flushed by a transactional test
                from drsorch.roles import roles_sync

                roles_sync()
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


# --- The sandbox (simulated DRS) ---------------------------------------------------------------
# Tests that touch it need both databases: @pytest.mark.django_db(databases=["default", "sandbox"]).

SANDBOX_ACCOUNT_ID = "123456789012"
SANDBOX_REGION = "us-east-1"


@pytest.fixture
def sandbox_target(db):
    """A sandbox Target (account 123456789012, us-east-1) with no simulated servers yet."""
    from plans.models import Target

    return Target.objects.create(
        name="Sandbox test", kind="sandbox", account_id=SANDBOX_ACCOUNT_ID, region=SANDBOX_REGION
    )


@pytest.fixture
def make_sandbox_servers(sandbox_target):
    """Create simulated servers in the sandbox target's account/region and sync the inventory.

    Call with hostnames (and optional keyword arguments of sandbox_server_create, applied
    to each); returns the inventory SourceServer rows in the order of the hostnames.
    """
    from drsorch.sandbox.services import sandbox_servers_create
    from plans.models import SourceServer
    from plans.services import source_servers_sync

    def make(*hostnames, **options):
        sandbox_servers_create(
            account_id=sandbox_target.account_id,
            region=sandbox_target.region,
            specs=[{"hostname": hostname, **options} for hostname in hostnames],
        )
        source_servers_sync(target=sandbox_target)
        by_hostname = {s.hostname: s for s in SourceServer.objects.filter(target=sandbox_target)}
        return [by_hostname[hostname] for hostname in hostnames]

    return make


@pytest.fixture
def sandbox_servers(make_sandbox_servers):
    """Three synced simulated servers: db-01, app-01 (with post-launch actions), web-01."""
    db, web = make_sandbox_servers("db-01", "web-01", tags={"Application": "demo"})
    (app,) = make_sandbox_servers("app-01", tags={"Application": "demo"}, post_launch_actions=True)
    return [db, app, web]


@pytest.fixture
def drs_client(sandbox_target):
    """A boto3 DRS client of the sandbox target, from drsorch.aws.client_for."""
    from drsorch.aws import client_for

    return client_for(sandbox_target, "drs")


@pytest.fixture
def sandbox_crash(monkeypatch):
    """Make the sandbox's crash hook raise SimulatedCrash (a BaseException) instead of exiting.

    Arm it with sandbox_configure(crash_after_start_recovery=True); returns the exception class.
    """
    from drsorch.sandbox import faults

    def crash():
        raise faults.SimulatedCrash("simulated crash after StartRecovery")

    monkeypatch.setattr(faults, "crash_process", crash)
    return faults.SimulatedCrash


@pytest.fixture(autouse=True)
def read_retry_pauses(monkeypatch):
    """The pauses the DRS gateway took before asking a throttled read again: recorded, never slept."""
    from drsorch.drs import gateway

    pauses = []
    monkeypatch.setattr(gateway, "sleep", pauses.append)
    return pauses


@pytest.fixture(autouse=True)
def no_leftover_metrics():
    """Metrics a previous test counted in this process and never flushed stay out of this one."""
    from drsorch import metrics

    metrics.discard_pending()
    yield
    metrics.discard_pending()


@pytest.fixture(autouse=True)
def no_leftover_listing_floors():
    """Where a previous test's ticks would start their next account listing stays out of this
    one (the same account ids recur across tests, at other frozen times)."""
    from executions.engine.account import forget_listing_floors

    forget_listing_floors()
    yield
    forget_listing_floors()
