"""Starting, following and acting on executions through the API."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from executions import engine
from executions.choices import ExecutionStatus, WaveStatus
from executions.models import Execution, ServerClaim
from executions.services import execution_start
from executions.tasks import launch_budget_seconds
from plans.services import WaveSpec, plan_save, plan_wave_specs, protection_group_save

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

EXECUTION_KEYS = {
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
PLAN_KEYS = {"id", "name"}
WAVE_KEYS = {"index", "number", "name", "status", "depends_on", "started_at", "finished_at", "servers", "actions"}
SERVER_KEYS = {
    "source_server_id",
    "hostname",
    "critical",
    "launch_status",
    "phase",
    "job_id",
    "recovery_instance_id",
    "launched_at",
    "error",
    "snapshot_at",
    "attempts",
}
ATTEMPT_KEYS = {"job_id", "launch_status", "error", "started_at", "ended_at"}
TERMINAL = {"SUCCEEDED", "PARTIAL", "FAILED", "CANCELLED", "TIMED_OUT"}


def assert_execution_json(body):
    """Exactly the contract's keys, at every level, with the contract's types."""
    assert set(body) == EXECUTION_KEYS
    assert set(body["plan"]) == PLAN_KEYS
    assert body["mode"] in {"DRILL", "RECOVERY"}
    assert body["status"] in ExecutionStatus.values
    assert isinstance(body["elapsed_seconds"], float)
    assert isinstance(body["rto_target_minutes"], int)
    assert isinstance(body["comment"], str)
    assert set(body["rto"]) == {"target_minutes", "achieved_seconds", "met"}
    assert set(body["rpo"]) == {"target_minutes", "worst_seconds", "met"}
    if body["status"] not in TERMINAL:
        assert body["rto"]["met"] is None and body["rpo"]["met"] is None
    assert body["waves"]
    for wave in body["waves"]:
        assert set(wave) == WAVE_KEYS
        assert wave["status"] in WaveStatus.values
        assert all(isinstance(dep, int) for dep in wave["depends_on"])
        assert wave["number"] == wave["index"] + 1
        assert wave["servers"]
        for server in wave["servers"]:
            assert set(server) == SERVER_KEYS
            assert isinstance(server["critical"], bool)
            assert all(set(attempt) == ATTEMPT_KEYS for attempt in server["attempts"])


def start(client, plan, mode="DRILL", key=None, **body):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/api/v1/executions/", {"plan": plan.pk, "mode": mode, **body}, format="json", headers=headers)


# --- start --------------------------------------------------------------------------------------


def test_start_answers_202_with_the_execution_json_and_its_location(api, plan):
    response = start(api("Operator"), plan, auto_approve=True)

    assert response.status_code == 202, response.json()
    body = response.json()
    assert_execution_json(body)
    assert body["plan"] == {"id": plan.pk, "name": "Three tiers"}
    assert body["mode"] == "DRILL" and body["status"] == "PENDING" and body["requested_by"] == "operator"
    assert [w["name"] for w in body["waves"]] == ["Database", "Application", "Web"]
    assert [w["depends_on"] for w in body["waves"]] == [[], [0], [1]]
    assert [s["hostname"] for w in body["waves"] for s in w["servers"]] == ["db-01", "app-01", "web-01"]
    assert response["Location"] == f"http://testserver/api/v1/executions/{body['id']}/"
    assert Execution.objects.get(pk=body["id"]).auto_approve is True
    assert api("Operator").get(response["Location"]).json() == body


def test_execute_on_the_plan_starts_it_too(api, plan):
    response = api("Commander").post(f"/api/v1/plans/{plan.pk}/execute/", {"mode": "RECOVERY"}, format="json")

    assert response.status_code == 202, response.json()
    assert_execution_json(response.json())
    assert response.json()["mode"] == "RECOVERY"
    assert response["Location"].endswith(f"/api/v1/executions/{response.json()['id']}/")


def test_the_same_idempotency_key_returns_the_same_execution(api, plan):
    client = api("Operator")
    first = start(client, plan, key="drill-2026-03-02")
    again = start(client, plan, key="drill-2026-03-02")
    via_plan = client.post(
        f"/api/v1/plans/{plan.pk}/execute/",
        {"mode": "DRILL"},
        format="json",
        headers={"Idempotency-Key": "drill-2026-03-02"},
    )

    assert first.status_code == again.status_code == via_plan.status_code == 202
    assert first.json()["id"] == again.json()["id"] == via_plan.json()["id"]
    assert again["Location"] == first["Location"]
    assert Execution.objects.count() == 1


def test_an_idempotency_key_reused_for_another_request_is_409(api, plan):
    client = api("Commander")
    start(client, plan, key="k-1")
    response = start(client, plan, mode="RECOVERY", key="k-1")

    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"


def test_an_idempotency_key_is_scoped_to_the_user_who_sent_it(api, plan):
    """Another user's request with the same key is another request: it never gets the first
    user's execution (here it meets the running plan instead), and each user's retry still
    finds their own."""
    first = start(api("Operator"), plan, key="shared-key")
    other = start(api("Commander"), plan, key="shared-key")

    assert first.status_code == 202
    assert other.status_code == 409 and other.json()["code"] == "plan_running"
    assert other.json()["execution"] == first.json()["id"]
    assert start(api("Operator"), plan, key="shared-key").json()["id"] == first.json()["id"]
    Execution.objects.update(status=ExecutionStatus.SUCCEEDED)  # the first run ended: plan and servers are free
    ServerClaim.objects.all().delete()
    second = start(api("Commander"), plan, key="shared-key")
    assert second.status_code == 202 and second.json()["id"] != first.json()["id"]
    assert Execution.objects.count() == 2


def test_an_overlong_idempotency_key_is_400(api, plan):
    response = start(api("Operator"), plan, key="k" * 256)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()


def test_a_running_plan_answers_409_naming_the_running_execution(api, plan, execution):
    response = start(api("Operator"), plan)

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "plan_running"
    assert body["execution"] == str(execution.pk)
    assert str(execution.pk) in body["detail"]


def test_a_server_in_another_running_execution_answers_409(api, groups, plan, execution):
    other = plan_save(name="Database only", waves=[WaveSpec(name="Database", protection_groups=[groups[0]])])
    response = start(api("Operator"), other)

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "server_busy"
    assert body["execution"] == str(execution.pk) and str(execution.pk) in body["detail"]
    assert "db-01" in body["detail"] and body["servers"] == [f"db-01 ({groups[0].servers.get().drs_id})"]


def test_warnings_refuse_a_start_unless_accepted_and_are_recorded(api, sandbox_servers, plan):
    from drsorch.sandbox.services import sandbox_server_update

    sandbox_server_update(source_server_id=sandbox_servers[0].drs_id, replication_state="STALLED", lag_seconds=1800)
    client = api("Operator")
    response = start(client, plan)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "not_ready" and "accept_risks" in body["detail"]
    assert body["readiness"]["ready"] is True  # no error: only risks to accept
    warnings = [c for c in body["readiness"]["checks"] if c["severity"] == "warning"]
    assert {c["code"] for c in warnings} == {"replication_unhealthy", "lag_above_rpo"}
    assert "a recovery now starts from a snapshot about 30 min old" in warnings[0]["message"]
    assert not Execution.objects.exists()

    response = client.post(f"/api/v1/plans/{plan.pk}/execute/", {"mode": "DRILL", "accept_risks": True}, format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["accepted_risks"] == [c["message"] for c in warnings]
    execution = Execution.objects.get()
    event = execution.events.get(data__has_key="accepted_risks")
    assert event.actor.username == "operator" and event.data["accepted_risks"] == execution.accepted_risks


def test_errors_cannot_be_accepted(api, sandbox_servers, plan):
    from drsorch.sandbox.models import SandboxSourceServer

    # Gone from DRS: the start's refresh finds it unknown, whatever accept_risks says.
    SandboxSourceServer.objects.filter(source_server_id=sandbox_servers[0].drs_id).delete()
    response = start(api("Operator"), plan, accept_risks=True)

    assert response.status_code == 400
    assert response.json()["readiness"]["ready"] is False
    assert "unknown_to_drs" in {c["code"] for c in response.json()["readiness"]["checks"]}
    assert not Execution.objects.exists()


def test_an_operator_cannot_accept_the_risks_of_a_recovery(api, sandbox_servers, plan):
    from drsorch.sandbox.services import sandbox_server_update

    sandbox_server_update(source_server_id=sandbox_servers[0].drs_id, replication_state="DISCONNECTED")
    assert start(api("Operator"), plan, mode="RECOVERY", accept_risks=True).status_code == 403
    assert not Execution.objects.exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"plan": 999999, "mode": "DRILL"}, "plan"),
        ({"plan": "not-a-number", "mode": "DRILL"}, "plan"),
        ({"mode": "DRILL"}, "plan"),
        ({"plan": "PLAN", "mode": "BACKUP"}, "mode"),
        ({"plan": "PLAN"}, "mode"),
        ({"plan": "PLAN", "mode": "DRILL", "auto_approve": "perhaps"}, "auto_approve"),
    ],
)
def test_bad_start_bodies_answer_400_naming_the_field(api, plan, body, field):
    body = {key: plan.pk if value == "PLAN" else value for key, value in body.items()}
    response = api("Operator").post("/api/v1/executions/", body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert isinstance(response.json()[field], list) and response.json()[field]
    assert not Execution.objects.exists()


@pytest.mark.parametrize("plan_id", ["FLOAT", "FLOAT_STRING", "\uff12", "\u0662", 2**70, str(2**70), True, 0, -1, [1]])
def test_a_plan_id_that_is_not_a_whole_number_in_range_is_400_and_starts_nothing(api, plan, plan_id):
    """2.9 must not start plan 2 (the ORM truncates floats), and fullwidth or Arabic-Indic
    digits or a 70-bit number must not reach the database."""
    if plan_id in ("FLOAT", "FLOAT_STRING"):
        plan_id = plan.pk + 0.9 if plan_id == "FLOAT" else f"{plan.pk}.9"
    response = api("Operator").post("/api/v1/executions/", {"plan": plan_id, "mode": "DRILL"}, format="json")

    assert response.status_code == 400
    assert response.json()["plan"][0].startswith("Expected the id of an object, a whole number from 1 to ")
    assert not Execution.objects.exists()


@pytest.mark.parametrize("path", ["/api/v1/executions/", "/api/v1/plans/"])
def test_an_oversized_body_answers_413_in_the_apis_json(api, plan, path, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"name": "' + "x" * 2000 + '"}'
    response = api("superuser").post(path, body, content_type="application/json")
    assert response.status_code == 413 and response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "The request body is larger than 1,000 bytes; no request of this API needs that much.",
        "code": "request_too_large",
    }
    assert not Execution.objects.exists()


@pytest.mark.parametrize("path", ["/api/v1/executions/", "/api/v1/plans/"])
def test_a_body_nested_past_the_recursion_limit_is_a_400_parse_error(api, plan, path):
    depth = 100_000  # 200 kB: well within the size limit
    response = api("superuser").post(path, "[" * depth + "]" * depth, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": "JSON parse error - the body is nested too deeply.", "code": "parse_error"}


NUL_BODIES = [
    ("/api/v1/targets/", {"name": "dr\u0000", "kind": "sandbox", "account_id": "123456789012", "region": "us-east-1"}),
    ("/api/v1/protection-groups/", {"name": "g", "target": 1, "tag_selector": {"Tier": "db\u0000"}}),
    ("/api/v1/plans/", {"name": "p", "waves": [{"name": "w", "protection_groups": [1], "x\u0000": 1}]}),
    ("/api/v1/executions/", {"plan": 1, "mode": "DRILL", "comment": "\u0000"}),
]


@pytest.mark.parametrize(
    "path, body, as_form",
    [*((path, body, False) for path, body in NUL_BODIES), (*NUL_BODIES[0], True), (*NUL_BODIES[3], True)],
)
def test_a_nul_character_in_a_body_is_a_400_and_never_reaches_the_database(api, plan, path, body, as_form):
    """PostgreSQL refuses NUL in text and jsonb: before this, a uniqueness check of a target
    name sent it there (a 500 on PostgreSQL, unseen on SQLite)."""
    sent = []

    def record(execute, sql, params, many, context):
        sent.extend(p for p in (params or ()) if isinstance(p, str))
        return execute(sql, params, many, context)

    client = api("superuser")
    with connection.execute_wrapper(record):
        if as_form:
            response = client.post(path, body)
        else:
            response = client.post(path, json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "The body holds a NUL character (\\u0000); no field accepts one.",
        "code": "parse_error",
    }
    assert not any("\x00" in value for value in sent)


def test_a_body_that_is_not_json_answers_400(api, plan):
    response = api("Operator").post("/api/v1/executions/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


@pytest.mark.parametrize("body, field", [({"mode": "SOMETIMES"}, "mode"), ({}, "mode")])
def test_bad_execute_bodies_answer_400(api, plan, body, field):
    response = api("Operator").post(f"/api/v1/plans/{plan.pk}/execute/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_execute_of_an_unknown_plan_is_404(api, plan):
    assert api("Operator").post("/api/v1/plans/999999/execute/", {"mode": "DRILL"}, format="json").status_code == 404


# --- reading ------------------------------------------------------------------------------------


def test_list_is_paginated_and_filtered(api, clock, groups, plan, execution):
    other = plan_save(name="Web only", waves=[WaveSpec(name="Web", protection_groups=[groups[2]])])
    client = api("Viewer")
    execution.status = ExecutionStatus.CANCELLED
    execution.save()
    execution.server_claims.all().delete()  # what the engine does when it ends an execution
    clock.shift(60)
    recovery = execution_start(plan=other, mode="RECOVERY", requested_by=None)

    everything = client.get("/api/v1/executions/").json()
    assert everything["count"] == 2 and set(everything) == {"count", "next", "previous", "results"}
    for item in everything["results"]:
        assert_execution_json(item)

    def ids(query):
        response = client.get(f"/api/v1/executions/?{query}")
        assert response.status_code == 200, response.json()
        return [item["id"] for item in response.json()["results"]]

    assert ids(f"plan={plan.pk}") == [str(execution.pk)]
    assert ids("mode=RECOVERY") == [str(recovery.pk)]
    assert ids("status=CANCELLED") == [str(execution.pk)]
    assert ids("status=CANCELLED&status=PENDING") == [str(recovery.pk), str(execution.pk)]
    assert ids("date_after=2026-03-02&date_before=2026-03-02") == [str(recovery.pk), str(execution.pk)]
    assert ids("date_after=2026-03-03") == []


@pytest.mark.parametrize("query", ["mode=BACKUP", "status=DONE", "plan=999999", "date_after=yesterday"])
def test_bad_filters_answer_400(api, query):
    response = api("Viewer").get(f"/api/v1/executions/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0].removesuffix("_after") in "".join(response.json())


def test_the_list_takes_the_same_number_of_queries_for_more_executions(api, make_sandbox_servers, execution):
    client = api("Viewer")

    def count_queries():
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/v1/executions/").status_code == 200
        return len(queries)

    one = count_queries()
    for server in make_sandbox_servers("extra-01", "extra-02", "extra-03"):
        group = protection_group_save(name=server.hostname, target=server.target, servers=[server])
        other = plan_save(name=server.hostname, waves=[WaveSpec(name="only", protection_groups=[group])])
        execution_start(plan=other, mode="DRILL", requested_by=None)
    assert count_queries() == one


def test_detail_of_an_unknown_execution_is_404(api):
    client = api("Viewer")
    assert client.get("/api/v1/executions/00000000-0000-0000-0000-000000000000/").status_code == 404
    response = client.get("/api/v1/executions/not-a-uuid/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found" and response.json()["detail"]


def test_events_are_paginated_in_the_shape_of_the_contract(api, execution):
    response = api("Viewer").get(f"/api/v1/executions/{execution.pk}/events/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] >= 1
    event = body["results"][0]
    assert set(event) == {"id", "created_at", "kind", "actor", "wave_index", "source_server_id", "message", "data"}
    assert event["kind"] == "ACTION" and "Started a drill" in event["message"]
    filtered = api("Viewer").get(f"/api/v1/executions/{execution.pk}/events/?kind=DRS").json()
    assert filtered["count"] == 0
    assert api("Viewer").get(f"/api/v1/executions/{execution.pk}/events/?kind=NOPE").status_code == 400


# --- actions ------------------------------------------------------------------------------------


def test_cancel_then_a_second_cancel_is_409(api, execution):
    client = api("Operator")
    response = client.post(f"/api/v1/executions/{execution.pk}/cancel/")

    assert response.status_code == 200, response.json()
    assert_execution_json(response.json())
    assert response.json()["status"] == "CANCELLING"
    again = client.post(f"/api/v1/executions/{execution.pk}/cancel/")
    assert again.status_code == 409
    assert set(again.json()) == {"detail", "code"} and again.json()["code"] == "conflict"


@pytest.mark.parametrize("verb", ["approve", "retry", "cleanup"])
def test_actions_that_do_not_fit_the_state_are_409(api, execution, verb):
    response = api("Operator").post(f"/api/v1/executions/{execution.pk}/{verb}/")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict" and response.json()["detail"]


def test_approve_refuses_a_bad_wave_index(api, execution):
    response = api("Operator").post(f"/api/v1/executions/{execution.pk}/approve/", {"wave_index": -1}, format="json")
    assert response.status_code == 400
    assert "wave_index" in response.json()


def drive(clock, client, location, until, seconds=5, limit=200):
    """Advance the engine and poll the API, as a script would, until `until(body)`."""
    for _ in range(limit):
        body = client.get(location).json()
        if until(body):
            return body
        engine.tick(launch_budget_seconds=launch_budget_seconds())
        clock.shift(seconds)
    raise AssertionError(f"never reached the expected state: {body['status']}")


def test_a_drill_followed_through_the_api_gate_approved_then_cleaned_up(api, clock, groups, plan):
    """The walk-through of docs/api.md: start, poll, approve the gate, poll to the end, clean up."""
    specs = plan_wave_specs(plan=plan)
    specs[1].approval_required = True
    plan_save(plan=plan, name=plan.name, waves=specs)
    client = api("Operator")
    started = client.post(
        f"/api/v1/plans/{plan.pk}/execute/",
        {"mode": "DRILL"},
        format="json",
        headers={"Idempotency-Key": "walk-through"},
    )
    assert started.status_code == 202
    location = started["Location"]

    waiting = drive(clock, client, location, lambda body: body["status"] == "WAITING_APPROVAL")
    assert [w["status"] for w in waiting["waves"]][:2] == ["SUCCEEDED", "WAITING_APPROVAL"]
    approved = client.post(f"{location}approve/", {"wave_index": 1}, format="json")
    assert approved.status_code == 200, approved.json()
    assert approved.json()["waves"][1]["status"] == "LAUNCHING"

    done = drive(clock, client, location, lambda body: body["status"] in TERMINAL)
    assert done["status"] == "SUCCEEDED"
    assert all(
        s["launch_status"] == "LAUNCHED" and s["recovery_instance_id"] for w in done["waves"] for s in w["servers"]
    )
    assert_execution_json(done)

    cleaned = client.post(f"{location}cleanup/")
    assert cleaned.status_code == 202, cleaned.json()  # the worker terminates them
    terminated = drive(
        clock,
        client,
        location,
        lambda body: all(s["launch_status"] == "TERMINATED" for w in body["waves"] for s in w["servers"]),
    )
    assert terminated["status"] == "SUCCEEDED"
    kinds = [event["kind"] for event in client.get(f"{location}events/").json()["results"]]
    assert kinds.count("ACTION") == 3  # start, approve, clean-up


def test_date_filters_accept_any_iso_offset_and_refuse_instants_beyond_year_9999(api, execution):
    client = api("Viewer")
    # +19:47 is valid ISO 8601 but beyond PostgreSQL's ±15:59: it must be compared in UTC.
    response = client.get("/api/v1/executions/", {"created_before": "3059-03-28T13:36:37+19:47"})
    assert response.status_code == 200 and response.json()["count"] == 1
    response = client.get("/api/v1/executions/", {"created_after": "9999-12-31T23:00:00-05:00"})
    assert response.status_code == 400 and "created_after" in response.json()


# --- comments (issue 13) ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["executions", "plan"])
def test_a_start_takes_a_comment_kept_on_the_execution_and_in_its_audit_log(api, plan, path):
    client = api("Operator")
    body = {"mode": "DRILL", "comment": "  Quarterly drill, ticket DR-42  "}
    if path == "executions":
        response = client.post("/api/v1/executions/", {"plan": plan.pk, **body}, format="json")
    else:
        response = client.post(f"/api/v1/plans/{plan.pk}/execute/", body, format="json")

    assert response.status_code == 202, response.json()
    assert_execution_json(response.json())
    assert response.json()["comment"] == "Quarterly drill, ticket DR-42"
    events = client.get(f"/api/v1/executions/{response.json()['id']}/events/?kind=ACTION").json()["results"]
    assert events[0]["actor"] == "operator" and "Quarterly drill, ticket DR-42" in events[0]["message"]
    assert events[0]["data"]["comment"] == "Quarterly drill, ticket DR-42"


def test_a_start_without_a_comment_has_an_empty_one(api, plan):
    response = start(api("Operator"), plan)
    assert response.status_code == 202 and response.json()["comment"] == ""


@pytest.mark.parametrize(
    "comment, message",
    [
        ("x" * 1001, "The comment is too long; keep it to 1000 characters at most."),
        (["a list"], "The comment must be text."),
        (42, "The comment must be text."),
    ],
)
def test_a_bad_comment_is_400_naming_it_and_starts_nothing(api, plan, comment, message):
    response = start(api("Operator"), plan, comment=comment)

    assert response.status_code == 400
    assert response.json() == {"comment": [message]}
    assert not Execution.objects.exists()


def recovery_waiting_at_gate(plan):
    """A RECOVERY of `plan` whose second wave waits at its approval gate."""
    execution = execution_start(plan=plan, mode="RECOVERY", requested_by=None)
    execution.wave_runs.filter(index=1).update(status=WaveStatus.WAITING_APPROVAL, approval_required=True)
    Execution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.WAITING_APPROVAL)
    return execution


def test_approving_a_recovery_gate_needs_a_comment(api, plan):
    execution = recovery_waiting_at_gate(plan)
    client = api("Operator")

    for body in ({}, {"comment": "   "}, {"comment": None}):
        refused = client.post(f"/api/v1/executions/{execution.pk}/approve/", body, format="json")
        assert refused.status_code == 400
        assert refused.json() == {
            "comment": ["A comment is required to approve a gate of a RECOVERY: say why, for the audit trail."]
        }
    assert execution.wave_runs.get(index=1).status == WaveStatus.WAITING_APPROVAL

    approved = client.post(
        f"/api/v1/executions/{execution.pk}/approve/", {"comment": "Bridge call: DB verified"}, format="json"
    )
    assert approved.status_code == 200, approved.json()
    assert approved.json()["waves"][1]["status"] == "LAUNCHING"
    [event] = client.get(f"/api/v1/executions/{execution.pk}/events/?kind=ACTION&wave_index=1").json()["results"]
    assert event["actor"] == "operator"
    assert event["message"] == "Approved wave 2 'Application'. Comment: \u201cBridge call: DB verified\u201d"


def test_a_viewer_is_refused_before_the_comment_is_judged(api, plan):
    execution = recovery_waiting_at_gate(plan)
    for verb in ("approve", "cancel"):
        response = api("Viewer").post(f"/api/v1/executions/{execution.pk}/{verb}/", {"comment": "x"}, format="json")
        assert response.status_code == 403


def test_a_drill_is_approved_and_cancelled_without_a_comment_and_keeps_one_given(api, plan, execution):
    client = api("Operator")
    response = client.post(f"/api/v1/executions/{execution.pk}/cancel/", {"comment": "Lab maintenance"}, format="json")

    assert response.status_code == 200 and response.json()["status"] == "CANCELLING"
    [cancel] = [
        e
        for e in client.get(f"/api/v1/executions/{execution.pk}/events/?kind=ACTION").json()["results"]
        if e["message"].startswith("Cancelled")
    ]
    assert cancel["data"] == {"comment": "Lab maintenance"} and "Lab maintenance" in cancel["message"]


def test_cancelling_a_recovery_needs_a_comment(api, plan):
    execution = execution_start(plan=plan, mode="RECOVERY", requested_by=None)
    client = api("Commander")

    refused = client.post(f"/api/v1/executions/{execution.pk}/cancel/")
    assert refused.status_code == 400
    assert refused.json() == {"comment": ["A comment is required to cancel a RECOVERY: say why, for the audit trail."]}
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.PENDING

    too_long = client.post(f"/api/v1/executions/{execution.pk}/cancel/", {"comment": "y" * 1001}, format="json")
    assert too_long.status_code == 400 and "comment" in too_long.json()

    cancelled = client.post(
        f"/api/v1/executions/{execution.pk}/cancel/", {"comment": "Drill plan picked by mistake"}, format="json"
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLING"
