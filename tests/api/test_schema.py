"""The OpenAPI schema validates without warnings, describes every endpoint, and the Swagger
UI is served from this app alone."""

import re

import pytest
import yaml
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_spectacular_validates_without_warnings(tmp_path):
    schema_file = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(schema_file))
    schema = yaml.safe_load(schema_file.read_text())

    operations = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
    for resource in ["targets", "source-servers", "protection-groups", "plans"]:
        for method, path in [
            ("GET", ""),
            ("POST", ""),
            ("GET", "{id}/"),
            ("PUT", "{id}/"),
            ("PATCH", "{id}/"),
            ("DELETE", "{id}/"),
        ]:
            assert (method, f"/api/v1/{resource}/{path}") in operations
    assert {
        ("POST", "/api/v1/source-servers/sync/"),
        ("GET", "/api/v1/plans/{id}/readiness/"),
        ("POST", "/api/v1/plans/{id}/readiness/"),
        ("GET", "/api/v1/plans/{id}/history/"),
        ("POST", "/api/v1/plans/{id}/execute/"),
        ("GET", "/api/v1/executions/"),
        ("POST", "/api/v1/executions/"),
        ("GET", "/api/v1/executions/{id}/"),
        ("GET", "/api/v1/executions/{id}/events/"),
    } <= operations
    for verb in ["approve", "cancel", "retry", "cleanup"]:
        assert ("POST", f"/api/v1/executions/{{id}}/{verb}/") in operations


def test_the_schema_describes_the_execution_json_and_the_idempotency_key(client):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    components = schema["components"]["schemas"]

    assert set(components["Execution"]["properties"]) == {
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
    assert set(components["Execution"]["required"]) == set(components["Execution"]["properties"])
    assert set(components["ServerLaunch"]["properties"]) == {
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
    start = schema["paths"]["/api/v1/executions/"]["post"]
    assert {"in": "header", "name": "Idempotency-Key"}.items() <= start["parameters"][0].items()
    assert start["responses"]["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Execution"
    }
    assert set(start["responses"]) == {"202", "400", "401", "403", "409"}


@pytest.mark.django_db(databases=["default", "sandbox"])
def test_the_schema_and_docs_are_public_and_every_operation_they_describe_is_not(client, execution):
    """The policy (docs/api.md, Authentication): the description is public, the data is not."""
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200
    for path in ["/api/v1/plans/", "/api/v1/executions/", "/api/v1/targets/", f"/api/v1/executions/{execution.pk}/"]:
        assert client.get(path).status_code == 401


def test_swagger_ui_is_served_without_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui-bundle.js" in src for src in sources)
    assert all(src.startswith("/static/") for src in sources), sources
    assert "cdn" not in html.lower() and "https://" not in html
    for src in sources:
        assert finders.find(src.removeprefix(settings.STATIC_URL)), src


@pytest.mark.django_db(databases=["default", "sandbox"])
def test_options_on_every_path_answers_without_a_server_error(api, execution, tmp_path):
    """OPTIONS (DRF's metadata) builds each view's serializer: a view without one answered 500."""
    schema_file = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(schema_file))
    paths = yaml.safe_load(schema_file.read_text())["paths"]
    ids = {"/executions/": str(execution.pk), "/plans/": str(execution.plan_id)}
    client = api("superuser")
    for path in paths:
        resource = next((prefix for prefix in ids if path.startswith(f"/api/v1{prefix}")), None)
        url = path.replace("{id}", ids[resource] if resource else "1")
        response = client.options(url)
        assert response.status_code < 500, (url, response.status_code)


def schema_walker(tmp_path):
    """walk(value, schema_name, path): asserts every null in `value` is nullable in the schema."""
    schema_file = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(schema_file))
    components = yaml.safe_load(schema_file.read_text())["components"]["schemas"]

    def resolve(schema):
        while "$ref" in schema or "allOf" in schema:
            schema = components[schema["$ref"].rsplit("/", 1)[-1]] if "$ref" in schema else schema["allOf"][0]
        return schema

    def walk(value, schema, path):
        schema = resolve(schema)
        if value is None:
            assert schema.get("nullable"), f"{path} is null but its schema does not allow null"
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, schema["properties"][key], f"{path}.{key}")
        elif isinstance(value, list) and "items" in schema:
            for position, item in enumerate(value):
                walk(item, schema["items"], f"{path}[{position}]")

    return lambda value, name, path: walk(value, {"$ref": f"#/components/schemas/{name}"}, path)


@pytest.mark.django_db(databases=["default", "sandbox"])
def test_every_null_in_a_running_executions_json_is_nullable_in_the_schema(api, execution, tmp_path):
    """A PENDING execution has the most nulls (times, verdicts, job ids): each must be allowed
    by the OpenAPI schema that automation validates against."""
    body = api("superuser").get(f"/api/v1/executions/{execution.pk}/").json()
    schema_walker(tmp_path)(body, "Execution", "execution")


@pytest.mark.django_db(databases=["default", "sandbox"])
def test_every_null_of_a_plans_history_is_nullable_in_the_schema(api, execution, tmp_path):
    """An execution cancelled before it started has no start, no measure and no verdict."""
    from executions import engine
    from executions.services import execution_cancel

    execution_cancel(execution=execution, user=api("superuser").user)
    engine.tick(execution_ids=[execution.pk])
    response = api("superuser").get(f"/api/v1/plans/{execution.plan_id}/history/")
    [item] = response.json()["results"]
    assert item["started_at"] is None and item["rto"]["achieved_seconds"] is None and item["point_in_time"] is None
    walk = schema_walker(tmp_path)
    walk(response.json(), "PaginatedExecutionHistoryList", "history")


def test_every_list_documents_its_filters_and_the_400_of_a_bad_value(tmp_path):
    schema_file = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(schema_file))
    paths = yaml.safe_load(schema_file.read_text())["paths"]

    for path in ["targets", "source-servers", "protection-groups", "plans", "executions", "executions/{id}/events"]:
        assert "400" in paths[f"/api/v1/{path}/"]["get"]["responses"], path
    events = {p["name"]: p for p in paths["/api/v1/executions/{id}/events/"]["get"]["parameters"]}
    assert events["people"]["schema"]["type"] == "boolean"
    servers = {p["name"]: p for p in paths["/api/v1/source-servers/"]["get"]["parameters"]}
    assert servers["in_drs"]["schema"]["type"] == "boolean"
    assert servers["replication_state"]["schema"]["type"] == "array"
    history = {p["name"]: p for p in paths["/api/v1/executions/"]["get"]["parameters"]}
    assert history["date_after"]["schema"] == {"type": "string", "format": "date"}
    assert history["date_before"]["schema"] == {"type": "string", "format": "date"}
