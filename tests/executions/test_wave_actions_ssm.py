"""SSM wave actions through the sandbox's SSM and the real boto3 client: automations per
recovered instance, Run Command, the SSM ping of a health check, failures, timeouts, cancel
(StopAutomationExecution / CancelCommand) and crashes between the call and its record."""

import pytest

from drsorch.sandbox.models import SandboxAutomationExecution, SandboxCommand
from drsorch.sandbox.services import sandbox_configure
from executions import engine
from executions.choices import ActionStatus, WaveStatus
from executions.engine import actions as engine_actions
from executions.engine.actions import command as action_command
from executions.engine.actions import health as action_health
from executions.engine.actions import records as action_records
from executions.models import ActionRun
from executions.services import execution_cancel, execution_start
from executions.tasks import launch_budget_seconds
from plans.actions import ActionSpec

from .conftest import launch_counts

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)

AUTOMATION = ActionSpec(
    name="Restart app",
    kind="ssm_automation",
    config={"document": "AWS-RestartEC2Instance", "parameters": {"AutomationAssumeRole": ["arn:aws:iam::1:role/x"]}},
)
COMMAND = ActionSpec(
    name="Smoke test",
    kind="ssm_command",
    config={"document": "AWS-RunShellScript", "parameters": {"commands": ["curl -fs localhost/health"]}},
)


class Crash(BaseException):
    """The process dies between the call and its record."""


def tick(execution):
    engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    execution.refresh_from_db()
    return execution


def action(execution, name):
    return ActionRun.objects.get(execution=execution, name=name)


def waves(execution):
    return {w.name: w.status for w in execution.wave_runs.all()}


def plan_with(make_plan, spec, *, hosts=("app-01", "app-02")):
    return make_plan("SSM", [("Application", list(hosts), {"actions": [spec]}), ("Web", ["web-01"], {})])


def instance_ids(execution, wave="Application"):
    return sorted(
        execution.server_launches.filter(wave_run__name=wave).values_list("recovery_instance_id", flat=True)
    )


def test_automation_runs_on_each_recovered_instance_and_holds_the_next_wave(clock, drive, make_plan):
    execution = execution_start(plan=plan_with(make_plan, AUTOMATION), mode="DRILL", requested_by=None)
    execution = drive(execution, until=lambda e: action(e, "Restart app").status == ActionStatus.RUNNING)
    assert waves(execution) == {"Application": WaveStatus.AFTER_ACTIONS, "Web": WaveStatus.PENDING}
    execution = drive(execution)
    assert execution.status == "SUCCEEDED"
    run = action(execution, "Restart app")
    assert run.status == ActionStatus.SUCCEEDED
    assert sorted(run.external["automations"]) == instance_ids(execution)
    started = SandboxAutomationExecution.objects.all()
    assert sorted(a.parameters["InstanceId"][0] for a in started) == instance_ids(execution)
    assert {a.parameters["AutomationAssumeRole"][0] for a in started} == {"arn:aws:iam::1:role/x"}
    assert {a.client_token for a in started} == {
        engine_actions.client_token(run, i) for i in instance_ids(execution)
    }
    assert "Success" in run.output
    web = execution.wave_runs.get(name="Web")
    assert web.started_at >= run.finished_at


def test_a_failing_automation_fails_its_wave_and_skips_dependents(clock, drive, make_plan):
    sandbox_configure(fail_ssm=["AWS-RestartEC2Instance"])
    execution = drive(execution_start(plan=plan_with(make_plan, AUTOMATION), mode="DRILL", requested_by=None))
    assert execution.status == "FAILED"
    assert waves(execution) == {"Application": "FAILED", "Web": "SKIPPED"}
    run = action(execution, "Restart app")
    assert run.status == ActionStatus.FAILED and "Failed" in run.error
    assert launch_counts()["web-01"] == 0


def test_a_failing_command_with_continue_is_recorded_and_the_plan_goes_on(clock, drive, make_plan):
    sandbox_configure(fail_ssm=["AWS-RunShellScript"])
    spec = ActionSpec(**{**COMMAND.__dict__, "on_failure": "continue"})
    execution = drive(execution_start(plan=plan_with(make_plan, spec), mode="DRILL", requested_by=None))
    assert execution.status == "SUCCEEDED"
    run = action(execution, "Smoke test")
    assert run.status == ActionStatus.FAILED and "Failed" in run.error


def test_command_waits_for_the_ssm_agents_then_runs_once_on_the_wave_s_instances(clock, drive, make_plan):
    execution = drive(execution_start(plan=plan_with(make_plan, COMMAND), mode="DRILL", requested_by=None))
    assert execution.status == "SUCCEEDED"
    run = action(execution, "Smoke test")
    assert run.status == ActionStatus.SUCCEEDED
    commands = list(SandboxCommand.objects.all())
    assert len(commands) == 1
    assert commands[0].comment == engine_actions.command_comment(run)
    assert sorted(i.instance_id for i in commands[0].invocations.all()) == instance_ids(execution)
    assert list(run.external["commands"].values()) == [commands[0].command_id]


def test_health_check_with_ssm_ping_waits_until_the_agents_are_online(clock, drive, make_plan):
    check = ActionSpec(name="Online", kind="health_check", config={"ec2_status_checks": True, "ssm_ping": True})
    execution = execution_start(plan=plan_with(make_plan, check), mode="DRILL", requested_by=None)
    execution = drive(execution, step=1, until=lambda e: action(e, "Online").status == ActionStatus.RUNNING)
    assert "SSM" in action(execution, "Online").output
    execution = drive(execution, step=2)
    assert execution.status == "SUCCEEDED"
    assert action(execution, "Online").output == "All 2 instance(s) passed."


def test_an_automation_that_outlasts_its_timeout_is_stopped_and_times_out(clock, drive, make_plan):
    spec = ActionSpec(**{**AUTOMATION.__dict__, "timeout_minutes": 1})
    execution = execution_start(plan=plan_with(make_plan, spec), mode="DRILL", requested_by=None)
    execution = drive(execution, until=lambda e: action(e, "Restart app").status == ActionStatus.RUNNING)
    run = action(execution, "Restart app")
    # The sandbox's automations end 20-40 s after they start: a deadline reached while they still
    # run stands for one that outlasts its timeout.
    ActionRun.objects.filter(pk=run.pk).update(deadline_at=run.started_at)
    execution = tick(execution)
    run.refresh_from_db()
    assert run.status == ActionStatus.TIMED_OUT
    assert "stopped automation" in run.external["stopped"][0]
    assert {a.stop_type for a in SandboxAutomationExecution.objects.all()} == {"Cancel"}
    execution = drive(execution)
    assert execution.status == "FAILED"
    assert waves(execution) == {"Application": "FAILED", "Web": "SKIPPED"}


def test_cancel_stops_running_automations(clock, drive, make_plan):
    execution = execution_start(plan=plan_with(make_plan, AUTOMATION), mode="DRILL", requested_by=None)
    execution = drive(execution, until=lambda e: action(e, "Restart app").status == ActionStatus.RUNNING)
    execution_cancel(execution=execution, user=None)
    execution = drive(execution)
    assert execution.status == "CANCELLED"
    run = action(execution, "Restart app")
    assert run.status == ActionStatus.CANCELLED
    stopped = SandboxAutomationExecution.objects.all()
    assert len(stopped) == 2
    assert all(a.stop_requested_at is not None and a.stop_type == "Cancel" for a in stopped)
    assert waves(execution) == {"Application": "CANCELLED", "Web": "CANCELLED"}


def test_cancel_cancels_a_running_command(clock, drive, make_plan):
    execution = execution_start(plan=plan_with(make_plan, COMMAND), mode="DRILL", requested_by=None)
    execution = drive(execution, until=lambda e: bool(action(e, "Smoke test").external.get("commands")))
    execution_cancel(execution=execution, user=None)
    execution = drive(execution)
    assert action(execution, "Smoke test").status == ActionStatus.CANCELLED
    command = SandboxCommand.objects.get()
    assert all(i.cancel_requested_at is not None for i in command.invocations.all())


def crash_on_first_record(monkeypatch):
    real = action_records._recorded
    crashed = []

    def crash_once(*args, **kwargs):
        if not crashed:
            crashed.append(True)
            raise Crash()
        return real(*args, **kwargs)

    monkeypatch.setattr(action_records, "_recorded", crash_once)


def test_no_automation_started_twice_after_a_crash_between_the_call_and_its_record(
    clock, drive, make_plan, monkeypatch
):
    execution = execution_start(plan=plan_with(make_plan, AUTOMATION, hosts=("app-01",)), mode="DRILL",
                                requested_by=None)
    execution = drive(execution, until=lambda e: e.wave_runs.get(name="Application").status == "LAUNCHING")
    crash_on_first_record(monkeypatch)
    with pytest.raises(Crash):
        drive(execution)
    run = action(execution, "Restart app")
    assert run.status == ActionStatus.RUNNING and run.intent_at and "automations" not in run.external
    assert SandboxAutomationExecution.objects.count() == 1  # SSM started it; we never heard
    execution = drive(execution)
    assert execution.status == "SUCCEEDED"
    assert SandboxAutomationExecution.objects.count() == 1
    run.refresh_from_db()
    assert list(run.external["automations"].values()) == [SandboxAutomationExecution.objects.get().execution_id]


def test_no_command_sent_twice_after_a_crash_between_the_call_and_its_record(clock, drive, make_plan, monkeypatch):
    execution = execution_start(plan=plan_with(make_plan, COMMAND), mode="DRILL", requested_by=None)
    # Until the instances' SSM Agents registered, so the first SendCommand is accepted.
    execution = drive(execution, until=lambda e: e.wave_runs.get(name="Application").status == "LAUNCHING")
    clock.shift(120)
    crash_on_first_record(monkeypatch)
    with pytest.raises(Crash):
        drive(execution)
    run = action(execution, "Smoke test")
    assert run.status == ActionStatus.RUNNING and "commands" not in run.external
    assert SandboxCommand.objects.count() == 1
    execution = drive(execution)
    assert execution.status == "SUCCEEDED"
    assert SandboxCommand.objects.count() == 1
    run.refresh_from_db()
    assert list(run.external["commands"].values()) == [SandboxCommand.objects.get().command_id]


def test_a_command_for_more_instances_than_sendcommand_takes_is_sent_in_parts(clock, drive, make_plan, monkeypatch):
    monkeypatch.setattr(action_command, "SEND_COMMAND_MAX_INSTANCES", 1)
    monkeypatch.setattr(action_health, "STATUS_MAX_INSTANCES", 1)
    check = ActionSpec(name="Online", kind="health_check", config={"ec2_status_checks": True, "ssm_ping": True})
    plan = make_plan("Parts", [("Application", ["app-01", "app-02"], {"actions": [check, COMMAND]})])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    assert execution.status == "SUCCEEDED"
    run = action(execution, "Smoke test")
    assert run.status == ActionStatus.SUCCEEDED
    commands = SandboxCommand.objects.order_by("comment")
    assert [c.comment for c in commands] == [f"drsorch {run.pk} #1", f"drsorch {run.pk} #1 part 2"]
    assert sorted(i.instance_id for c in commands for i in c.invocations.all()) == instance_ids(execution)
