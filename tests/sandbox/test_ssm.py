"""The simulated SSM (automations, commands, managed instances) and DRS ListLaunchActions,
through real boto3 clients from client_for."""

import json
import re
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from botocore.exceptions import ClientError
from django.core.management import CommandError, call_command

from drsorch.aws import client_for
from drsorch.sandbox import ssm as simulated_ssm
from drsorch.sandbox.models import SandboxAutomationExecution
from drsorch.sandbox.services import sandbox_config, sandbox_configure
from tests.sandbox.conftest import job, start

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


@pytest.fixture
def ssm_client(sandbox_target):
    return client_for(sandbox_target, "ssm")


@pytest.fixture
def instances(drs_client, sandbox_servers, clock, launch_seconds):
    """The instance IDs (in server order: db-01, app-01, web-01) of a drill of the three servers,
    running, their SSM Agents registered."""
    started = start(drs_client, sandbox_servers, isDrill=True)
    clock.shift(60)
    servers = job(drs_client, started["jobID"])["participatingServers"]
    assert {s["launchStatus"] for s in servers} == {"LAUNCHED"}
    return [s["recoveryInstanceID"] for s in servers]


def code(caught):
    return caught.value.response["Error"]["Code"]


def automation(ssm_client, execution_id):
    return ssm_client.get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"]


# --- Automation --------------------------------------------------------------------------------

def test_automation_runs_pending_in_progress_success(ssm_client, instances, clock):
    execution_id = ssm_client.start_automation_execution(
        DocumentName="AWS-RestartEC2Instance", Parameters={"InstanceId": [instances[0]]}
    )["AutomationExecutionId"]
    first = automation(ssm_client, execution_id)
    assert first["AutomationExecutionStatus"] == "Pending"
    assert first["DocumentName"] == "AWS-RestartEC2Instance"
    assert first["Parameters"] == {"InstanceId": [instances[0]]}
    assert "ExecutionEndTime" not in first
    clock.shift(2)
    running = automation(ssm_client, execution_id)
    assert running["AutomationExecutionStatus"] == "InProgress"
    assert running["CurrentStepName"] == "verifyInstanceState"
    assert [s["StepStatus"] for s in running["StepExecutions"]] == ["InProgress", "Pending"]
    clock.shift(20)  # 20-40 s in all: not over yet at 22 s unless the jitter is at its least
    clock.shift(20)
    done = automation(ssm_client, execution_id)
    assert done["AutomationExecutionStatus"] == "Success"
    assert [s["StepStatus"] for s in done["StepExecutions"]] == ["Success", "Success"]
    assert done["Outputs"] == {"runDocument.Output": [f"Document AWS-RestartEC2Instance ran on {instances[0]}."]}
    elapsed = (done["ExecutionEndTime"] - done["ExecutionStartTime"]).total_seconds()
    assert 21 <= elapsed <= 41
    assert "FailureMessage" not in done


def test_automation_duration_is_jittered_within_bounds(ssm_client, instances, clock):
    ids = [ssm_client.start_automation_execution(DocumentName="Custom-Doc")["AutomationExecutionId"]
           for _ in range(5)]
    clock.shift(20)
    assert {automation(ssm_client, i)["AutomationExecutionStatus"] for i in ids} == {"InProgress"}
    clock.shift(21.5)
    ended = [automation(ssm_client, i) for i in ids]
    assert {e["AutomationExecutionStatus"] for e in ended} == {"Success"}
    assert len({e["ExecutionEndTime"] for e in ended}) > 1


def test_unknown_automation_is_not_found(ssm_client):
    with pytest.raises(ClientError) as caught:
        automation(ssm_client, str(uuid.uuid4()))
    assert code(caught) == "AutomationExecutionNotFoundException"
    with pytest.raises(ssm_client.exceptions.AutomationExecutionNotFoundException):
        ssm_client.stop_automation_execution(AutomationExecutionId=str(uuid.uuid4()))


@pytest.mark.parametrize("name", ["ab", "bad name!", "x" * 129])
def test_document_names_outside_the_pattern_are_invalid(ssm_client, instances, name):
    with pytest.raises(ClientError) as caught:
        ssm_client.start_automation_execution(DocumentName=name)
    assert code(caught) == "ValidationException"
    assert "documentName" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        ssm_client.send_command(DocumentName=name, InstanceIds=instances[:1])
    assert code(caught) == "ValidationException"


def test_malformed_instance_parameter_is_refused_at_the_start(ssm_client):
    with pytest.raises(ssm_client.exceptions.InvalidAutomationExecutionParametersException):
        ssm_client.start_automation_execution(DocumentName="AWS-RestartEC2Instance",
                                              Parameters={"InstanceId": ["web-01"]})
    assert not SandboxAutomationExecution.objects.exists()


def test_automation_on_a_missing_or_terminated_instance_fails_its_first_step(ssm_client, drs_client, instances,
                                                                            clock):
    drs_client.terminate_recovery_instances(recoveryInstanceIDs=[instances[2]])
    clock.shift(30)
    for target in ["i-00000000000000000", instances[2]]:
        execution_id = ssm_client.start_automation_execution(
            DocumentName="AWS-RestartEC2Instance", Parameters={"InstanceId": [target]}
        )["AutomationExecutionId"]
        clock.shift(5)
        failed = automation(ssm_client, execution_id)
        assert failed["AutomationExecutionStatus"] == "Failed"
        assert "InvalidInstanceID.NotFound" in failed["FailureMessage"] and target in failed["FailureMessage"]
        assert [s["StepStatus"] for s in failed["StepExecutions"]] == ["Failed", "Pending"]


def test_stop_cancels_then_an_ended_execution_cannot_be_stopped(ssm_client, instances, clock):
    execution_id = ssm_client.start_automation_execution(DocumentName="AWS-RestartEC2Instance",
                                                         Parameters={"InstanceId": [instances[0]]})[
        "AutomationExecutionId"]
    clock.shift(5)
    ssm_client.stop_automation_execution(AutomationExecutionId=execution_id)
    assert automation(ssm_client, execution_id)["AutomationExecutionStatus"] == "Cancelling"
    ssm_client.stop_automation_execution(AutomationExecutionId=execution_id, Type="Cancel")  # again: no change
    clock.shift(simulated_ssm.CANCEL_SECONDS)
    cancelled = automation(ssm_client, execution_id)
    assert cancelled["AutomationExecutionStatus"] == "Cancelled"
    assert "ExecutionEndTime" in cancelled
    assert "Cancelled" in [s["StepStatus"] for s in cancelled["StepExecutions"]]
    clock.shift(60)
    assert automation(ssm_client, execution_id)["AutomationExecutionStatus"] == "Cancelled"  # stays
    with pytest.raises(ssm_client.exceptions.InvalidAutomationStatusUpdateException):
        ssm_client.stop_automation_execution(AutomationExecutionId=execution_id)
    other = ssm_client.start_automation_execution(DocumentName="Custom-Doc")["AutomationExecutionId"]
    clock.shift(45)
    with pytest.raises(ssm_client.exceptions.InvalidAutomationStatusUpdateException):
        ssm_client.stop_automation_execution(AutomationExecutionId=other)
    assert automation(ssm_client, other)["AutomationExecutionStatus"] == "Success"


def test_a_client_token_starts_one_execution(ssm_client, instances):
    token = str(uuid.uuid4())
    params = {"DocumentName": "AWS-RestartEC2Instance", "Parameters": {"InstanceId": [instances[0]]}}
    first = ssm_client.start_automation_execution(ClientToken=token, **params)["AutomationExecutionId"]
    again = ssm_client.start_automation_execution(ClientToken=token.upper(), **params)["AutomationExecutionId"]
    assert again == first
    assert SandboxAutomationExecution.objects.count() == 1
    with pytest.raises(ssm_client.exceptions.IdempotentParameterMismatch):
        ssm_client.start_automation_execution(ClientToken=token, DocumentName="AWS-RestartEC2Instance",
                                              Parameters={"InstanceId": [instances[1]]})
    with pytest.raises(ClientError) as caught:
        ssm_client.start_automation_execution(ClientToken="not-a-uuid-but-thirty-six-characters", **params)
    assert code(caught) == "ValidationException"
    assert SandboxAutomationExecution.objects.count() == 1


def test_fail_ssm_fails_exactly_those_documents(ssm_client, instances, clock):
    sandbox_configure(fail_ssm=["AWS-RestartEC2Instance", "Failing-Script"])
    failing = ssm_client.start_automation_execution(DocumentName="AWS-RestartEC2Instance",
                                                    Parameters={"InstanceId": [instances[0]]})["AutomationExecutionId"]
    passing = ssm_client.start_automation_execution(DocumentName="AWS-StopEC2Instance",
                                                    Parameters={"InstanceId": [instances[0]]})["AutomationExecutionId"]
    bad = ssm_client.send_command(DocumentName="Failing-Script", InstanceIds=instances[:2])["Command"]["CommandId"]
    good = ssm_client.send_command(DocumentName="AWS-RunShellScript", InstanceIds=instances[:1],
                                   Parameters={"commands": ["true"]})["Command"]["CommandId"]
    clock.shift(45)
    failed = automation(ssm_client, failing)
    assert failed["AutomationExecutionStatus"] == "Failed"
    assert "AWS-RestartEC2Instance" in failed["FailureMessage"]
    assert [s["StepStatus"] for s in failed["StepExecutions"]] == ["Success", "Failed"]
    assert automation(ssm_client, passing)["AutomationExecutionStatus"] == "Success"
    invocations = ssm_client.list_command_invocations(CommandId=bad, Details=True)["CommandInvocations"]
    assert [i["Status"] for i in invocations] == ["Failed", "Failed"]
    assert {i["CommandPlugins"][0]["ResponseCode"] for i in invocations} == {1}
    assert "ERROR" in invocations[0]["CommandPlugins"][0]["Output"]
    (command,) = ssm_client.list_commands(CommandId=bad)["Commands"]
    assert (command["Status"], command["ErrorCount"], command["CompletedCount"]) == ("Failed", 2, 2)
    (ok,) = ssm_client.list_command_invocations(CommandId=good, Details=True)["CommandInvocations"]
    assert ok["Status"] == "Success" and ok["CommandPlugins"][0]["ResponseCode"] == 0
    sandbox_configure(clear=True)
    assert sandbox_config()["fail_ssm"] == []


# --- Run Command -------------------------------------------------------------------------------

def test_command_runs_pending_in_progress_success(ssm_client, instances, clock):
    command = ssm_client.send_command(DocumentName="AWS-RunShellScript", InstanceIds=instances[:2],
                                      Parameters={"commands": ["systemctl start app"]},
                                      Comment="drsorch exec-1 wave-1 action-2")["Command"]
    assert command["Status"] == "Pending" and command["TargetCount"] == 2
    assert command["Comment"] == "drsorch exec-1 wave-1 action-2"
    command_id = command["CommandId"]
    pending = ssm_client.list_command_invocations(CommandId=command_id)["CommandInvocations"]
    assert [(i["InstanceId"], i["Status"], i["CommandPlugins"]) for i in pending] == [
        (instances[0], "Pending", []), (instances[1], "Pending", [])]
    clock.shift(2)
    running = ssm_client.list_command_invocations(CommandId=command_id, Details=True)["CommandInvocations"]
    assert {i["Status"] for i in running} == {"InProgress"}
    assert running[0]["CommandPlugins"][0]["ResponseCode"] == -1
    assert ssm_client.list_commands(CommandId=command_id)["Commands"][0]["Status"] == "InProgress"
    clock.shift(20)
    done = ssm_client.list_command_invocations(CommandId=command_id, Details=True)["CommandInvocations"]
    assert {i["Status"] for i in done} == {"Success"}
    plugin = done[0]["CommandPlugins"][0]
    assert plugin["Name"] == "aws:runShellScript" and plugin["ResponseCode"] == 0
    assert plugin["Output"] == f"Document AWS-RunShellScript ran on {instances[0]}.\n"
    (listed,) = ssm_client.list_commands(Filters=[{"key": "DocumentName", "value": "AWS-RunShellScript"}])["Commands"]
    assert listed["CommandId"] == command_id and listed["Status"] == "Success" and listed["CompletedCount"] == 2
    assert listed["Comment"] == "drsorch exec-1 wave-1 action-2"
    one = ssm_client.get_command_invocation(CommandId=command_id, InstanceId=instances[1])
    assert one["Status"] == "Success" and one["StandardOutputContent"].startswith("Document AWS-RunShellScript")
    by_instance = ssm_client.list_command_invocations(InstanceId=instances[1])["CommandInvocations"]
    assert [i["InstanceId"] for i in by_instance] == [instances[1]]


def test_send_command_needs_running_instances_with_a_registered_agent(ssm_client, drs_client, sandbox_servers,
                                                                      clock, launch_seconds):
    started = start(drs_client, sandbox_servers[:1], isDrill=True)
    clock.shift(27)  # launched (20 s ±30%), the agent not yet registered
    (server,) = job(drs_client, started["jobID"])["participatingServers"]
    instance_id = server["recoveryInstanceID"]
    with pytest.raises(ssm_client.exceptions.InvalidInstanceId):
        ssm_client.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[instance_id])
    clock.shift(simulated_ssm.SSM_AGENT_SECONDS)
    ssm_client.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[instance_id])
    with pytest.raises(ssm_client.exceptions.InvalidInstanceId) as caught:
        ssm_client.send_command(DocumentName="AWS-RunShellScript", InstanceIds=["i-0123456789abcdef0"])
    assert "i-0123456789abcdef0" in caught.value.response["Error"]["Message"]
    with pytest.raises(ssm_client.exceptions.DuplicateInstanceId):
        ssm_client.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[instance_id, instance_id])
    with pytest.raises(ClientError) as no_targets:
        ssm_client.send_command(DocumentName="AWS-RunShellScript")
    assert code(no_targets) == "ValidationException"
    drs_client.terminate_recovery_instances(recoveryInstanceIDs=[instance_id])
    clock.shift(30)
    with pytest.raises(ssm_client.exceptions.InvalidInstanceId):
        ssm_client.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[instance_id])


def test_cancel_command_and_unknown_commands(ssm_client, instances, clock):
    command_id = ssm_client.send_command(DocumentName="AWS-RunShellScript",
                                         InstanceIds=instances[:2])["Command"]["CommandId"]
    clock.shift(3)
    ssm_client.cancel_command(CommandId=command_id, InstanceIds=[instances[0]])
    statuses = [i["Status"] for i in ssm_client.list_command_invocations(CommandId=command_id)["CommandInvocations"]]
    assert statuses == ["Cancelling", "InProgress"]
    ssm_client.cancel_command(CommandId=command_id)
    clock.shift(simulated_ssm.CANCEL_SECONDS)
    statuses = [i["Status"] for i in ssm_client.list_command_invocations(CommandId=command_id)["CommandInvocations"]]
    assert statuses == ["Cancelled", "Cancelled"]
    assert ssm_client.list_commands(CommandId=command_id)["Commands"][0]["Status"] == "Cancelled"
    ssm_client.cancel_command(CommandId=command_id)  # ended: nothing changes, no error
    with pytest.raises(ssm_client.exceptions.InvalidInstanceId):
        ssm_client.cancel_command(CommandId=command_id, InstanceIds=[instances[2]])
    unknown = str(uuid.uuid4())
    with pytest.raises(ssm_client.exceptions.InvalidCommandId):
        ssm_client.cancel_command(CommandId=unknown)
    with pytest.raises(ssm_client.exceptions.InvalidCommandId):
        ssm_client.list_commands(CommandId=unknown)
    assert ssm_client.list_command_invocations(CommandId=unknown)["CommandInvocations"] == []
    with pytest.raises(ssm_client.exceptions.InvocationDoesNotExist):
        ssm_client.get_command_invocation(CommandId=unknown, InstanceId=instances[0])


def test_execution_timeout_times_the_command_out(ssm_client, instances, clock):
    command_id = ssm_client.send_command(DocumentName="AWS-RunShellScript", InstanceIds=instances[:1],
                                         Parameters={"commands": ["sleep 600"], "executionTimeout": ["5"]})[
        "Command"]["CommandId"]
    clock.shift(7)
    (invocation,) = ssm_client.list_command_invocations(CommandId=command_id, Details=True)["CommandInvocations"]
    assert (invocation["Status"], invocation["StatusDetails"]) == ("TimedOut", "Execution Timed Out")
    assert ssm_client.list_commands(CommandId=command_id)["Commands"][0]["Status"] == "TimedOut"


def test_commands_paginate_newest_first(ssm_client, instances, clock):
    ids = []
    for number in range(3):
        ids.append(ssm_client.send_command(DocumentName="AWS-RunShellScript", InstanceIds=instances[:1],
                                           Comment=f"c{number}")["Command"]["CommandId"])
        clock.shift(1)
    first = ssm_client.list_commands(MaxResults=2)
    assert [c["CommandId"] for c in first["Commands"]] == [ids[2], ids[1]]
    second = ssm_client.list_commands(MaxResults=2, NextToken=first["NextToken"])
    assert [c["CommandId"] for c in second["Commands"]] == [ids[0]] and "NextToken" not in second
    pages = ssm_client.get_paginator("list_command_invocations").paginate(PaginationConfig={"PageSize": 1})
    assert len([i for page in pages for i in page["CommandInvocations"]]) == 3
    with pytest.raises(ssm_client.exceptions.InvalidNextToken):
        ssm_client.list_commands(NextToken="garbage")
    with pytest.raises(ClientError) as caught:
        ssm_client.list_commands(MaxResults=51)
    assert code(caught) == "ValidationException"
    with pytest.raises(ssm_client.exceptions.InvalidFilterKey):
        ssm_client.list_commands(Filters=[{"key": "Comment", "value": "c1"}])


# --- Managed instances -------------------------------------------------------------------------

def test_instance_information_lists_instances_once_their_agent_registers(ssm_client, drs_client, sandbox_servers,
                                                                         clock, launch_seconds):
    started = start(drs_client, sandbox_servers, isDrill=True)
    clock.shift(27)
    ids = [s["recoveryInstanceID"] for s in job(drs_client, started["jobID"])["participatingServers"]]
    assert ssm_client.describe_instance_information()["InstanceInformationList"] == []
    clock.shift(simulated_ssm.SSM_AGENT_SECONDS)
    listed = ssm_client.describe_instance_information(
        InstanceInformationFilterList=[{"key": "InstanceIds", "valueSet": ids[:2]}]
    )["InstanceInformationList"]
    assert sorted(i["InstanceId"] for i in listed) == sorted(ids[:2])
    assert {(i["PingStatus"], i["PlatformType"], i["ResourceType"]) for i in listed} == {
        ("Online", "Linux", "EC2Instance")}
    assert all(i["AgentVersion"] and i["LastPingDateTime"] for i in listed)
    by_filters = ssm_client.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [ids[2]]}])
    assert [i["InstanceId"] for i in by_filters["InstanceInformationList"]] == [ids[2]]
    assert ssm_client.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": ["i-0123456789abcdef0"]}])["InstanceInformationList"] == []
    drs_client.terminate_recovery_instances(recoveryInstanceIDs=[ids[0]])
    clock.shift(60)
    remaining = ssm_client.describe_instance_information()["InstanceInformationList"]
    assert ids[0] not in {i["InstanceId"] for i in remaining} and len(remaining) == 2
    with pytest.raises(ssm_client.exceptions.InvalidInstanceId):
        ssm_client.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": ["web-01"]}])
    with pytest.raises(ssm_client.exceptions.InvalidFilterKey):
        ssm_client.describe_instance_information(Filters=[{"Key": "Nope", "Values": ["x"]}])
    with pytest.raises(ClientError) as caught:
        ssm_client.describe_instance_information(MaxResults=51)
    assert code(caught) == "ValidationException"


def test_ec2_status_checks_initialize_then_pass(ec2_client, drs_client, sandbox_servers, clock, launch_seconds):
    started = start(drs_client, sandbox_servers[:1], isDrill=True)
    clock.shift(27)  # launched by now (20 s ±30%)
    (server,) = job(drs_client, started["jobID"])["participatingServers"]
    instance_id = server["recoveryInstanceID"]
    launched = ec2_client.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    # Checks initialize for a quarter of the launch duration: at least 3.5 s at 20 s ±30%.
    clock.move_to(launched["LaunchTime"] + timedelta(seconds=1))
    (status,) = ec2_client.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"]
    assert status["InstanceStatus"]["Status"] == status["SystemStatus"]["Status"] == "initializing"
    assert status["InstanceState"]["Name"] == "running"
    clock.move_to(launched["LaunchTime"] + timedelta(seconds=10))
    (status,) = ec2_client.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"]
    assert status["InstanceStatus"]["Status"] == status["SystemStatus"]["Status"] == "ok"
    drs_client.terminate_recovery_instances(recoveryInstanceIDs=[instance_id])
    clock.shift(60)
    assert ec2_client.describe_instance_status(InstanceIds=[instance_id])["InstanceStatuses"] == []
    (terminated,) = ec2_client.describe_instance_status(InstanceIds=[instance_id],
                                                        IncludeAllInstances=True)["InstanceStatuses"]
    assert terminated["InstanceState"]["Name"] == "terminated"
    assert terminated["InstanceStatus"]["Status"] == "not-applicable"


# --- faults ------------------------------------------------------------------------------------

def test_throttling_and_deny_apply_to_ssm(ssm_client, instances):
    sandbox_configure(deny=["SendCommand"])
    with pytest.raises(ClientError) as caught:
        ssm_client.send_command(DocumentName="AWS-RunShellScript", InstanceIds=instances[:1])
    assert code(caught) == "AccessDeniedException"
    message = caught.value.response["Error"]["Message"]
    assert "ssm:SendCommand" in message and "arn:aws:ssm:us-east-1::document/AWS-RunShellScript" in message
    ssm_client.describe_instance_information()  # other operations still answer
    sandbox_configure(clear=True, throttle_rate=1.0)
    with pytest.raises(ClientError) as caught:
        ssm_client.describe_instance_information()
    assert code(caught) == "ThrottlingException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


# --- DRS ListLaunchActions -----------------------------------------------------------------------

def test_list_launch_actions_agree_with_the_job_runs(drs_client, sandbox_servers, clock, launch_seconds):
    db, app, _ = sandbox_servers
    items = drs_client.list_launch_actions(resourceId=app.drs_id)["items"]
    assert [(i["name"], i["order"], i["type"], i["active"], i["optional"]) for i in items] == [
        ("Start application service", 2, "SSM_COMMAND", True, False),
        ("Application health check", 3, "SSM_COMMAND", True, True),
    ]
    assert all(i["actionCode"] == "AWS-RunShellScript" and i["parameters"] == {} for i in items)
    assert drs_client.list_launch_actions(resourceId=db.drs_id)["items"] == []
    started = start(drs_client, [app], isDrill=True)
    clock.shift(60)
    (server,) = job(drs_client, started["jobID"])["participatingServers"]
    run_actions = [r["action"] for r in server["launchActionsStatus"]["runs"]]
    assert {a["actionId"] for a in run_actions} == {i["actionId"] for i in items}
    one = drs_client.list_launch_actions(resourceId=app.drs_id, filters={"actionIds": [items[1]["actionId"]]})
    assert [i["actionId"] for i in one["items"]] == [items[1]["actionId"]]
    page = drs_client.list_launch_actions(resourceId=app.drs_id, maxResults=1)
    assert [i["name"] for i in page["items"]] == ["Start application service"] and page["nextToken"]
    rest = drs_client.list_launch_actions(resourceId=app.drs_id, maxResults=1, nextToken=page["nextToken"])
    assert [i["name"] for i in rest["items"]] == ["Application health check"]
    with pytest.raises(drs_client.exceptions.ResourceNotFoundException):
        drs_client.list_launch_actions(resourceId="s-0000000000000000a")
    sandbox_configure(deny=["ListLaunchActions"])
    with pytest.raises(ClientError) as caught:
        drs_client.list_launch_actions(resourceId=app.drs_id)
    assert code(caught) == "AccessDeniedException" and app.drs_id in caught.value.response["Error"]["Message"]


# --- the command line ----------------------------------------------------------------------------

def run(*args):
    out = StringIO()
    call_command("sandbox", *args, stdout=out)
    return out.getvalue()


def test_configure_fail_ssm_and_status(ssm_client, instances):
    output = run("configure", "--fail-ssm", "AWS-RunShellScript", "My-Doc")
    assert "failing SSM documents: AWS-RunShellScript, My-Doc" in output
    assert sandbox_config()["fail_ssm"] == ["AWS-RunShellScript", "My-Doc"]
    with pytest.raises(CommandError, match="Not SSM document names: bad name!") as caught:
        run("configure", "--fail-ssm", "bad name!")
    assert caught.value.returncode == 2 and "\n" not in str(caught.value)
    assert sandbox_config()["fail_ssm"] == ["AWS-RunShellScript", "My-Doc"]
    ssm_client.start_automation_execution(DocumentName="My-Doc")
    ssm_client.send_command(DocumentName="AWS-RunShellScript", InstanceIds=instances[:1], Comment="hello")
    status = json.loads(run("status", "--json"))
    assert [(a["document_name"], a["status"]) for a in status["ssm_automations"]] == [("My-Doc", "Pending")]
    assert [(c["comment"], c["instance_ids"]) for c in status["ssm_commands"]] == [("hello", instances[:1])]
    run("configure", "--clear")
    assert sandbox_config()["fail_ssm"] == []


# --- shapes --------------------------------------------------------------------------------------

def test_every_ssm_answer_matches_the_botocore_model(ssm_client, instances, clock):
    from tests.sandbox.test_shapes import _record, check_answer

    answers = []
    _record(ssm_client, answers)
    sandbox_configure(fail_ssm=["Failing-Doc"])
    ok = ssm_client.start_automation_execution(DocumentName="AWS-RestartEC2Instance",
                                               Parameters={"InstanceId": [instances[0]]},
                                               ClientToken=str(uuid.uuid4()))["AutomationExecutionId"]
    failing = ssm_client.start_automation_execution(DocumentName="Failing-Doc")["AutomationExecutionId"]
    stopped = ssm_client.start_automation_execution(DocumentName="Custom")["AutomationExecutionId"]
    commands = [ssm_client.send_command(DocumentName=doc, InstanceIds=instances, Comment="c",
                                        Parameters={"commands": ["true"]})["Command"]["CommandId"]
                for doc in ("AWS-RunShellScript", "Failing-Doc")]
    timed_out = ssm_client.send_command(DocumentName="AWS-RunShellScript", InstanceIds=instances[:1],
                                        Parameters={"executionTimeout": ["3"]})["Command"]["CommandId"]
    for step in range(12):
        for execution_id in (ok, failing, stopped):
            automation(ssm_client, execution_id)
        if step == 2:
            ssm_client.stop_automation_execution(AutomationExecutionId=stopped)
            ssm_client.cancel_command(CommandId=timed_out)
        ssm_client.list_commands()
        ssm_client.list_command_invocations(Details=True, MaxResults=2)
        for command_id in commands:
            ssm_client.get_command_invocation(CommandId=command_id, InstanceId=instances[0])
        ssm_client.describe_instance_information(MaxResults=5)
        clock.shift(4)
    errors = [
        lambda: automation(ssm_client, str(uuid.uuid4())),
        lambda: ssm_client.stop_automation_execution(AutomationExecutionId=ok),
        lambda: ssm_client.start_automation_execution(DocumentName="x!"),
        lambda: ssm_client.send_command(DocumentName="AWS-RunShellScript", InstanceIds=["i-0123456789abcdef0"]),
        lambda: ssm_client.send_command(DocumentName="AWS-RunShellScript", InstanceIds=instances[:1] * 2),
        lambda: ssm_client.list_commands(CommandId=str(uuid.uuid4())),
        lambda: ssm_client.list_commands(NextToken="x"),
        lambda: ssm_client.describe_instance_information(Filters=[{"Key": "Nope", "Values": ["x"]}]),
        lambda: ssm_client.get_command_invocation(CommandId=str(uuid.uuid4()), InstanceId=instances[0]),
    ]
    for call in errors:
        with pytest.raises(ClientError):
            call()
    problems = sorted({re.sub(r"\[\d+\]", "", p) for model, response in answers
                       for p in check_answer(model, response)})
    assert problems == [], "\n".join(problems)
    assert len({m.name for m, _ in answers}) == 9
