"""Every endpoint for every role: anonymous → 401, a role without the permission → 403.

A role with the permission may still be refused for other reasons (400 for the empty
bodies sent here, 404 once an earlier role deleted the object, 409 when the state does not
fit): DRF checks permissions before it reads the body or the object, so any of these
answers proves the role got through.
"""

import re

import pytest

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

EVERYONE = {"Viewer", "Operator", "Commander", "Planner"}
PLANNER = {"Planner"}
OPERATORS = {"Operator", "Commander"}
COMMANDER = {"Commander"}

ENDPOINTS = [
    ("GET", "/api/v1/targets/", None, EVERYONE),
    ("GET", "/api/v1/targets/{target}/", None, EVERYONE),
    ("POST", "/api/v1/targets/", {}, PLANNER),
    ("PUT", "/api/v1/targets/{target}/", {}, PLANNER),
    ("PATCH", "/api/v1/targets/{target}/", {}, PLANNER),
    ("DELETE", "/api/v1/targets/{target}/", None, PLANNER),
    ("GET", "/api/v1/source-servers/", None, EVERYONE),
    ("GET", "/api/v1/source-servers/{server}/", None, EVERYONE),
    ("POST", "/api/v1/source-servers/", {}, PLANNER),
    ("PUT", "/api/v1/source-servers/{server}/", {}, PLANNER),
    ("PATCH", "/api/v1/source-servers/{server}/", {}, PLANNER),
    ("DELETE", "/api/v1/source-servers/{server}/", None, PLANNER),
    ("POST", "/api/v1/source-servers/sync/", {"target": "{target}"}, PLANNER),
    ("GET", "/api/v1/protection-groups/", None, EVERYONE),
    ("GET", "/api/v1/protection-groups/{group}/", None, EVERYONE),
    ("POST", "/api/v1/protection-groups/", {}, PLANNER),
    ("PUT", "/api/v1/protection-groups/{group}/", {}, PLANNER),
    ("PATCH", "/api/v1/protection-groups/{group}/", {}, PLANNER),
    ("DELETE", "/api/v1/protection-groups/{group}/", None, PLANNER),
    ("GET", "/api/v1/plans/", None, EVERYONE),
    ("GET", "/api/v1/plans/{plan}/", None, EVERYONE),
    ("POST", "/api/v1/plans/", {}, PLANNER),
    ("PUT", "/api/v1/plans/{plan}/", {}, PLANNER),
    ("PATCH", "/api/v1/plans/{plan}/", {}, PLANNER),
    ("DELETE", "/api/v1/plans/{plan}/", None, PLANNER),
    ("GET", "/api/v1/plans/{plan}/readiness/?live=false", None, EVERYONE),
    ("GET", "/api/v1/plans/{plan}/history/", None, EVERYONE),
    ("POST", "/api/v1/plans/{plan}/execute/", {"mode": "DRILL"}, OPERATORS),
    ("POST", "/api/v1/plans/{plan}/execute/", {"mode": "RECOVERY"}, COMMANDER),
    ("POST", "/api/v1/executions/", {"plan": "{plan}", "mode": "DRILL"}, OPERATORS),
    ("POST", "/api/v1/executions/", {"plan": "{plan}", "mode": "RECOVERY"}, COMMANDER),
    ("GET", "/api/v1/executions/", None, EVERYONE),
    ("GET", "/api/v1/executions/{execution}/", None, EVERYONE),
    ("GET", "/api/v1/executions/{execution}/events/", None, EVERYONE),
    ("POST", "/api/v1/executions/{execution}/approve/", {}, OPERATORS),
    ("POST", "/api/v1/executions/{execution}/cancel/", {}, OPERATORS),
    ("POST", "/api/v1/executions/{execution}/retry/", {}, OPERATORS),
    ("POST", "/api/v1/executions/{execution}/cleanup/", {}, OPERATORS),
]


def objects_named_in(text, request):
    """Only the fixtures the endpoint needs: an execution makes its plan run."""
    values = {}
    for name in set(re.findall(r"\{(\w+)\}", text)):
        if name == "target":
            values[name] = request.getfixturevalue("sandbox_target").pk
        elif name == "server":
            values[name] = request.getfixturevalue("sandbox_servers")[0].pk
        elif name == "group":
            values[name] = request.getfixturevalue("groups")[0].pk
        else:
            values[name] = request.getfixturevalue(name).pk
    return values


def call(client, method, path, body):
    return (
        getattr(client, method.lower())(path, body, format="json")
        if body is not None
        else getattr(client, method.lower())(path)
    )


@pytest.mark.parametrize(
    "method, path, body, allowed", ENDPOINTS, ids=[f"{m} {p} {b or ''}" for m, p, b, _ in ENDPOINTS]
)
def test_roles(api, request, method, path, body, allowed):
    values = objects_named_in(f"{path} {body}", request)
    path = path.format(**values)
    if body:
        body = {key: int(value.format(**values)) if "{" in str(value) else value for key, value in body.items()}

    anonymous = call(api(None), method, path, body)
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == "Token"
    assert anonymous.json() == {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"}

    for role in sorted(EVERYONE - allowed):
        response = call(api(role), method, path, body)
        assert response.status_code == 403, (role, response.status_code, response.content)
        assert response.json()["code"] == "permission_denied"
    for role in [*sorted(allowed), "superuser"]:
        response = call(api(role), method, path, body)
        assert response.status_code not in (401, 403), (role, response.status_code, response.content)
        assert response.status_code < 500


def test_a_bad_token_is_401(api):
    client = api(None)
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/v1/plans/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token.", "code": "authentication_failed"}


def test_a_session_works_too(make_user, client):
    make_user(username="viewer", role="Viewer")
    client.login(username="viewer", password="pw")
    assert client.get("/api/v1/plans/").status_code == 200
    # Writes with a session need the CSRF token, like any form of the site.
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.login(username="viewer", password="pw")
    assert strict.post("/api/v1/plans/", {}, content_type="application/json").status_code == 403


def test_an_operator_starting_a_recovery_is_told_which_permission_is_missing(api, plan):
    response = api("Operator").post("/api/v1/executions/", {"plan": plan.pk, "mode": "RECOVERY"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert "start_recovery" in response.json()["detail"]
