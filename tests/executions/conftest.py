"""Fixtures for engine tests: a controlled clock, plans on sandbox servers, and a driver."""

import datetime as dt

import pytest
import time_machine

from drsorch.sandbox.services import sandbox_status
from executions import engine
from executions.tasks import launch_budget_seconds
from plans.services import WaveSpec, plan_save, protection_group_save

START = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock():
    """Frozen time that tests move with clock.shift(seconds)."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def make_plan(make_sandbox_servers, sandbox_target):
    """Build a plan on fresh sandbox servers: make_plan(name, [("Database", ["db-01"], {...WaveSpec options}), ...]).

    Per-server sandbox options (e.g. post_launch_actions) can be given as
    server_options={"app-01": {...}}; "optional": [...] marks servers optional."""

    def make(name, waves, server_options=None, **plan_fields):
        server_options = server_options or {}
        specs = []
        plain = [h for _, hostnames, _ in waves for h in hostnames if h not in server_options]
        made = dict(zip(plain, make_sandbox_servers(*plain), strict=True)) if plain else {}
        for hostname, options in server_options.items():
            made[hostname] = make_sandbox_servers(hostname, **options)[0]
        for wave_name, hostnames, options in waves:
            servers = [made[hostname] for hostname in hostnames]
            group = protection_group_save(name=f"{name}: {wave_name}", target=sandbox_target, servers=servers)
            options = dict(options)
            optional_names = options.pop("optional", ())
            optional = [s for s in servers if s.hostname in optional_names]
            specs.append(WaveSpec(name=wave_name, protection_groups=[group], optional_servers=optional, **options))
        return plan_save(name=name, waves=specs, **plan_fields)

    return make


@pytest.fixture
def shared(make_sandbox_servers, sandbox_target):
    """Two plans sharing db-01 through tag selectors: "First" (db-01, web-01) and "Second"
    (db-01, app-01)."""
    make_sandbox_servers("db-01", tags={"First": "yes", "Second": "yes"})
    make_sandbox_servers("web-01", tags={"First": "yes"})
    make_sandbox_servers("app-01", tags={"Second": "yes"})

    def plan(name):
        group = protection_group_save(name=f"{name} group", target=sandbox_target, tag_selector={name: "yes"})
        return plan_save(name=name, waves=[WaveSpec(name="All", protection_groups=[group])])

    return plan("First"), plan("Second")


@pytest.fixture
def drive(clock):
    """Tick the engine, moving time `step` seconds between ticks, until the execution ends
    (or `until(execution)` holds). Returns the refreshed execution."""

    def run(execution, *, step=5, max_ticks=200, until=None):
        for _ in range(max_ticks):
            engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
            execution.refresh_from_db()
            if (until or (lambda e: e.is_terminal))(execution):
                return execution
            clock.shift(step)
        raise AssertionError(f"execution still {execution.status} after {max_ticks} ticks")

    return run


def launch_counts():
    return {server["hostname"]: server["launch_count"] for server in sandbox_status()["servers"]}


def finish(executions):
    """Tick each execution until it ends (instant sandbox launches); return their statuses."""
    for execution in executions:
        while not execution.is_terminal:
            engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
            execution.refresh_from_db()
    return {execution.status for execution in executions}
