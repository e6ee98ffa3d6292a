"""Wave actions through the API: nested in waves, read and written with the plan's rules, each
error a 400 naming its path, a webhook's secret write-only, Planners write and Viewers read."""

import pytest

from plans.models import WaveAction

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

HOOK = "https://93.184.215.14/hooks/dr"  # a public address: no DNS, not private


def wave(name, group, actions=None, **fields):
    body = {"name": name, "protection_groups": [group.pk], **fields}
    if actions is not None:
        body["actions"] = actions
    return body


def body_with(groups, db_actions=None, web_actions=None, **plan):
    db, app, web = groups
    return {
        "name": plan.pop("name", "Runbook"),
        "waves": [wave("Database", db, db_actions), wave("Application", app), wave("Web", web, web_actions)],
        **plan,
    }


EVERY_KIND = [
    {"name": "Notify the change board", "kind": "webhook", "when": "before",
     "config": {"url": HOOK, "secret": "s3cret"}},
    {"name": "Databases healthy", "kind": "health_check", "config": {"ec2_status_checks": True, "ssm_ping": True},
     "timeout_minutes": 15},
    {"name": "Point DNS", "kind": "ssm_automation", "config": {"document": "Corp-SwitchDns"}, "on_failure": "continue"},
]
WEB_ACTIONS = [
    {"name": "Restart app", "kind": "ssm_command",
     "config": {"document": "AWS-RunShellScript", "parameters": {"commands": "systemctl restart app"}}},
    {"name": "Confirm the app", "kind": "manual", "config": {"instructions": "Place a test order."}},
]


def test_actions_round_trip_nested_in_waves(api, groups):
    client = api("Planner")
    response = client.post("/api/v1/plans/", body_with(groups, EVERY_KIND, WEB_ACTIONS), format="json")

    assert response.status_code == 201, response.json()
    waves = response.json()["waves"]
    assert [a["name"] for a in waves[0]["actions"]] == ["Notify the change board", "Databases healthy", "Point DNS"]
    assert waves[1]["actions"] == []
    hook, health, dns = waves[0]["actions"]
    assert set(hook) == {"name", "kind", "when", "config", "timeout_minutes", "on_failure", "has_secret"}
    assert hook == {"name": "Notify the change board", "kind": "webhook", "when": "before", "config": {"url": HOOK},
                    "timeout_minutes": 30, "on_failure": "fail", "has_secret": True}
    assert health["config"] == {"ec2_status_checks": True, "ssm_ping": True} and health["timeout_minutes"] == 15
    assert dns["when"] == "after" and dns["on_failure"] == "continue"
    assert dns["config"] == {"document": "Corp-SwitchDns", "parameters": {}}
    command = waves[2]["actions"][0]
    assert command["config"]["parameters"] == {"commands": ["systemctl restart app"]}

    url = f"/api/v1/plans/{response.json()['id']}/"
    read = api("Viewer").get(url)
    assert read.status_code == 200 and read.json()["waves"] == waves
    round_trip = client.put(url, read.json(), format="json")
    assert round_trip.status_code == 200, round_trip.json()
    assert round_trip.json()["waves"] == waves


def test_put_replaces_the_actions_and_patch_without_waves_keeps_them(api, groups):
    client = api("Planner")
    created = client.post("/api/v1/plans/", body_with(groups, EVERY_KIND, WEB_ACTIONS), format="json").json()
    url = f"/api/v1/plans/{created['id']}/"

    patched = client.patch(url, {"description": "Kept"}, format="json")
    assert patched.status_code == 200
    assert [len(w["actions"]) for w in patched.json()["waves"]] == [3, 0, 2]

    # A wave written without "actions" has none.
    replaced = client.put(url, body_with(groups, web_actions=WEB_ACTIONS[1:]), format="json")
    assert replaced.status_code == 200, replaced.json()
    assert [[a["name"] for a in w["actions"]] for w in replaced.json()["waves"]] == [[], [], ["Confirm the app"]]
    assert WaveAction.objects.filter(plan_id=created["id"]).count() == 1


def test_a_webhook_secret_is_write_only_and_kept_when_left_out(api, groups):
    client = api("Planner")
    created = client.post("/api/v1/plans/", body_with(groups, EVERY_KIND[:1]), format="json").json()
    url = f"/api/v1/plans/{created['id']}/"
    assert "s3cret" not in client.get(url).content.decode()

    # Left out for the same action name: kept.
    client.put(url, client.get(url).json(), format="json")
    assert WaveAction.objects.get(name="Notify the change board").config["secret"] == "s3cret"
    # A new value replaces it; "" removes it.
    hook = {**EVERY_KIND[0], "config": {"url": HOOK, "secret": "other"}}
    client.put(url, body_with(groups, [hook]), format="json")
    assert WaveAction.objects.get(name="Notify the change board").config["secret"] == "other"
    hook = {**EVERY_KIND[0], "config": {"url": HOOK, "secret": ""}}
    response = client.put(url, body_with(groups, [hook]), format="json")
    assert response.json()["waves"][0]["actions"][0]["has_secret"] is False
    assert "secret" not in WaveAction.objects.get(name="Notify the change board").config
    # A renamed action is another action: it does not inherit a secret.
    client.put(url, body_with(groups, EVERY_KIND[:1]), format="json")
    renamed = {**EVERY_KIND[0], "name": "Renamed hook", "config": {"url": HOOK}}
    client.put(url, body_with(groups, [renamed]), format="json")
    assert "secret" not in WaveAction.objects.get(name="Renamed hook").config


@pytest.mark.parametrize(
    ("action", "path", "words"),
    [
        ({"name": "X", "kind": "reboot"}, ("kind",), "valid choice"),
        ({"name": "X", "kind": "ssm_command", "config": {}}, ("config", "document"), "SSM document"),
        ({"name": "X", "kind": "ssm_automation", "config": {"document": "A-B", "parameters": {"InstanceId": "i-1"}}},
         ("config", "parameters"), "InstanceId"),
        ({"name": "X", "kind": "webhook", "config": {}}, ("config", "url"), "URL"),
        ({"name": "X", "kind": "webhook", "config": {"url": "https://127.0.0.1/x"}}, ("config", "url"), ""),
        ({"name": "X", "kind": "manual", "config": {"instructions": " "}}, ("config", "instructions"), "Operator"),
        ({"name": "X", "kind": "health_check", "config": {"ec2_status_checks": False}}, ("config",),
         "ssm_ping"),
        ({"name": "X", "kind": "health_check", "config": {"ssm_ping": "yes"}}, ("config", "ssm_ping"), "true or false"),
        ({"name": "X", "kind": "manual", "config": {"instructions": "x", "colour": "red"}}, ("config",), "colour"),
        ({"name": "X", "kind": "manual", "config": ["instructions"]}, ("config",), "object"),
        ({"name": "X", "kind": "manual", "config": {"instructions": "x"}, "timeout_minutes": 0}, ("timeout_minutes",),
         "greater than or equal to 1"),
        ({"name": "X", "kind": "manual", "config": {"instructions": "x"}, "timeout_minutes": "soon"},
         ("timeout_minutes",), "valid integer"),
        ({"name": "X", "kind": "health_check", "when": "before"}, ("when",), "after launch"),
        ({"name": "X", "kind": "manual", "config": {"instructions": "x"}, "on_failure": "ignore"}, ("on_failure",),
         "valid choice"),
        ({"name": "a/b", "kind": "manual", "config": {"instructions": "x"}}, ("name",), "slash"),
        ({"name": "", "kind": "manual", "config": {"instructions": "x"}}, ("name",), "needs a name"),
    ],
)
def test_each_validation_error_is_a_400_naming_its_path(api, groups, action, path, words):
    ok = {"name": "Fine", "kind": "manual", "config": {"instructions": "Look."}}
    response = api("Planner").post("/api/v1/plans/", body_with(groups, web_actions=[ok, action]), format="json")

    assert response.status_code == 400, response.json()
    errors = response.json()
    assert list(errors) == ["waves"] and list(errors["waves"]) == ["2"]
    node = errors["waves"]["2"]["actions"]
    assert list(node) == ["1"]
    node = node["1"]
    for part in path:
        node = node[part]
    if isinstance(node, dict):
        node = node["non_field_errors"]
    assert words in " ".join(node)


def test_duplicate_action_names_and_actions_that_are_not_a_list(api, groups):
    client = api("Planner")
    twice = {"name": "Same", "kind": "manual", "config": {"instructions": "x"}}
    response = client.post("/api/v1/plans/", body_with(groups, [twice], [twice]), format="json")
    assert response.status_code == 400
    assert "unique" in response.json()["waves"]["2"]["actions"]["0"]["name"][0]

    for bad in ["nope", {"name": "x"}, [1], [None]]:
        response = client.post("/api/v1/plans/", body_with(groups, web_actions=bad), format="json")
        assert response.status_code == 400, (bad, response.content)
        assert "actions" in response.json()["waves"]["2"]


def test_viewers_read_actions_and_only_planners_write_them(api, groups):
    created = api("Planner").post("/api/v1/plans/", body_with(groups, web_actions=WEB_ACTIONS), format="json").json()
    url = f"/api/v1/plans/{created['id']}/"
    assert api("Viewer").get(url).json()["waves"][2]["actions"][1]["name"] == "Confirm the app"
    for role in ["Viewer", "Operator", "Commander"]:
        response = api(role).put(url, body_with(groups), format="json")
        assert response.status_code == 403, role
    assert WaveAction.objects.filter(plan_id=created["id"]).count() == 2


def test_patch_with_waves_replaces_the_actions_and_still_requires_a_kind(api, groups):
    client = api("Planner")
    created = client.post("/api/v1/plans/", body_with(groups, EVERY_KIND), format="json").json()
    url = f"/api/v1/plans/{created['id']}/"

    response = client.patch(url, {"waves": body_with(groups, web_actions=[{"name": "No kind"}])["waves"]},
                            format="json")
    assert response.status_code == 400
    assert "kind" in response.json()["waves"]["2"]["actions"]["0"]

    response = client.patch(url, {"waves": body_with(groups, web_actions=WEB_ACTIONS[1:])["waves"]}, format="json")
    assert response.status_code == 200
    assert [[a["name"] for a in w["actions"]] for w in response.json()["waves"]] == [[], [], ["Confirm the app"]]
    assert response.json()["waves"][2]["actions"][0]["when"] == "after"
