"""Targets, source servers, protection groups and plans through the API, with the pages' rules."""

import pytest

from plans.models import ProtectionGroup, RecoveryPlan, SourceServer, Target
from plans.services import WaveSpec, plan_save
from tests.factories import SourceServerFactory, TargetFactory

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

WAVE_KEYS = {
    "index",
    "name",
    "protection_groups",
    "depends_on",
    "approval_required",
    "wait_after_minutes",
    "timeout_minutes",
    "optional_servers",
    "actions",
}


def wave(name, *groups, **fields):
    return {"name": name, "protection_groups": [g.pk for g in groups], **fields}


# --- plans --------------------------------------------------------------------------------------


def test_create_a_plan_with_nested_waves(api, groups):
    db, app, web = groups
    body = {
        "name": "ERP",
        "description": "The ERP system",
        "rto_target_minutes": 90,
        "rpo_target_minutes": 10,
        "waves": [
            wave("Database", db, timeout_minutes=30),
            wave("Application", app, approval_required=True, optional_servers=[app.servers.get().pk]),
            wave("Web", web, depends_on=[0, 1], wait_after_minutes=5),
        ],
    }
    response = api("Planner").post("/api/v1/plans/", body, format="json")

    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["owner"] == "planner" and created["rto_target_minutes"] == 90
    assert all(set(w) == WAVE_KEYS for w in created["waves"])
    assert [(w["index"], w["name"], w["depends_on"]) for w in created["waves"]] == [
        (0, "Database", []),
        (1, "Application", [0]),
        (2, "Web", [0, 1]),
    ]
    assert created["waves"][1]["approval_required"] is True
    assert created["waves"][1]["optional_servers"] == [app.servers.get().pk]
    assert created["waves"][0]["timeout_minutes"] == 30 and created["waves"][2]["wait_after_minutes"] == 5
    plan = RecoveryPlan.objects.get(name="ERP")
    assert [w.name for w in plan.waves.order_by("order")] == ["Database", "Application", "Web"]
    assert api("Viewer").get(f"/api/v1/plans/{plan.pk}/").json() == created


def test_put_replaces_the_waves_and_patch_keeps_them(api, plan, groups):
    client = api("Planner")
    url = f"/api/v1/plans/{plan.pk}/"

    response = client.put(url, {"name": "Renamed", "waves": [wave("Everything", *groups)]}, format="json")
    assert response.status_code == 200, response.json()
    assert [w["name"] for w in response.json()["waves"]] == ["Everything"]

    response = client.patch(url, {"rto_target_minutes": 30}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "Renamed" and response.json()["rto_target_minutes"] == 30
    assert [w["name"] for w in response.json()["waves"]] == ["Everything"]

    round_trip = client.put(url, client.get(url).json(), format="json")
    assert round_trip.status_code == 200 and round_trip.json()["waves"] == response.json()["waves"]


def test_list_of_plans_is_paginated_and_searchable(api, plan):
    client = api("Viewer")
    assert client.get("/api/v1/plans/").json()["count"] == 1
    assert client.get("/api/v1/plans/?q=three").json()["results"][0]["id"] == plan.pk
    assert client.get("/api/v1/plans/?q=nothing").json()["count"] == 0


def test_delete_a_plan(api, plan):
    assert api("Planner").delete(f"/api/v1/plans/{plan.pk}/").status_code == 204
    assert not RecoveryPlan.objects.exists()


def test_a_plan_with_executions_cannot_be_deleted(api, plan, execution):
    response = api("Planner").delete(f"/api/v1/plans/{plan.pk}/")
    assert response.status_code == 409
    assert response.json()["code"] == "protected" and "execution" in response.json()["detail"]


def test_a_dependency_cycle_is_400_under_waves(api, groups):
    db, app, web = groups
    body = {"name": "Cyclic", "waves": [wave("A", db, depends_on=[1]), wave("B", app, depends_on=[0])]}
    response = api("Planner").post("/api/v1/plans/", body, format="json")

    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == ["waves"]
    assert "cycle" in errors["waves"]["non_field_errors"][0]
    assert "'A'" in errors["waves"]["non_field_errors"][0]


def test_an_empty_wave_is_400_naming_the_wave_field(api, groups):
    body = {"name": "Hollow", "waves": [wave("Database", groups[0]), wave("Nothing")]}
    response = api("Planner").post("/api/v1/plans/", body, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "waves": {"1": {"protection_groups": ["Wave 'Nothing' is empty: choose at least one protection group."]}}
    }


def test_a_plan_without_waves_is_400(api):
    response = api("Planner").post("/api/v1/plans/", {"name": "Empty", "waves": []}, format="json")
    assert response.status_code == 400
    assert response.json() == {"waves": {"non_field_errors": ["A plan needs at least one wave."]}}


def test_wave_errors_of_several_kinds_are_reported_together(api, plan, groups):
    db, app, web = groups
    body = {
        "name": "Three tiers",
        "rto_target_minutes": 0,
        "waves": [
            wave("Same", db),
            wave("Same", db),
            wave("Web", web, depends_on=[7], timeout_minutes=0),
        ],
    }
    response = api("Planner").post("/api/v1/plans/", body, format="json")

    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"rto_target_minutes", "waves"}
    assert errors["waves"] == {"2": {"timeout_minutes": ["Ensure this value is greater than or equal to 1."]}}


def test_service_errors_name_plan_and_wave_fields(api, plan, groups):
    db, app, web = groups
    body = {"name": "Three tiers", "waves": [wave("Same", db), wave("Same", db), wave("Web", web, depends_on=[7])]}
    response = api("Planner").post("/api/v1/plans/", body, format="json")

    assert response.status_code == 400
    errors = response.json()
    assert "already exists" in errors["name"][0]
    assert set(errors["waves"]) == {"1", "2"}
    assert "unique" in errors["waves"]["1"]["name"][0]
    assert "in only one wave" in errors["waves"]["1"]["protection_groups"][0]
    assert errors["waves"]["2"] == {"depends_on": ["Wave 'Web' depends on wave 7, which is not in this plan."]}


def test_a_cycle_beside_an_error_of_one_wave_reports_both_under_waves(api, groups):
    db, app, web = groups
    body = {"name": "Both", "waves": [wave("A", db, depends_on=[1]), wave("B", app, depends_on=[0]), wave("C")]}
    errors = api("Planner").post("/api/v1/plans/", body, format="json").json()

    assert set(errors) == {"waves"}
    assert "cycle" in errors["waves"]["non_field_errors"][0]
    assert "empty" in errors["waves"]["2"]["protection_groups"][0]


def test_unknown_protection_group_in_a_wave_is_400(api):
    body = {"name": "X", "waves": [{"name": "A", "protection_groups": [999]}]}
    response = api("Planner").post("/api/v1/plans/", body, format="json")
    assert response.status_code == 400
    assert response.json() == {"waves": {"0": {"protection_groups": ['Invalid pk "999" - object does not exist.']}}}


@pytest.mark.parametrize("group_id", [1.5, "\uff11", 2**64, "1e3"])
def test_a_protection_group_id_that_is_not_a_whole_number_is_400(api, group_id):
    body = {"name": "X", "waves": [{"name": "A", "protection_groups": [group_id]}]}
    response = api("Planner").post("/api/v1/plans/", body, format="json")
    assert response.status_code == 400
    assert response.json()["waves"]["0"]["protection_groups"][0].startswith("Expected the id of an object")


def test_readiness(api, plan, sandbox_servers):
    response = api("Viewer").get(f"/api/v1/plans/{plan.pk}/readiness/")

    assert response.status_code == 200
    body = response.json()
    assert body["plan"] == {"id": plan.pk, "name": plan.name}
    assert body["ready"] is True and body["server_count"] == 3
    assert set(body) == {"plan", "ready", "checked_at", "server_count", "checks"}
    stored = api("Viewer").get(f"/api/v1/plans/{plan.pk}/readiness/?live=false")
    assert stored.status_code == 200 and stored.json()["ready"] is True
    assert api("Viewer").get(f"/api/v1/plans/{plan.pk}/readiness/?live=maybe").status_code == 400


def test_readiness_reports_a_running_plan(api, plan, execution):
    body = api("Viewer").get(f"/api/v1/plans/{plan.pk}/readiness/?live=false").json()
    assert body["ready"] is False
    assert [c["code"] for c in body["checks"] if c["severity"] == "error"] == ["plan_running"]
    running = next(c for c in body["checks"] if c["code"] == "plan_running")
    assert running["execution"] == str(execution.pk)


def test_readiness_names_the_execution_holding_a_server(api, groups, plan, execution):
    other = plan_save(name="Database only", waves=[WaveSpec(name="Database", protection_groups=[groups[0]])])
    body = api("Viewer").get(f"/api/v1/plans/{other.pk}/readiness/?live=false").json()
    [busy] = [c for c in body["checks"] if c["code"] == "server_in_other_execution"]
    assert busy["execution"] == str(execution.pk) and str(execution.pk) in busy["message"]
    assert all(c["execution"] is None for c in body["checks"] if c is not busy)


# --- protection groups --------------------------------------------------------------------------


def test_protection_group_lists_the_servers_it_resolves_to(api, sandbox_target, sandbox_servers):
    db, app, web = sandbox_servers
    response = api("Planner").post(
        "/api/v1/protection-groups/",
        {
            "name": "Demo",
            "target": sandbox_target.pk,
            "servers": [db.pk],
            "tag_selector": {"Application": "demo"},
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["servers"] == [db.pk] and body["tag_selector"] == {"Application": "demo"}
    assert [s["hostname"] for s in body["resolved_servers"]] == ["app-01", "db-01", "web-01"]
    assert set(body["resolved_servers"][0]) == {"id", "drs_id", "hostname", "replication_state", "in_drs"}

    patched = api("Planner").patch(f"/api/v1/protection-groups/{body['id']}/", {"tag_selector": {}}, format="json")
    assert patched.status_code == 200, patched.json()
    assert [s["hostname"] for s in patched.json()["resolved_servers"]] == ["db-01"]
    assert patched.json()["name"] == "Demo"


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"name": "Nothing"}, "non_field_errors", "Choose at least one server or give a tag selector."),
        ({"name": "Tags", "tag_selector": ["Tier"]}, "tag_selector", "object of tag key to value"),
        ({"name": "Tags", "tag_selector": {"Tier": 1}}, "tag_selector", "must be a string"),
        ({"name": "db-01 group", "tag_selector": {"Tier": "db"}}, "name", "already exists"),
    ],
)
def test_protection_group_errors(api, sandbox_target, groups, body, field, message):
    response = api("Planner").post("/api/v1/protection-groups/", {"target": sandbox_target.pk, **body}, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])


def test_a_server_of_another_target_or_group_is_refused(api, sandbox_target, groups):
    elsewhere = SourceServerFactory(hostname="far-01")
    taken = groups[0].servers.get()
    response = api("Planner").post(
        "/api/v1/protection-groups/",
        {"name": "Mixed", "target": sandbox_target.pk, "servers": [elsewhere.pk, taken.pk]},
        format="json",
    )

    assert response.status_code == 400
    messages = " ".join(response.json()["servers"])
    assert "far-01" in messages and "already in protection group 'db-01 group'" in messages


def test_a_group_used_by_a_plan_cannot_be_deleted(api, plan, groups):
    response = api("Planner").delete(f"/api/v1/protection-groups/{groups[0].pk}/")
    assert response.status_code == 409
    assert response.json()["code"] == "protected" and "Three tiers" in response.json()["detail"]

    unused = ProtectionGroup.objects.create(name="Unused", target=groups[0].target, tag_selector={"A": "b"})
    assert api("Planner").delete(f"/api/v1/protection-groups/{unused.pk}/").status_code == 204


# --- targets and source servers -----------------------------------------------------------------


def test_target_crud_with_model_validation(api):
    client = api("Planner")
    created = client.post(
        "/api/v1/targets/",
        {"name": "prod", "kind": "aws", "account_id": "123456789012", "region": "eu-west-1"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    url = f"/api/v1/targets/{created.json()['id']}/"

    bad = client.patch(url, {"external_id": "ext-1"}, format="json")
    assert bad.status_code == 400 and "only used with a role ARN" in bad.json()["external_id"][0]
    bad = client.patch(url, {"role_arn": "arn:aws:iam::123456789012:role/drsorch", "external_id": "x"}, format="json")
    assert bad.status_code == 400 and bad.json()["external_id"][0].startswith("An external ID is 2 to 1224 characters")
    bad = client.post(
        "/api/v1/targets/",
        {"name": "again", "kind": "aws", "account_id": "123456789012", "region": "eu-west-1"},
        format="json",
    )
    assert bad.status_code == 400
    assert "A target for this account and region already exists." in bad.json()["non_field_errors"]
    bad = client.post("/api/v1/targets/", {"name": "x", "account_id": "123", "region": "Virginia"}, format="json")
    assert set(bad.json()) == {"account_id", "region"}

    assert client.patch(url, {"region": "eu-west-2"}, format="json").json()["region"] == "eu-west-2"
    assert client.get("/api/v1/targets/?region=eu-west-2").json()["count"] == 1
    assert client.delete(url).status_code == 204


def test_a_target_in_use_cannot_be_deleted(api, groups, sandbox_target):
    response = api("Planner").delete(f"/api/v1/targets/{sandbox_target.pk}/")
    assert response.status_code == 409
    assert response.json()["code"] == "protected" and "db-01 group" in response.json()["detail"]


def test_source_servers_filtered_by_target_state_and_tag(api, sandbox_servers, groups):
    other = SourceServerFactory(hostname="other-01", replication_state="STALLED", tags={"Tier": "db"})
    client = api("Viewer")

    def hostnames(query):
        response = client.get(f"/api/v1/source-servers/?{query}")
        assert response.status_code == 200, response.json()
        return [s["hostname"] for s in response.json()["results"]]

    assert hostnames(f"target={other.target_id}") == ["other-01"]
    assert hostnames("replication_state=STALLED") == ["other-01"]
    assert hostnames("tag=Tier=db") == ["other-01"]
    assert hostnames("tag=Application") == ["app-01", "db-01", "web-01"]
    first = client.get("/api/v1/source-servers/").json()["results"][0]
    assert first["protection_group"] == groups[1].pk and first["tags"] == {"Application": "demo"}


def test_source_server_crud(api, sandbox_target):
    client = api("Planner")
    created = client.post(
        "/api/v1/source-servers/",
        {
            "target": sandbox_target.pk,
            "drs_id": "s-0123456789abcdef0",
            "hostname": "manual-01",
            "tags": {"A": "b"},
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    again = client.post(
        "/api/v1/source-servers/", {"target": sandbox_target.pk, "drs_id": "s-0123456789abcdef0"}, format="json"
    )
    assert again.status_code == 400 and "already in the inventory" in again.json()["non_field_errors"][0]
    bad = client.post(
        "/api/v1/source-servers/", {"target": sandbox_target.pk, "drs_id": "s-1", "tags": "x"}, format="json"
    )
    assert set(bad.json()) == {"drs_id", "tags"}
    url = f"/api/v1/source-servers/{created.json()['id']}/"
    assert client.patch(url, {"lag_seconds": 30}, format="json").json()["lag_seconds"] == 30
    assert client.delete(url).status_code == 204


def test_sync_refreshes_the_inventory(api, sandbox_target, sandbox_servers):
    SourceServer.objects.filter(hostname="db-01").delete()
    client = api("Planner")

    one = client.post("/api/v1/source-servers/sync/", {"target": sandbox_target.pk}, format="json")
    assert one.status_code == 200, one.json()
    assert one.json() == {
        "results": [
            {
                "target": {"id": sandbox_target.pk, "name": sandbox_target.name},
                "created": 1,
                "updated": 2,
                "missing": 0,
                "uninitialized": False,
                "error": None,
            }
        ]
    }
    every = client.post("/api/v1/source-servers/sync/", {}, format="json")
    assert every.status_code == 200 and len(every.json()["results"]) == Target.objects.count()
    assert client.post("/api/v1/source-servers/sync/", {"target": 999}, format="json").status_code == 400


def test_sync_reports_a_target_drs_cannot_be_reached_for(api, sandbox_target, sandbox_servers, monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    TargetFactory(name="unreachable", kind="aws")

    def sync(*, target):
        if target.name == "unreachable":
            raise EndpointConnectionError(endpoint_url="https://drs.us-east-1.amazonaws.com")
        return real_sync(target=target)

    from plans.api import views

    real_sync = views.source_servers_sync
    monkeypatch.setattr(views, "source_servers_sync", sync)
    results = api("Planner").post("/api/v1/source-servers/sync/", {}, format="json").json()["results"]
    assert {r["target"]["name"]: bool(r["error"]) for r in results} == {"Sandbox test": False, "unreachable": True}


def test_a_tag_selector_that_is_not_json_in_a_form_post_is_400(api, sandbox_target):
    """A multipart form sends the selector as text; text that is not JSON is a 400 naming the
    field (the error message's example braces once broke its formatting: a 500)."""
    response = api("Planner").post(
        "/api/v1/protection-groups/",
        {
            "name": "Broken selector",
            "target": sandbox_target.pk,
            "tag_selector": "not json {",
        },
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["tag_selector"] == ['Give an object of tag key to value, e.g. {"Tier": "db"}.']
