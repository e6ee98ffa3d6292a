"""The `drill`, `recover` and `execution` commands against the sandbox.

Nothing sleeps: the follow loop's `cli.sleep` is replaced by a function that moves the
frozen clock (and runs the test's hooks, e.g. an approval "from another shell")."""

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from drsorch.sandbox.services import (
    sandbox_configure,
    sandbox_server_update,
    sandbox_status,
)
from executions import cli, engine
from executions.choices import ExecutionStatus, JobState, WaveStatus
from executions.models import DrsJob, Execution
from executions.tasks import launch_budget_seconds
from plans.demo import DEMO_PLAN_NAME, sandbox_seed
from plans.models import RecoveryPlan, Wave
from tests.executions.test_cleanup import running_instances

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)

START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
MAX_SLEEPS = 1000  # a follow loop that never ends fails the test instead of hanging it


@pytest.fixture(autouse=True)
def clock():
    """The clock stands still at START (before the seed, so its snapshots lie in the past)."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def hooks(monkeypatch, clock):
    """Replace the follow loop's sleep: move the clock instead, then run each hook."""
    registered = []
    calls = []

    def sleep(seconds):
        calls.append(seconds)
        assert len(calls) < MAX_SLEEPS, "the follow loop did not end"
        clock.shift(seconds)
        for hook in registered:
            hook()

    monkeypatch.setattr(cli, "sleep", sleep)
    return registered


@pytest.fixture
def demo(hooks):
    """The seeded demo (12 servers: 3 db, 5 app, 4 web) with 5-second launches."""
    seeded = sandbox_seed()
    sandbox_configure(launch_seconds=5)
    return seeded.plan


class TtyIO(io.StringIO):
    def isatty(self):
        return True


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)


def run(*args, stdout=None):
    out, err = stdout or io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    except CommandError as exc:
        code = exc.returncode
        err.write(str(exc))
    return Result(code, out.getvalue(), err.getvalue())


def launch_counts():
    return {s["hostname"]: s["launch_count"] for s in sandbox_status()["servers"]}


# --- drill ---------------------------------------------------------------------------------------


def test_drill_wait_json_succeeds_wave_after_wave_launching_each_server_once(demo):
    result = run("drill", DEMO_PLAN_NAME, "--wait", "--json")

    assert result.code == 0, result.err
    data = result.json  # nothing but the JSON on stdout
    assert data["status"] == "SUCCEEDED" and data["mode"] == "DRILL"
    assert data["plan"] == {"id": demo.pk, "name": DEMO_PLAN_NAME}
    assert data["requested_by"] == "cli"
    waves = data["waves"]
    assert [(w["index"], w["name"], w["status"]) for w in waves] == [
        (0, "Database", "SUCCEEDED"),
        (1, "Application", "SUCCEEDED"),
        (2, "Web", "SUCCEEDED"),
    ]
    for previous, wave in zip(waves, waves[1:], strict=False):
        assert wave["started_at"] >= previous["finished_at"]
    servers = [s for w in waves for s in w["servers"]]
    assert len(servers) == 12
    assert all(s["launch_status"] == "LAUNCHED" and s["recovery_instance_id"] for s in servers)
    assert set(launch_counts().values()) == {1}
    # progress went to stderr, as plain lines (not a terminal)
    assert "Wave 3 'Web': SUCCEEDED, 4/4 launched" in result.err
    assert "Execution SUCCEEDED" in result.err and "\x1b[" not in result.err


def test_drill_wait_prints_changes_only_and_ends_with_the_verdict(demo):
    result = run("drill", DEMO_PLAN_NAME, "--wait")

    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].startswith("Started the DRILL of 'Demo 3-tier application' as execution ")
    assert lines[-1].startswith("[") and "Execution SUCCEEDED" in lines[-1] and "RTO 1:00:00 met" in lines[-1]
    progress = lines[1:]
    assert len(progress) == len(set(progress)), "a line is printed only when something changed"
    assert len(progress) < 40


def test_drill_on_a_terminal_redraws_a_block(demo):
    result = run("drill", DEMO_PLAN_NAME, "--wait", stdout=TtyIO())

    assert result.code == 0
    assert "\x1b[2K" in result.out and "\r\x1b[4A" in result.out  # header + 3 waves, redrawn in place
    last_block = result.out.rsplit("\r\x1b[4A", 1)[-1]
    assert "SUCCEEDED" in last_block and "3  Web" in last_block and "4/4 launched" in last_block


def test_drill_without_wait_prints_the_json_at_once_and_accepts_the_plan_id(demo):
    result = run("drill", str(demo.pk), "--json")

    assert result.code == 0
    assert result.json["status"] == "PENDING"
    assert [w["status"] for w in result.json["waves"]] == ["PENDING"] * 3
    assert Execution.objects.get().pk.hex == result.json["id"].replace("-", "")
    assert set(launch_counts().values()) == {0}


def test_drill_without_wait_tells_how_to_follow(demo):
    result = run("drill", DEMO_PLAN_NAME.upper())  # a unique case-insensitive match is enough

    execution = Execution.objects.get()
    assert result.code == 0
    assert f"manage.py execution watch {execution.pk}" in result.out


def test_unknown_plan_exits_2(demo):
    result = run("drill", "No such plan", "--wait")

    assert result.code == 2
    assert "No recovery plan is named or numbered 'No such plan'" in result.err
    assert DEMO_PLAN_NAME in result.err  # the known plans are listed
    assert not Execution.objects.exists()


def test_unaccepted_risks_exit_2_naming_each_warning(demo):
    servers = {s["hostname"]: s["source_server_id"] for s in sandbox_status()["servers"]}
    sandbox_server_update(source_server_id=servers["db-01"], replication_state="STALLED", lag_seconds=300)
    sandbox_server_update(source_server_id=servers["web-02"], lag_seconds=3600)

    result = run("drill", DEMO_PLAN_NAME, "--wait", "--json")

    assert result.code == 2
    assert result.out == ""
    assert "has 2 risk(s); nothing was started" in result.err and "--accept-risks" in result.err
    assert (
        f"Server db-01 ({servers['db-01']}) replication is STALLED, not CONTINUOUS; a recovery now "
        "starts from a snapshot about 5 min old; "
    ) in result.err
    assert f"; Server web-02 ({servers['web-02']}) lags 60 min behind" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not Execution.objects.exists()


def test_accept_risks_starts_and_records_them(demo):
    servers = {s["hostname"]: s["source_server_id"] for s in sandbox_status()["servers"]}
    sandbox_server_update(source_server_id=servers["db-01"], replication_state="DISCONNECTED", lag_seconds=900)
    plan = RecoveryPlan.objects.get(name=DEMO_PLAN_NAME)

    refused = run("recover", DEMO_PLAN_NAME, "--confirm", plan.name, "--json")
    assert refused.code == 2 and "replication is DISCONNECTED" in refused.err

    result = run("recover", DEMO_PLAN_NAME, "--confirm", plan.name, "--accept-risks", "--json")

    assert result.code == 0, result.err
    assert len(result.json["accepted_risks"]) == 1 and "DISCONNECTED" in result.json["accepted_risks"][0]
    assert Execution.objects.get().accepted_risks == result.json["accepted_risks"]


def test_errors_exit_2_even_with_accept_risks(demo):
    first = run("drill", DEMO_PLAN_NAME)
    result = run("drill", DEMO_PLAN_NAME, "--accept-risks")

    assert first.code == 0
    assert result.code == 2 and "already running" in result.err


def test_a_running_plan_cannot_start_twice(demo):
    first = run("drill", DEMO_PLAN_NAME)
    second = run("drill", DEMO_PLAN_NAME)

    assert first.code == 0
    assert second.code == 2 and "already running" in second.err


def test_cleanup_needs_wait(demo):
    result = run("drill", DEMO_PLAN_NAME, "--cleanup")

    assert result.code == 2 and "needs --wait" in result.err
    assert not Execution.objects.exists()


def test_drill_wait_cleanup_terminates_the_drill_instances(demo):
    result = run("drill", DEMO_PLAN_NAME, "--wait", "--cleanup", "--json")

    assert result.code == 0
    assert result.json["status"] == "SUCCEEDED"
    assert {s["launch_status"] for w in result.json["waves"] for s in w["servers"]} == {"TERMINATED"}
    assert Execution.objects.get().cleaned_up_at is not None
    assert "Clean-up finished" in result.err
    assert "clean-up 12/12 terminated" in result.err


# --- approval gates ------------------------------------------------------------------------------


def test_gate_waits_for_an_approval_from_another_call(demo, hooks):
    Wave.objects.filter(plan=demo, name="Application").update(approval_required=True)
    approvals = []

    def approve_when_waiting():
        waiting = Execution.objects.filter(status=ExecutionStatus.WAITING_APPROVAL).first()
        if waiting and not approvals:
            approvals.append(run("execution", "approve", str(waiting.pk)[:8]))

    hooks.append(approve_when_waiting)

    result = run("drill", DEMO_PLAN_NAME, "--wait")

    execution = Execution.objects.get()
    assert result.code == 0, result.out
    assert execution.status == ExecutionStatus.SUCCEEDED
    assert "Wave 2 'Application' waits for approval" in result.out
    assert f"manage.py execution approve {execution.pk}" in result.out
    assert "Wave 2 'Application': WAITING_APPROVAL" in result.out
    assert len(approvals) == 1 and approvals[0].code == 0
    assert "Approved the waiting wave" in approvals[0].out
    wave = execution.wave_runs.get(index=1)
    assert wave.approved_at is not None and wave.approved_by is None  # approved from the CLI
    assert set(launch_counts().values()) == {1}


def test_auto_approve_opens_gates(demo):
    Wave.objects.filter(plan=demo, name="Application").update(approval_required=True)

    result = run("drill", DEMO_PLAN_NAME, "--wait", "--json", "--auto-approve")

    assert result.code == 0 and result.json["status"] == "SUCCEEDED"
    assert "waits for approval" not in result.err


def test_approve_without_a_waiting_wave_exits_2(demo):
    run("drill", DEMO_PLAN_NAME, "--wait")
    execution = Execution.objects.get()

    result = run("execution", "approve", str(execution.pk))

    assert result.code == 2
    assert "No wave of this execution is waiting for approval." in result.err


# --- recover -------------------------------------------------------------------------------------


@pytest.mark.parametrize("confirm", [None, "demo 3-tier application", "Demo"])
def test_recover_refuses_without_the_exact_plan_name(demo, confirm):
    args = ["recover", DEMO_PLAN_NAME, "--wait"] + (["--confirm", confirm] if confirm is not None else [])

    result = run(*args)

    assert result.code == 2
    assert "Refusing to start a RECOVERY" in result.err
    assert f"--confirm '{DEMO_PLAN_NAME}'" in result.err
    assert not Execution.objects.exists()


def test_recover_with_confirmation_runs_the_recovery(demo):
    result = run("recover", str(demo.pk), "--confirm", DEMO_PLAN_NAME, "--wait", "--json")

    assert result.code == 0, result.err
    assert result.json["mode"] == "RECOVERY" and result.json["status"] == "SUCCEEDED"
    assert set(launch_counts().values()) == {1}
    assert {job["is_drill"] for job in sandbox_status()["jobs"]} == {False}


# --- execution list / show ---------------------------------------------------------------------


@pytest.mark.parametrize("plan", ["\u00b2", "\u0662", "99999999999999999999"])
def test_drill_of_a_plan_id_that_is_no_number_exits_2_naming_it(demo, plan):
    result = run("drill", plan)
    assert result.code == 2 and plan in result.err
    assert not Execution.objects.exists()


@pytest.mark.parametrize("limit", ["0", "-3", "1001", "99999999999999999999"])
def test_list_refuses_a_limit_out_of_range_with_exit_2(demo, limit):
    result = run("execution", "list", "--limit", limit)
    assert result.code == 2 and f"--limit must be from 1 to 1000, not {int(limit)}." in result.err


def test_list_and_show(demo):
    assert "No executions yet" in run("execution", "list").out
    run("drill", DEMO_PLAN_NAME, "--wait")
    execution = Execution.objects.get()

    table = run("execution", "list")
    assert table.code == 0
    header, row = table.out.splitlines()
    assert header.split() == ["ID", "PLAN", "MODE", "STATUS", "STARTED", "ELAPSED", "/", "RTO"]
    assert row.startswith(str(execution.pk)[:8])
    assert DEMO_PLAN_NAME in row and "DRILL" in row and "SUCCEEDED" in row
    assert "2026-03-02 09:00" in row and "/ RTO 1:00:00 met" in row

    listed = run("execution", "list", "--json")
    assert [e["id"] for e in listed.json] == [str(execution.pk)]

    shown = run("execution", "show", str(execution.pk)[:8])
    assert shown.code == 0
    assert "SUCCEEDED" in shown.out and "db-01" in shown.out and "web-04" in shown.out
    assert "3/3 launched" in shown.out

    as_json = run("execution", "show", str(execution.pk), "--json")
    assert as_json.json == listed.json[0]
    assert set(as_json.json) == {
        "id",
        "plan",
        "mode",
        "status",
        "requested_by",
        "started_at",
        "finished_at",
        "rto_target_minutes",
        "elapsed_seconds",
        "accepted_risks",
        "point_in_time",
        "comment",
        "rto",
        "rpo",
        "waves",
    }


@pytest.mark.parametrize(
    "ident, message",
    [
        ("12345678", "No execution has an id starting with '12345678'"),
        ("1234", "first 8 characters"),
        ("not-an-id!", "No execution has the id 'not-an-id!'"),
        ("00000000-0000-0000-0000-000000000000", "No execution has an id starting with"),
    ],
)
def test_unknown_execution_id_exits_2(ident, message):
    result = run("execution", "show", ident)

    assert result.code == 2
    assert message in result.err


@pytest.mark.parametrize("subcommand", ["watch", "approve", "cancel", "retry", "cleanup"])
def test_every_subcommand_refuses_an_unknown_id(subcommand):
    result = run("execution", subcommand, "deadbeef")

    assert result.code == 2
    assert "No execution has an id starting with 'deadbeef'" in result.err


def test_an_ambiguous_prefix_exits_2(demo):
    for suffix in ("1111-4111-8111-111111111111", "2222-4222-8222-222222222222"):
        Execution.objects.create(
            id=f"abcdef12-{suffix}",
            plan=demo,
            plan_name=demo.name,
            mode="DRILL",
            status=ExecutionStatus.SUCCEEDED,
            rto_target_minutes=60,
            rpo_target_minutes=15,
        )

    ambiguous = run("execution", "show", "abcdef12")
    assert ambiguous.code == 2 and "matches several executions" in ambiguous.err

    unique = run("execution", "show", "ABCDEF12-2", "--json")  # case and dashes do not matter
    assert unique.code == 0 and unique.json["id"] == "abcdef12-2222-4222-8222-222222222222"


# --- cancel / retry / cleanup ----------------------------------------------------------------------


def test_cancel_then_watch_ends_cancelled_with_exit_1(demo, clock):
    run("drill", DEMO_PLAN_NAME)
    execution = Execution.objects.get()
    # the database wave is launching now
    engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())

    cancelled = run("execution", "cancel", str(execution.pk)[:10])
    assert cancelled.code == 0 and "CANCELLING" in cancelled.out

    watched = run("execution", "watch", str(execution.pk), "--json")
    assert watched.code == 1
    assert watched.json["status"] == "CANCELLED"
    assert [w["status"] for w in watched.json["waves"]] == ["SUCCEEDED", "CANCELLED", "CANCELLED"]
    counts = launch_counts()
    assert {counts[h] for h in ("db-01", "db-02", "db-03")} == {1}
    assert {n for h, n in counts.items() if not h.startswith("db-")} == {0}

    again = run("execution", "cancel", str(execution.pk))
    assert again.code == 2 and "only a running execution can be cancelled" in again.err


def test_failed_drill_exits_1_and_retry_relaunches_only_the_failed_server(demo):
    sandbox_configure(fail_launch=["web-02"])

    failed = run("drill", DEMO_PLAN_NAME, "--wait", "--json")

    assert failed.code == 1
    assert failed.json["status"] == "FAILED"
    assert [w["status"] for w in failed.json["waves"]] == ["SUCCEEDED", "SUCCEEDED", "FAILED"]
    web = {s["hostname"]: s for s in failed.json["waves"][2]["servers"]}
    assert web["web-02"]["launch_status"] == "FAILED" and web["web-02"]["error"]

    sandbox_configure(fail_launch=[])
    execution_id = failed.json["id"]
    retried = run("execution", "retry", execution_id)
    assert retried.code == 0 and "RUNNING" in retried.out

    watched = run("execution", "watch", execution_id, "--json")
    assert watched.code == 0
    assert watched.json["status"] == "SUCCEEDED"
    counts = launch_counts()
    assert counts.pop("web-02") == 2
    assert set(counts.values()) == {1}

    assert run("execution", "retry", execution_id).code == 2


def test_cleanup_then_watch_follows_the_clean_up(demo):
    run("drill", DEMO_PLAN_NAME, "--wait")
    execution = Execution.objects.get()

    started = run("execution", "cleanup", str(execution.pk))
    assert started.code == 0 and "Cleaning up" in started.out
    assert Execution.objects.get().cleaned_up_at is None

    watched = run("execution", "watch", str(execution.pk))
    assert watched.code == 0
    assert Execution.objects.get().cleaned_up_at is not None
    assert "clean-up 12/12 terminated" in watched.out

    again = run("execution", "cleanup", str(execution.pk))
    assert again.code == 2 and "no running recovery instances" in again.err


def test_cleanup_of_a_recovery_is_refused(demo):
    run("recover", DEMO_PLAN_NAME, "--confirm", DEMO_PLAN_NAME, "--wait")

    result = run("execution", "cleanup", str(Execution.objects.get().pk))

    assert result.code == 2 and "Only a drill's instances are cleaned up" in result.err


def test_watch_of_an_ended_execution_returns_at_once(demo, hooks):
    run("drill", DEMO_PLAN_NAME, "--wait")

    result = run("execution", "watch", str(Execution.objects.get().pk), "--json")

    assert result.code == 0 and result.json["status"] == "SUCCEEDED"


# --- a crash right after StartRecovery -----------------------------------------------------------


def test_watch_adopts_the_job_of_a_drill_that_crashed_after_start_recovery(demo, clock, sandbox_crash):
    sandbox_configure(crash_after_start_recovery=True)

    with pytest.raises(sandbox_crash):
        run("drill", DEMO_PLAN_NAME, "--wait")

    execution = Execution.objects.get()
    intent = DrsJob.objects.get(execution=execution)
    assert intent.state == JobState.INTENDED and intent.job_id is None  # the answer never arrived
    counts = launch_counts()
    assert {counts[h] for h in ("db-01", "db-02", "db-03")} == {1}  # but DRS did start the job

    clock.shift(61)  # past the lease a crashed process would still hold
    result = run("execution", "watch", str(execution.pk), "--json")

    assert result.code == 0, result.err
    assert result.json["status"] == "SUCCEEDED"
    assert set(launch_counts().values()) == {1}  # adopted, not launched again
    intent.refresh_from_db()
    assert intent.state == JobState.COMPLETED and intent.job_id
    assert RecoveryPlan.objects.get().executions.get().wave_runs.filter(status=WaveStatus.SUCCEEDED).count() == 3


def test_drill_wait_cleanup_under_throttling_terminates_every_instance(demo):
    sandbox_configure(throttle_rate=0.5)

    result = run("drill", DEMO_PLAN_NAME, "--wait", "--cleanup", "--json")

    assert result.code == 0, result.err
    assert "Traceback" not in result.err + result.out
    assert {s["launch_status"] for w in result.json["waves"] for s in w["servers"]} == {"TERMINATED"}
    assert "clean-up 12/12 terminated" in result.err
    sandbox_configure(throttle_rate=0)
    assert not running_instances()


# --- comments (issue 13) -----------------------------------------------------------------------------


def test_drill_and_recover_take_a_comment_kept_on_the_execution_and_its_audit_log(demo):
    drilled = run("drill", DEMO_PLAN_NAME, "--json", "--comment", "  Quarterly drill for the audit  ")
    assert drilled.code == 0 and drilled.json["comment"] == "Quarterly drill for the audit"
    drill = Execution.objects.get(pk=drilled.json["id"])
    assert drill.comment == "Quarterly drill for the audit"
    start_event = drill.events.get(kind="ACTION")
    assert "Quarterly drill for the audit" in start_event.message and start_event.data["comment"] == drill.comment
    run("execution", "cancel", str(drill.pk))
    run("execution", "watch", str(drill.pk))

    recovered = run("recover", DEMO_PLAN_NAME, "--confirm", DEMO_PLAN_NAME, "--json", "--comment", "Region down")
    assert recovered.code == 0 and recovered.json["comment"] == "Region down"


def test_a_comment_too_long_exits_2_and_starts_nothing(demo):
    result = run("drill", DEMO_PLAN_NAME, "--comment", "x" * 1001)

    assert result.code == 2
    assert "1001 characters; keep it to 1000 at most" in result.err
    assert not Execution.objects.exists()


def test_a_recovery_gate_needs_a_comment_to_be_approved_from_the_command(demo):
    Wave.objects.filter(plan=demo, name="Application").update(approval_required=True)
    run("recover", DEMO_PLAN_NAME, "--confirm", DEMO_PLAN_NAME)
    execution = Execution.objects.get()
    engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    for _ in range(30):
        execution.refresh_from_db()
        if execution.status == ExecutionStatus.WAITING_APPROVAL:
            break
        cli.sleep(5)
        engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    assert execution.status == ExecutionStatus.WAITING_APPROVAL

    refused = run("execution", "approve", str(execution.pk))
    assert refused.code == 2
    assert "--comment: A comment is required to approve a gate of a RECOVERY" in refused.err
    assert execution.wave_runs.get(index=1).status == WaveStatus.WAITING_APPROVAL

    approved = run("execution", "approve", str(execution.pk), "--comment", "App team on the bridge: go")
    assert approved.code == 0
    event = execution.events.filter(kind="ACTION", wave_index=1).get()
    assert event.message == "Approved wave 2 'Application'. Comment: \u201cApp team on the bridge: go\u201d"
    assert event.actor_name == "cli" and event.data["comment"] == "App team on the bridge: go"


def test_cancelling_a_recovery_needs_a_comment_a_drill_does_not(demo):
    run("recover", DEMO_PLAN_NAME, "--confirm", DEMO_PLAN_NAME)
    recovery = Execution.objects.get()

    refused = run("execution", "cancel", str(recovery.pk))
    assert refused.code == 2 and "A comment is required to cancel a RECOVERY" in refused.err
    recovery.refresh_from_db()
    assert recovery.status == ExecutionStatus.PENDING

    cancelled = run("execution", "cancel", str(recovery.pk), "--comment", "Wrong plan")
    assert cancelled.code == 0 and "CANCELLING" in cancelled.out
    assert recovery.events.filter(message__endswith="Comment: \u201cWrong plan\u201d").exists()
