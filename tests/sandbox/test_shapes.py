"""Every answer of the simulated DRS, EC2 and SSM must match botocore's model of it.

botocore's parsers are lenient (they drop unknown members and do not check enums or
patterns), so the answers are checked on the wire: each JSON body (rest-json) or XML
document (ec2) is walked against the operation's output shape, or against the error shape
its `x-amzn-ErrorType` names, recursively: no unknown members, required members present,
types, enums, string patterns and lengths, list and number bounds.
"""

import json
import re
from datetime import datetime
from xml.etree import ElementTree

import pytest
from botocore.exceptions import ClientError

from drsorch.sandbox.services import sandbox_configure, sandbox_server_update, sandbox_set_region_initialized
from tests.sandbox.conftest import start

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


# --- the walkers ---------------------------------------------------------------------------------


def _check_bounds(shape, size, path, problems, what):
    if "min" in shape.metadata and size < shape.metadata["min"]:
        problems.append(f"{path}: {what} {size} below min {shape.metadata['min']}")
    if "max" in shape.metadata and size > shape.metadata["max"]:
        problems.append(f"{path}: {what} {size} above max {shape.metadata['max']}")


def _check_string(shape, value, path, problems):
    if not isinstance(value, str):
        problems.append(f"{path}: expected a string, got {value!r}")
        return
    if "enum" in shape.metadata and value not in shape.metadata["enum"]:
        problems.append(f"{path}: {value!r} is not one of {shape.metadata['enum']}")
    if "pattern" in shape.metadata and not re.fullmatch(shape.metadata["pattern"], value):
        problems.append(f"{path}: {value!r} does not match {shape.metadata['pattern']}")
    _check_bounds(shape, len(value), path, problems, "length")


def check_json(shape, value, path="", problems=None):
    """Walk a JSON value against a botocore shape; return the list of problems."""
    problems = [] if problems is None else problems
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object, got {value!r}")
            return problems
        body_members = {n: m for n, m in shape.members.items() if m.serialization.get("location") is None}
        for name in shape.required_members:
            if name in body_members and name not in value:
                problems.append(f"{path}: required member {name} missing")
        for name, member_value in value.items():
            if name not in body_members:
                problems.append(f"{path}: unknown member {name}")
            else:
                check_json(body_members[name], member_value, f"{path}.{name}", problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {value!r}")
            return problems
        _check_bounds(shape, len(value), path, problems, "size")
        for index, item in enumerate(value):
            check_json(shape.member, item, f"{path}[{index}]", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map, got {value!r}")
            return problems
        _check_bounds(shape, len(value), path, problems, "size")
        for key, item in value.items():
            _check_string(shape.key, key, f"{path} key", problems)
            check_json(shape.value, item, f"{path}[{key!r}]", problems)
    elif kind == "string":
        _check_string(shape, value, path, problems)
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected an integer, got {value!r}")
        else:
            _check_bounds(shape, value, path, problems, "value")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected a boolean, got {value!r}")
    elif kind == "timestamp":  # the json protocol (SSM) writes epoch seconds
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{path}: expected epoch seconds, got {value!r}")
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{path}: expected a number, got {value!r}")
    else:
        problems.append(f"{path}: shape type {kind} is not expected in these answers")
    return problems


def _tag(element):
    return element.tag.rsplit("}", 1)[-1]


def _xml_name(name, member):
    return member.serialization.get("name", name)


def check_xml(shape, element, path="", problems=None):
    """Walk an EC2 XML element against a botocore shape; return the list of problems."""
    problems = [] if problems is None else problems
    kind = shape.type_name
    if kind == "structure":
        by_tag = {_xml_name(n, m): (n, m) for n, m in shape.members.items()}
        present = set()
        for child in element:
            if _tag(child) not in by_tag:
                problems.append(f"{path}: unknown element {_tag(child)}")
                continue
            name, member = by_tag[_tag(child)]
            present.add(name)
            check_xml(member, child, f"{path}.{name}", problems)
        for name in shape.required_members:
            if name not in present:
                problems.append(f"{path}: required member {name} missing")
    elif kind == "list":
        items = list(element)
        _check_bounds(shape, len(items), path, problems, "size")
        for index, item in enumerate(items):
            if _tag(item) != shape.member.serialization.get("name", "item"):
                problems.append(f"{path}[{index}]: list item element is {_tag(item)}")
            check_xml(shape.member, item, f"{path}[{index}]", problems)
    elif kind == "string":
        _check_string(shape, element.text or "", path, problems)
    elif kind in ("integer", "long"):
        if not re.fullmatch(r"-?\d+", element.text or ""):
            problems.append(f"{path}: expected an integer, got {element.text!r}")
    elif kind == "boolean":
        if element.text not in ("true", "false"):
            problems.append(f"{path}: expected true or false, got {element.text!r}")
    elif kind == "timestamp":
        try:
            datetime.fromisoformat((element.text or "").replace("Z", "+00:00"))
        except ValueError:
            problems.append(f"{path}: expected an ISO-8601 timestamp, got {element.text!r}")
    else:
        problems.append(f"{path}: shape type {kind} is not expected in these answers")
    return problems


def check_answer(model, http_response):
    """Problems of one recorded answer (success or error) against botocore's model."""
    service = model.service_model
    name = f"{service.service_name}.{model.name} {http_response.status_code}"
    if service.protocol == "rest-json":
        body = json.loads(http_response.content) if http_response.content else {}
        if http_response.status_code < 300:
            problems = [] if model.output_shape is None and body == {} else check_json(model.output_shape, body)
            if http_response.status_code != model.http.get("responseCode", 200):
                problems.append(f"status {http_response.status_code} != {model.http.get('responseCode')}")
        else:
            code = http_response.headers["x-amzn-ErrorType"]
            shape = service.shape_for(code)
            problems = check_json(shape, body)
            if shape.metadata["error"]["httpStatusCode"] != http_response.status_code:
                problems.append(f"{code} answered with {http_response.status_code}")
        return [f"{name}: {p}" for p in problems]
    if service.protocol == "json":
        body = json.loads(http_response.content)
        if http_response.status_code < 300:
            problems = check_json(model.output_shape, body) if model.output_shape is not None else []
        else:
            code = body.pop("__type", "")
            if code in ("ValidationException", "ThrottlingException", "AccessDeniedException"):
                problems = [] if set(body) <= {"Message"} else [f"{code}: unexpected members {sorted(body)}"]
            else:
                problems = check_json(service.shape_for(code), body)
            if http_response.status_code != 400:
                problems.append(f"{code} answered with {http_response.status_code}")
        return [f"{name}: {p}" for p in problems]
    root = ElementTree.fromstring(http_response.content)
    if http_response.status_code < 300:
        assert _tag(root) == f"{model.name}Response"
        children = [c for c in root if _tag(c) != "requestId"]
        wrapper = ElementTree.Element("wrapper")
        wrapper.extend(children)
        return [f"{name}: {p}" for p in check_xml(model.output_shape, wrapper)]
    error = root.find("Errors/Error")
    problems = []
    if _tag(root) != "Response" or error is None or not error.findtext("Code") or root.find("RequestID") is None:
        problems.append("EC2 error document is not <Response><Errors><Error><Code>...")
    return [f"{name}: {p}" for p in problems]


# --- the walkers catch what they should ------------------------------------------------------


def test_the_walker_finds_unknown_members_bad_enums_and_patterns(drs_client):
    job_shape = drs_client.meta.service_model.shape_for("Job")
    problems = check_json(job_shape, {"jobID": "drsjob-short", "status": "RUNNING", "color": "red"})
    assert any("does not match" in p for p in problems)
    assert any("RUNNING" in p for p in problems)
    assert any("unknown member color" in p for p in problems)
    assert check_json(job_shape, {}) == [": required member jobID missing"]


# --- every answer of a busy scenario -----------------------------------------------------------


def _record(client, answers):
    def after_call(http_response, model, **kwargs):
        answers.append((model, http_response))

    client.meta.events.register("after-call", after_call)


def _expect_error(call, *args, **kwargs):
    with pytest.raises(ClientError):
        call(*args, **kwargs)


def test_every_answer_matches_the_botocore_model(
    drs_client, ec2_client, sandbox_servers, sandbox_target, clock, launch_seconds
):
    answers = []
    _record(drs_client, answers)
    _record(ec2_client, answers)
    db, app, web = sandbox_servers
    sandbox_configure(fail_launch=["web-01"])

    drs_client.describe_source_servers(maxResults=2)
    drill = start(drs_client, sandbox_servers, isDrill=True, tags={"launch-token": "t"})
    _expect_error(start, drs_client, [db])  # ConflictException
    for _ in range(30):
        clock.shift(1)
        drs_client.describe_jobs(filters={"jobIDs": [drill["jobID"]]})
        drs_client.describe_job_log_items(jobID=drill["jobID"])
    drs_client.describe_source_servers()
    instances = drs_client.describe_recovery_instances()["items"]
    ids = [i["recoveryInstanceID"] for i in instances]
    ec2_client.describe_instances(InstanceIds=ids)
    ec2_client.describe_instance_status(InstanceIds=ids)
    clock.shift(30)
    ec2_client.describe_instance_status()
    drs_client.describe_recovery_snapshots(sourceServerID=db.drs_id, order="DESC", maxResults=3)
    drs_client.get_launch_configuration(sourceServerID=app.drs_id)
    drs_client.tag_resource(resourceArn=instances[0]["arn"], tags={"Owner": "dr"})
    drs_client.list_tags_for_resource(resourceArn=instances[0]["arn"])
    drs_client.list_tags_for_resource(resourceArn=drill["arn"])

    recovery = start(drs_client, [db], isDrill=False)
    clock.shift(60)
    drs_client.describe_jobs(filters={"jobIDs": [recovery["jobID"]]})
    # The recovery replaced db's drill instance (CLEANUP_START/END): DRS lists the new one only.
    drs_client.describe_job_log_items(jobID=recovery["jobID"])
    ids = [i["recoveryInstanceID"] for i in drs_client.describe_recovery_instances()["items"]]
    terminate = drs_client.terminate_recovery_instances(recoveryInstanceIDs=ids)["job"]
    clock.shift(1.5)
    drs_client.describe_recovery_instances()
    ec2_client.describe_instances()
    clock.shift(60)
    drs_client.describe_jobs()
    drs_client.describe_job_log_items(jobID=terminate["jobID"])
    drs_client.describe_recovery_instances()
    ec2_client.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["terminated"]}])
    ec2_client.describe_instance_status(IncludeAllInstances=True)

    _expect_error(drs_client.start_recovery, sourceServers=[{"sourceServerID": "s-00000000000000000"}])
    _expect_error(drs_client.start_recovery, sourceServers=[{"sourceServerID": "x-!!!!!!!!!!!!!!!!!"}])
    _expect_error(drs_client.get_launch_configuration, sourceServerID="s-00000000000000000")
    _expect_error(drs_client.describe_recovery_snapshots, sourceServerID="s-00000000000000000")
    _expect_error(drs_client.list_tags_for_resource, resourceArn="arn:aws:drs:us-east-1:123456789012:job/x")
    _expect_error(drs_client.terminate_recovery_instances, recoveryInstanceIDs=ids[:1])
    _expect_error(drs_client.list_launch_actions, resourceId="s-00000000000000000")
    drs_client.list_launch_actions(resourceId=app.drs_id)
    _expect_error(drs_client.describe_launch_configuration_templates)
    _expect_error(ec2_client.describe_instances, InstanceIds=["i-0123456789abcdef0"])
    _expect_error(ec2_client.describe_instances, InstanceIds=["bad"])
    _expect_error(ec2_client.describe_volumes)
    sandbox_configure(throttle_rate=1)
    _expect_error(drs_client.describe_jobs)
    _expect_error(ec2_client.describe_instances)
    sandbox_configure(throttle_rate=0)
    sandbox_set_region_initialized(
        account_id=sandbox_target.account_id, region=sandbox_target.region, initialized=False
    )
    _expect_error(drs_client.describe_source_servers)

    seen_errors = {r.headers.get("x-amzn-ErrorType") for _, r in answers if r.status_code >= 300}
    assert {
        "ConflictException",
        "ResourceNotFoundException",
        "ValidationException",
        "ThrottlingException",
        "UninitializedAccountException",
    } <= seen_errors
    assert {m.name for m, _ in answers} >= {
        "DescribeSourceServers",
        "StartRecovery",
        "DescribeJobs",
        "DescribeJobLogItems",
        "DescribeRecoveryInstances",
        "DescribeRecoverySnapshots",
        "TerminateRecoveryInstances",
        "GetLaunchConfiguration",
        "ListTagsForResource",
        "TagResource",
        "DescribeInstances",
        "DescribeInstanceStatus",
    }
    problems = [p for model, response in answers for p in check_answer(model, response)]
    assert problems == []


def test_answers_of_the_strict_switches_match_the_botocore_model(
    drs_client, ec2_client, sandbox_servers, clock, launch_seconds
):
    answers = []
    _record(drs_client, answers)
    _record(ec2_client, answers)
    db, app, web = sandbox_servers
    sandbox_server_update(
        source_server_id=web.drs_id,
        post_launch_actions=[
            {
                "actionId": "5f1c0d9e-2b7a-4c4e-8f3d-1a2b3c4d5e6f",
                "actionCode": "AWS-RunShellScript",
                "type": "SSM_COMMAND",
                "name": "Optional check",
                "active": True,
                "order": 2,
                "actionVersion": "$DEFAULT",
                "optional": True,
                "category": "VALIDATION",
            }
        ],
    )
    first = start(drs_client, [db, app, web], isDrill=True, tags={"launch-token": "t"})
    clock.shift(60)
    sandbox_configure(
        disconnect=["db-01"],
        busy=["web-01"],
        busy_seconds=30,
        omit_instance_ids=True,
        no_job_tags=True,
        fail_post_launch=["app-01", "web-01"],
        latency_ms=0,
    )
    drs_client.describe_source_servers()
    _expect_error(start, drs_client, [web])  # ConflictException: held by the outside job
    relaunch = start(drs_client, [db, app], isDrill=True, tags={"launch-token": "u"})
    for _ in range(40):
        clock.shift(1.5)
        drs_client.describe_jobs()  # without tags and without recoveryInstanceID
        drs_client.describe_job_log_items(jobID=relaunch["jobID"])  # CLEANUP_*, USING_PREVIOUS_SNAPSHOT
    drs_client.describe_job_log_items(jobID=first["jobID"])
    drs_client.describe_recovery_instances()
    ec2_client.describe_instances()
    sandbox_configure(deny=["DescribeJobs", "ListTagsForResource", "GetLaunchConfiguration"])
    _expect_error(drs_client.describe_jobs)  # AccessDeniedException
    _expect_error(drs_client.list_tags_for_resource, resourceArn=relaunch["arn"])
    _expect_error(drs_client.get_launch_configuration, sourceServerID=db.drs_id)

    seen_errors = {r.headers.get("x-amzn-ErrorType") for _, r in answers if r.status_code >= 300}
    assert {"ConflictException", "AccessDeniedException"} <= seen_errors
    bodies = [json.loads(r.content) for m, r in answers if m.name == "DescribeJobs" and r.status_code == 200]
    jobs = [j for body in bodies for j in body["items"]]
    assert jobs and all("tags" not in j for j in jobs)
    assert all("recoveryInstanceID" not in s for j in jobs for s in j["participatingServers"])
    statuses = {
        r["status"]
        for j in jobs
        for s in j["participatingServers"]
        for r in s.get("launchActionsStatus", {}).get("runs", [])
    }
    assert "FAILED" in statuses
    logs = [json.loads(r.content) for m, r in answers if m.name == "DescribeJobLogItems" and r.status_code == 200]
    events = {i["event"] for body in logs for i in body["items"]}
    assert {"CLEANUP_START", "CLEANUP_END", "USING_PREVIOUS_SNAPSHOT", "SNAPSHOT_START"} <= events
    problems = [p for model, response in answers for p in check_answer(model, response)]
    assert problems == []
