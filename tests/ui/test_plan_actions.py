"""The plan page's action editor: rows added, switched and removed through the htmx endpoint,
errors next to each action field and in the summary, the secret never shown, and the plan
page and its diagram listing each wave's actions."""

import pytest
from django.urls import reverse

from plans.actions import ActionSpec
from plans.models import WaveAction
from plans.services import plan_save, plan_wave_specs

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

HOOK = "https://93.184.215.14/hooks/dr"
ROW = reverse("plans:plan_wave_action")


def plan_data(waves, **plan):
    """The plan form's POST: `waves` are dicts of wave fields with an optional "actions" list of
    row dicts (field name to value)."""
    data = {
        "name": "New plan", "description": "", "rto_target_minutes": 45, "rpo_target_minutes": 15,
        "waves-TOTAL_FORMS": len(waves), "waves-INITIAL_FORMS": 0, "waves-MIN_NUM_FORMS": 1,
        "waves-MAX_NUM_FORMS": 1000, **plan,
    }
    for i, wave in enumerate(waves):
        wave = dict(wave)
        actions = wave.pop("actions", [])
        for key, value in {"name": f"W{i}", "wait_after_minutes": 0, "timeout_minutes": 120, **wave}.items():
            data[f"waves-{i}-{key}"] = value
        data[f"waves-{i}-actions-TOTAL_FORMS"] = len(actions)
        data[f"waves-{i}-actions-INITIAL_FORMS"] = 0
        for a, action in enumerate(actions):
            row = {"kind": "manual", "when": "after", "timeout_minutes": 30, "on_failure": "fail", **action}
            for key, value in row.items():
                data[f"waves-{i}-actions-{a}-{key}"] = value
    return data


@pytest.fixture
def with_actions(demo):
    """The demo plan with a webhook (and its secret) before the database wave and a health check
    and a manual step after the web wave."""
    plan = demo["plan"]
    specs = plan_wave_specs(plan=plan)
    specs[0].actions = [ActionSpec(name="Tell the board", kind="webhook", when="before",
                                   config={"url": HOOK, "secret": "hush-hush"})]
    specs[1].actions = [
        ActionSpec(name="Web healthy", kind="health_check", config={"ssm_ping": True}, timeout_minutes=10),
        ActionSpec(name="Confirm the app", kind="manual", config={"instructions": "Place a test order."},
                   on_failure="continue"),
    ]
    plan_save(plan=plan, name=plan.name, rto_target_minutes=plan.rto_target_minutes, waves=specs)
    return demo


def test_create_a_plan_with_actions_of_every_kind(login, demo):
    db_group, web_group = demo["groups"]
    data = plan_data([
        {"name": "Database", "protection_groups": [db_group.pk], "actions": [
            {"name": "Change board", "kind": "webhook", "when": "before", "url": HOOK, "secret": "k"},
            {"name": "DB healthy", "kind": "health_check", "ec2_status_checks": "on", "ssm_ping": "on"},
        ]},
        {"name": "Web", "protection_groups": [web_group.pk], "depends_on": [0], "actions": [
            {"name": "Restart", "kind": "ssm_command", "document": "AWS-RunShellScript",
             "parameters": "commands=systemctl restart app\ncommands=uptime", "on_failure": "continue"},
            {"name": "DNS", "kind": "ssm_automation", "document": "Corp-SwitchDns",
             "parameters": '{"Zone": "example.com"}'},
            {"name": "Confirm", "kind": "manual", "instructions": "Log in.", "timeout_minutes": 60},
        ]},
    ])
    response = login("Planner").post(reverse("plans:plan_create"), data)

    assert response.status_code == 302, response.context and response.context["formset"].error_summary()
    actions = {a.name: a for a in WaveAction.objects.filter(plan__name="New plan")}
    assert actions["Change board"].config == {"url": HOOK, "secret": "k"} and actions["Change board"].when == "before"
    assert actions["DB healthy"].config == {"ec2_status_checks": True, "ssm_ping": True}
    assert actions["Restart"].config["parameters"] == {"commands": ["systemctl restart app", "uptime"]}
    assert actions["Restart"].on_failure == "continue"
    assert actions["DNS"].config == {"document": "Corp-SwitchDns", "parameters": {"Zone": ["example.com"]}}
    assert actions["Confirm"].timeout_minutes == 60 and actions["Confirm"].wave.name == "Web"


def test_the_edit_page_shows_the_rows_without_the_secret_and_keeps_it(login, with_actions):
    plan = with_actions["plan"]
    client = login("Planner")
    response = client.get(reverse("plans:plan_edit", args=[plan.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="waves-0-actions-0-url"' in page and HOOK in page
    assert "hush-hush" not in page
    assert 'name="waves-1-actions-1-instructions"' in page and "Place a test order." in page
    assert 'id="id_waves-1-actions-TOTAL_FORMS"' in page

    db_group, web_group = with_actions["groups"]
    data = plan_data([
        {"name": "Database", "protection_groups": [db_group.pk], "actions": [
            {"name": "Tell the board", "kind": "webhook", "when": "before", "url": HOOK, "secret": ""}]},
        {"name": "Web", "protection_groups": [web_group.pk], "depends_on": [0], "actions": [
            {"name": "Web healthy", "kind": "health_check", "ssm_ping": "on", "timeout_minutes": 10},
            {"DELETE": "on"}]},
    ], name=plan.name, rto_target_minutes=30)
    response = client.post(reverse("plans:plan_edit", args=[plan.pk]), data)
    assert response.status_code == 302
    assert WaveAction.objects.get(name="Tell the board").config["secret"] == "hush-hush"
    assert sorted(WaveAction.objects.values_list("name", flat=True)) == ["Tell the board", "Web healthy"]
    assert WaveAction.objects.get(name="Web healthy").config == {"ec2_status_checks": False, "ssm_ping": True}


def test_add_an_action_row_through_htmx(login, demo):
    response = login("Planner").get(ROW, {"add_action": "waves-1", "waves-1-actions-TOTAL_FORMS": "2"})
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="waves-1-actions-2"' in page and 'name="waves-1-actions-2-name"' in page
    assert 'name="waves-1-actions-2-instructions"' in page  # the default kind, manual
    assert 'id="id_waves-1-actions-TOTAL_FORMS" value="3" hx-swap-oob="true"' in page


def test_changing_the_kind_shows_its_fields_and_keeps_the_rest(login, demo):
    client = login("Planner")
    response = client.get(ROW, {
        "row": "waves-0-actions-0", "waves-0-actions-0-shown": "manual", "waves-0-actions-0-kind": "health_check",
        "waves-0-actions-0-name": "Check it", "waves-0-actions-0-timeout_minutes": "12",
        "waves-0-actions-0-instructions": "old",
    })
    page = response.content.decode()
    assert response.status_code == 200
    assert 'value="Check it"' in page and 'value="12"' in page
    assert 'name="waves-0-actions-0-instructions"' not in page
    assert 'name="waves-0-actions-0-ec2_status_checks" id="id_waves-0-actions-0-ec2_status_checks" checked' in page
    assert 'name="waves-0-actions-0-shown" value="health_check"' in page

    response = client.get(ROW, {"row": "waves-0-actions-0", "waves-0-actions-0-kind": "webhook"})
    page = response.content.decode()
    assert 'name="waves-0-actions-0-url"' in page and 'type="password"' in page


def test_removing_a_row_leaves_a_hidden_delete(login, demo):
    response = login("Planner").get(ROW, {"row": "waves-0-actions-3", "remove": "1"})
    assert 'id="waves-0-actions-3"' in response.content.decode()
    assert '<input type="hidden" name="waves-0-actions-3-DELETE" value="on">' in response.content.decode()


def test_the_row_endpoint_refuses_bad_prefixes_and_non_editors(login, demo):
    client = login("Planner")
    assert client.get(ROW, {"row": "waves-0-actions-x"}).status_code == 400
    assert client.get(ROW, {"row": "<script>"}).status_code == 400
    assert client.get(ROW, {"add_action": "waves-0", "waves-0-actions-TOTAL_FORMS": "abc"}).status_code == 400
    assert client.get(ROW, {"add_action": "nope", "nope-actions-TOTAL_FORMS": "0"}).status_code == 400
    assert client.get(ROW, {"add_action": "waves-0", "waves-0-actions-TOTAL_FORMS": "100"}).status_code == 400
    assert login("Viewer").get(ROW, {"row": "waves-0-actions-0"}).status_code == 403


def test_add_action_without_javascript_keeps_what_was_typed(login, demo):
    db_group, _ = demo["groups"]
    data = plan_data([{"name": "Database", "protection_groups": [db_group.pk], "actions": [
        {"name": "First", "instructions": "Do it."}, {"DELETE": "on"}]}], name="Typed")
    response = login("Planner").post(reverse("plans:plan_create"), {**data, "add_action": "waves-0"})
    assert response.status_code == 200
    rows = response.context["formset"].forms[0].actions.forms
    assert len(rows) == 2 and rows[0].initial["name"] == "First" and rows[1].initial == {}


def test_errors_are_shown_next_to_each_action_field_and_in_the_summary(login, demo):
    db_group, web_group = demo["groups"]
    data = plan_data([
        {"name": "Database", "protection_groups": [db_group.pk]},
        {"name": "Web", "protection_groups": [web_group.pk], "depends_on": [0], "actions": [
            {"name": "Fine", "instructions": "Look."},
            {"name": "No document", "kind": "ssm_command", "document": "", "parameters": "InstanceId=i-1"},
            {"name": "Too early", "kind": "health_check", "when": "before", "ec2_status_checks": "on",
             "timeout_minutes": 5000},
            {"name": "Fine", "kind": "webhook", "url": "https://127.0.0.1/x"},
            {"name": "Bad JSON", "kind": "ssm_command", "document": "AWS-X", "parameters": "{nope"},
        ]},
    ])
    client = login("Planner")
    response = client.post(reverse("plans:plan_create"), data)
    assert response.status_code == 400
    rows = response.context["formset"].forms[1].actions.forms
    assert "Bad JSON" in rows[4]["name"].value() and "not valid JSON" in rows[4].errors["parameters"][0]

    # The form's own parsing passes once the JSON is fixed; then the service names each field.
    data["waves-1-actions-4-parameters"] = '{"commands": "uptime"}'
    response = client.post(reverse("plans:plan_create"), data)
    assert response.status_code == 400
    rows = response.context["formset"].forms[1].actions.forms
    assert not rows[0].errors
    assert "SSM document" in rows[1].errors["document"][0] and "InstanceId" in rows[1].errors["parameters"][0]
    assert "after launch" in rows[2].errors["when"][0] and "1440" in rows[2].errors["timeout_minutes"][0]
    assert "unique" in rows[3].errors["name"][0] and rows[3].errors["url"]
    page = response.content.decode()
    assert 'href="#waves-1-actions-1">Action 2 “No document”</a>: SSM document: Name the SSM document' in page
    assert 'href="#waves-1-actions-2">Action 3 “Too early”</a>' in page
    assert 'id="waves-1-actions-1"' in page and "has-error" in page
    assert not WaveAction.objects.exists()


def test_the_plan_page_and_diagram_show_each_waves_actions(login, with_actions):
    response = login("Viewer").get(with_actions["plan"].get_absolute_url())
    page = response.content.decode()
    assert response.status_code == 200
    assert "<strong>Tell the board</strong>" in page and "Webhook" in page
    assert "<strong>Web healthy</strong>" in page and "10 min" in page and "continues" in page
    assert "hush-hush" not in page
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert "✎ after: Confirm the app" in svg and "↗ before: Tell the board" in svg
    diagram = response.context["diagram"]
    assert [a["name"] for a in diagram[1]["actions"]] == ["Web healthy", "Confirm the app"]


def test_posting_without_the_actions_management_form_means_no_actions(login, with_actions):
    plan = with_actions["plan"]
    db_group, web_group = with_actions["groups"]
    data = plan_data([{"name": "Database", "protection_groups": [db_group.pk]},
                      {"name": "Web", "protection_groups": [web_group.pk], "depends_on": [0]}],
                     name=plan.name, rto_target_minutes=30)
    data = {k: v for k, v in data.items() if "-actions-" not in k}
    response = login("Planner").post(reverse("plans:plan_edit", args=[plan.pk]), data)
    assert response.status_code == 302
    assert not WaveAction.objects.exists()
