"""The `sandbox` management command: seed, configure, status."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from drsorch.sandbox.models import SandboxSourceServer
from drsorch.sandbox.services import sandbox_config
from plans.demo import sandbox_seed
from plans.models import ProtectionGroup, RecoveryPlan, SourceServer, Target
from tests.sandbox.conftest import start

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


DEFAULTS = {
    "launch_seconds": 20.0,
    "throttle_rate": 0.0,
    "fail_launch": [],
    "crash_after_start_recovery": False,
    "disconnect": [],
    "busy": [],
    "busy_seconds": 120.0,
    "omit_instance_ids": False,
    "deny": [],
    "latency_ms": 0,
    "fail_post_launch": [],
    "no_job_tags": False,
    "fail_ssm": [],
}


def run(*args):
    out = StringIO()
    call_command("sandbox", *args, stdout=out)
    return out.getvalue()


def test_seed_creates_the_demo_and_adds_nothing_twice():
    run("seed")
    run("seed")
    target = Target.objects.get()
    assert (target.name, target.kind, target.account_id, target.region) == (
        "Sandbox",
        "sandbox",
        "123456789012",
        "us-east-1",
    )
    assert SandboxSourceServer.objects.count() == 12
    assert SourceServer.objects.filter(target=target, in_drs=True).count() == 12
    hostnames = set(SourceServer.objects.values_list("hostname", flat=True))
    assert {"db-01", "app-01", "web-01"} <= hostnames
    assert {s.tags["Tier"] for s in SourceServer.objects.all()} == {"db", "app", "web"}
    assert ProtectionGroup.objects.count() == 3
    plan = RecoveryPlan.objects.get()
    assert plan.name == "Demo 3-tier application"
    waves = list(plan.waves.order_by("order"))
    assert [w.name for w in waves] == ["Database", "Application", "Web"]
    assert [list(w.depends_on.values_list("name", flat=True)) for w in waves] == [[], ["Database"], ["Application"]]
    assert {s.tags["Tier"] for s in waves[0].resolved_servers()} == {"db"}
    assert sum(len(w.resolved_servers()) for w in waves) == 12
    app_servers = SandboxSourceServer.objects.filter(tags__Tier="app")
    assert app_servers and all(s.post_launch_actions for s in app_servers)
    db_servers = SandboxSourceServer.objects.filter(tags__Tier="db")
    for server in db_servers:  # a mandatory and an optional action each, as DRS marks them
        assert {action["optional"] for action in server.post_launch_actions} == {True, False}


def test_seed_says_what_it_did_unless_asked_to_be_quiet():
    assert "plan 'Demo 3-tier application' created" in run("seed")
    out = StringIO()
    call_command("sandbox", "seed", verbosity=0, stdout=out)
    assert out.getvalue() == "" and RecoveryPlan.objects.count() == 1


def test_seed_with_more_servers_adds_only_the_new_ones():
    sandbox_seed(servers=3)
    result = sandbox_seed(servers=8)
    assert SandboxSourceServer.objects.count() == 8
    assert len(result.servers_created) == 5 and not result.plan_created


def test_seed_options():
    run("seed", "--servers", "4", "--target", "Lab", "--account", "210987654321", "--region", "eu-west-1")
    target = Target.objects.get(name="Lab")
    assert (target.account_id, target.region) == ("210987654321", "eu-west-1")
    assert SourceServer.objects.filter(target=target).count() == 4


def test_seed_needs_a_server_per_tier():
    with pytest.raises(CommandError, match="at least 3") as caught:
        run("seed", "--servers", "2")
    assert caught.value.returncode == 2


def test_configure_changes_the_behaviour():
    output = run(
        "configure",
        "--launch-seconds",
        "5",
        "--throttle-rate",
        "0.25",
        "--fail-launch",
        "db-01",
        "web-02",
        "--crash-after-start-recovery",
    )
    assert "launch seconds: 5" in output
    assert sandbox_config() == {
        **DEFAULTS,
        "launch_seconds": 5.0,
        "throttle_rate": 0.25,
        "fail_launch": ["db-01", "web-02"],
        "crash_after_start_recovery": True,
    }
    run("configure", "--clear")
    assert sandbox_config() == DEFAULTS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--launch-seconds", "-1"], "launch duration"),
        (["--throttle-rate", "1.5"], "throttle rate"),
        (["--throttle-rate", "-0.1"], "throttle rate"),
    ],
)
def test_configure_refuses_bad_input(args, message):
    with pytest.raises(CommandError, match=message) as caught:
        run("configure", *args)
    assert caught.value.returncode == 2
    assert sandbox_config()["throttle_rate"] == 0.0


def test_status_json_shape(drs_client, sandbox_servers, launch_seconds, clock):
    started = start(drs_client, sandbox_servers[:2], isDrill=True, tags={"k": "v"})
    clock.shift(60)
    status = json.loads(run("status", "--json"))
    assert set(status) == {"servers", "jobs", "sns_messages", "ssm_automations", "ssm_commands"}
    assert status["sns_messages"] == []
    assert len(status["servers"]) == 3
    for server in status["servers"]:
        assert set(server) == {
            "source_server_id",
            "hostname",
            "launch_count",
            "recovery_instance_ids",
            "replication_state",
        }
    launched = {s["hostname"]: s for s in status["servers"]}
    assert launched["db-01"]["launch_count"] == 1 and len(launched["db-01"]["recovery_instance_ids"]) == 1
    assert launched["web-01"]["launch_count"] == 0 and launched["web-01"]["recovery_instance_ids"] == []
    (job,) = status["jobs"]
    assert set(job) == {"job_id", "type", "status", "is_drill", "tags", "source_server_ids", "created_at", "ended_at"}
    assert job == {
        "job_id": started["jobID"],
        "type": "LAUNCH",
        "status": "COMPLETED",
        "is_drill": True,
        "tags": {"k": "v"},
        "source_server_ids": [s.drs_id for s in sandbox_servers[:2]],
        "created_at": started["creationDateTime"],
        "ended_at": drs_client.describe_jobs()["items"][0]["endDateTime"],
    }


def test_status_table(drs_client, sandbox_servers):
    start(drs_client, sandbox_servers[:1], isDrill=True)
    output = run("status")
    assert "db-01" in output and "LAUNCH" in output and "PENDING" in output


def test_configure_strict_switches(sandbox_servers):
    output = run(
        "configure",
        "--disconnect",
        "db-01",
        "--busy",
        "web-01",
        "app-01",
        "--busy-seconds",
        "30",
        "--omit-instance-ids",
        "--deny",
        "StartRecovery",
        "TagResource",
        "--latency-ms",
        "0",
        "--fail-post-launch",
        "app-01",
        "--no-job-tags",
    )
    assert sandbox_config() == {
        **DEFAULTS,
        "disconnect": ["db-01"],
        "busy": ["web-01", "app-01"],
        "busy_seconds": 30.0,
        "omit_instance_ids": True,
        "deny": ["StartRecovery", "TagResource"],
        "fail_post_launch": ["app-01"],
        "no_job_tags": True,
    }
    assert "disconnected: db-01" in output and "busy: web-01, app-01 (held 30 s)" in output
    assert "denied operations: StartRecovery, TagResource" in output and "job tags: no" in output
    assert "omit instance IDs: yes" in output and "failing post-launch actions: app-01" in output
    status = json.loads(run("status", "--json"))
    states = {s["hostname"]: s["replication_state"] for s in status["servers"]}
    assert states == {"db-01": "DISCONNECTED", "app-01": "CONTINUOUS", "web-01": "CONTINUOUS"}
    (outside,) = status["jobs"]
    assert outside["status"] == "STARTED" and outside["ended_at"] is None and outside["tags"] == {}
    run("configure", "--latency-ms", "2")
    assert sandbox_config()["latency_ms"] == 2 and sandbox_config()["no_job_tags"] is True  # the rest stays
    run("configure", "--clear")
    assert sandbox_config() == DEFAULTS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--disconnect", "nope-01"], "No simulated source server is named nope-01"),
        (["--busy", "nope-02"], "nope-02"),
        (["--busy", "db-01", "--busy-seconds", "0"], "busy_seconds"),
        (["--deny", "StartRecovery", "start_recovery"], "Not DRS operations: start_recovery"),
        (["--latency-ms", "60001"], "latency_ms must be a whole number from 0 to 60000"),
        (["--latency-ms", "-5"], "latency_ms"),
    ],
)
def test_configure_strict_switches_refuse_bad_input(sandbox_servers, args, message):
    with pytest.raises(CommandError, match=message) as caught:
        run("configure", *args)
    assert caught.value.returncode == 2
    assert "\n" not in str(caught.value)
    assert sandbox_config() == DEFAULTS


def test_configure_busy_on_a_busy_server_exits_2(drs_client, sandbox_servers):
    start(drs_client, sandbox_servers[:1], isDrill=True)
    with pytest.raises(CommandError, match="currently being processed by a Job") as caught:
        run("configure", "--busy", "db-01")
    assert caught.value.returncode == 2


def test_status_json_ended_at_is_null_while_the_job_runs(drs_client, sandbox_servers, launch_seconds, clock):
    start(drs_client, sandbox_servers[:1], isDrill=True)
    (running,) = json.loads(run("status", "--json"))["jobs"]
    assert running["ended_at"] is None
    clock.shift(60)
    (ended,) = json.loads(run("status", "--json"))["jobs"]
    assert ended["status"] == "COMPLETED" and ended["ended_at"].endswith("Z")
