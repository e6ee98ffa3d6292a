"""Plan pages: the waves formset, errors next to the field at fault, the diagram, delete, start."""

import pytest
from django.urls import reverse

from executions.choices import ExecutionStatus
from executions.models import Execution
from plans.models import RecoveryPlan
from plans.services import source_servers_sync
from tests.factories import build_execution

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def plan_data(waves, **plan):
    data = {
        "name": "New plan",
        "description": "",
        "rto_target_minutes": 45,
        "rpo_target_minutes": 15,
        "waves-TOTAL_FORMS": len(waves),
        "waves-INITIAL_FORMS": 0,
        "waves-MIN_NUM_FORMS": 1,
        "waves-MAX_NUM_FORMS": 1000,
        **plan,
    }
    for i, wave in enumerate(waves):
        defaults = {"name": f"W{i}", "wait_after_minutes": 0, "timeout_minutes": 120}
        for key, value in {**defaults, **wave}.items():
            data[f"waves-{i}-{key}"] = value
    return data


def test_new_plan_form_starts_with_one_wave(login, demo):
    response = login("Planner").get(reverse("plans:plan_create"))
    assert response.status_code == 200
    assert len(response.context["formset"].forms) == 1


def test_planner_creates_a_two_wave_plan_with_a_gate(login, demo):
    db_group, web_group = demo["groups"]
    response = login("Planner").post(
        reverse("plans:plan_create"),
        plan_data(
            [
                {"name": "Database", "protection_groups": [db_group.pk]},
                {
                    "name": "Web",
                    "protection_groups": [web_group.pk],
                    "depends_on": [0],
                    "approval_required": "on",
                    "wait_after_minutes": 5,
                },
            ]
        ),
    )
    plan = RecoveryPlan.objects.get(name="New plan")
    assert response.status_code == 302 and response["Location"] == plan.get_absolute_url()
    waves = list(plan.waves.order_by("order"))
    assert [w.name for w in waves] == ["Database", "Web"]
    assert list(waves[1].depends_on.all()) == [waves[0]] and waves[1].approval_required
    assert plan.rto_target_minutes == 45


def test_errors_of_one_wave_appear_next_to_its_field(login, demo):
    db_group, _ = demo["groups"]
    response = login("Planner").post(
        reverse("plans:plan_create"),
        plan_data(
            [
                {"name": "Database", "protection_groups": [db_group.pk]},
                {"name": "Empty"},
            ]
        ),
    )
    assert response.status_code == 400
    formset = response.context["formset"]
    assert "Wave 'Empty' is empty" in formset.forms[1].errors["protection_groups"][0]
    assert not formset.forms[0].errors
    body = response.content.decode()
    start = body.index('id="wave-1"')
    assert body.index("Wave &#x27;Empty&#x27; is empty", start) > start


def test_duplicate_wave_names_and_bad_timeout_go_to_their_fields(login, demo):
    db_group, web_group = demo["groups"]
    response = login("Planner").post(
        reverse("plans:plan_create"),
        plan_data(
            [
                {"name": "Same", "protection_groups": [db_group.pk]},
                {"name": "Same", "protection_groups": [web_group.pk], "timeout_minutes": 5000},
            ]
        ),
    )
    forms = response.context["formset"].forms
    assert "wave names must be unique" in forms[1].errors["name"][0]
    assert "between 1 and 1440" in forms[1].errors["timeout_minutes"][0]


def test_a_dependency_cycle_is_a_formset_error(login, demo):
    db_group, web_group = demo["groups"]
    response = login("Planner").post(
        reverse("plans:plan_create"),
        plan_data(
            [
                {"name": "A", "protection_groups": [db_group.pk], "depends_on": [1]},
                {"name": "B", "protection_groups": [web_group.pk], "depends_on": [0]},
            ]
        ),
    )
    assert response.status_code == 400
    assert "in a cycle" in " ".join(response.context["formset"].non_form_errors())
    assert 'id="waves-errors"' in response.content.decode()


def test_plan_field_errors_stay_on_the_plan_form(login, demo):
    db_group, _ = demo["groups"]
    response = login("Planner").post(
        reverse("plans:plan_create"),
        plan_data([{"name": "A", "protection_groups": [db_group.pk]}], name="Demo plan", rto_target_minutes=0),
    )
    errors = response.context["plan_form"].errors
    assert "already exists" in errors["name"][0]
    assert "rto_target_minutes" in errors


def test_add_a_wave_keeps_what_was_typed_and_defaults_to_the_previous_wave(login, demo):
    db_group, _ = demo["groups"]
    data = plan_data([{"name": "Database", "protection_groups": [db_group.pk]}], name="Typed")
    response = login("Planner").post(reverse("plans:plan_create"), {**data, "add_wave": "1"})
    assert response.status_code == 200
    formset = response.context["formset"]
    assert len(formset.forms) == 2
    assert formset.forms[1].initial["depends_on"] == [0]
    assert response.context["plan_form"].initial["name"] == "Typed"
    assert not RecoveryPlan.objects.filter(name="Typed").exists()


def test_edit_a_plan_removing_a_wave(login, demo):
    plan = demo["plan"]
    client = login("Planner")
    response = client.get(reverse("plans:plan_edit", args=[plan.pk]))
    assert len(response.context["formset"].forms) == 2
    db_group, web_group = demo["groups"]
    data = plan_data(
        [
            {"name": "Database", "protection_groups": [db_group.pk]},
            {"name": "Web", "protection_groups": [web_group.pk], "depends_on": [0], "DELETE": "on"},
        ],
        name="Demo plan",
        rto_target_minutes=20,
    )
    response = client.post(reverse("plans:plan_edit", args=[plan.pk]), data)
    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.rto_target_minutes == 20 and list(plan.waves.values_list("name", flat=True)) == ["Database"]


def test_plan_detail_shows_diagram_targets_and_readiness(login, demo):
    body = login("Viewer").get(demo["plan"].get_absolute_url()).content.decode()
    assert '<svg class="diagram"' in body
    assert 'marker-end="url(#arrow)"' in body
    assert ">gate</text>" in body
    assert "Sandbox test" in body
    assert "Readiness" in body and "ready" in body
    assert "30 min" in body


def test_plan_detail_shows_readiness_errors(login, demo):
    server = demo["servers"][0]
    from drsorch.sandbox.services import sandbox_server_update

    sandbox_server_update(source_server_id=server.drs_id, replication_state="STALLED")
    source_servers_sync(target=demo["target"])  # the page shows the stored inventory
    body = login("Viewer").get(demo["plan"].get_absolute_url()).content.decode()
    assert "replication is STALLED, not CONTINUOUS; a recovery now starts from a snapshot about" in body
    assert "Refresh from DRS" not in body  # a Viewer may not refresh the inventory


def test_plan_detail_survives_drs_errors(login, demo, monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    real = __import__("executions.readiness", fromlist=["plan_readiness"]).plan_readiness

    def readiness(*, plan, live=True):
        if live:
            raise EndpointConnectionError(endpoint_url="https://drs")
        return real(plan=plan, live=False)

    monkeypatch.setattr("executions.views.plan_readiness", readiness)
    response = login("Viewer").get(demo["plan"].get_absolute_url())
    assert response.status_code == 200
    assert "DRS could not be asked" in response.content.decode()


def test_delete_refuses_a_plan_with_executions(login, demo):
    build_execution(servers=2, plan=demo["plan"], target=demo["target"], status=ExecutionStatus.SUCCEEDED)
    response = login("Planner").post(reverse("plans:plan_delete", args=[demo["plan"].pk]), follow=True)
    assert "they are evidence" in response.content.decode()
    assert RecoveryPlan.objects.filter(pk=demo["plan"].pk).exists()


def test_delete_a_plan_that_never_ran(login, demo):
    response = login("Planner").post(reverse("plans:plan_delete", args=[demo["plan"].pk]))
    assert response.status_code == 302 and not RecoveryPlan.objects.filter(pk=demo["plan"].pk).exists()


# --- Starting ---------------------------------------------------------------------------------


def start(client, plan, mode="DRILL", **extra):
    return client.post(reverse("plans:plan_start", args=[plan.pk]), {"mode": mode, **extra})


def test_operator_starts_a_drill_and_lands_on_the_execution(login, demo):
    response = start(login("Operator"), demo["plan"])
    execution = Execution.objects.get()
    assert response.status_code == 302 and response["Location"] == execution.get_absolute_url()
    assert execution.mode == "DRILL" and execution.requested_by_username == "operator"


@pytest.mark.parametrize("role", ["Viewer", "Planner"])
def test_viewers_and_planners_cannot_start(login, demo, role):
    client = login(role)
    assert start(client, demo["plan"]).status_code == 403
    assert start(client, demo["plan"], "RECOVERY", confirm_name="Demo plan").status_code == 403
    assert not Execution.objects.exists()


def test_operator_cannot_start_a_recovery(login, demo):
    assert start(login("Operator"), demo["plan"], "RECOVERY", confirm_name="Demo plan").status_code == 403
    assert not Execution.objects.exists()


def test_commander_recovers_only_after_typing_the_plan_name(login, demo):
    client = login("Commander")
    response = start(client, demo["plan"], "RECOVERY", confirm_name="demo")
    assert response.status_code == 400
    assert "Type the plan&#x27;s name, Demo plan, exactly" in response.content.decode()
    assert not Execution.objects.exists()
    response = start(client, demo["plan"], "RECOVERY", confirm_name="Demo plan")
    assert response.status_code == 302
    assert Execution.objects.get().mode == "RECOVERY"


def test_readiness_errors_are_shown_and_nothing_starts(login, demo):
    demo["servers"][0].in_drs = False
    demo["servers"][0].save()
    from drsorch.sandbox.models import SandboxSourceServer

    SandboxSourceServer.objects.filter(source_server_id=demo["servers"][0].drs_id).delete()
    response = start(login("Operator"), demo["plan"], accept_risks="on")
    assert response.status_code == 400
    body = response.content.decode()
    assert "The plan is not ready; nothing was started." in body
    assert "is no longer known to DRS" in body
    assert not Execution.objects.exists()


def test_the_start_form_accepts_the_warnings_it_lists(login, demo):
    from drsorch.sandbox.services import sandbox_server_update

    sandbox_server_update(
        source_server_id=demo["servers"][0].drs_id, replication_state="DISCONNECTED", lag_seconds=1200
    )
    client = login("Operator")
    page = client.get(demo["plan"].get_absolute_url()).content.decode()
    assert 'name="accept_risks"' not in page  # the stored inventory is still healthy
    client.post(reverse("plans:plan_readiness_refresh", args=[demo["plan"].pk]))
    page = client.get(demo["plan"].get_absolute_url()).content.decode()
    assert 'name="accept_risks"' in page and "Accept these risks" in page
    assert "replication is DISCONNECTED, not CONTINUOUS; a recovery now starts from a snapshot about 20 min old" in page

    response = start(client, demo["plan"])
    assert response.status_code == 400
    assert "The plan has risks; nothing was started." in response.content.decode()
    assert not Execution.objects.exists()

    response = start(client, demo["plan"], accept_risks="on")
    execution = Execution.objects.get()
    assert response.status_code == 302 and response["Location"] == execution.get_absolute_url()
    assert len(execution.accepted_risks) == 2 and "DISCONNECTED" in execution.accepted_risks[0]
    assert "lags 20 min behind" in execution.accepted_risks[1]
    for url in (execution.get_absolute_url(), reverse("executions:report", args=[execution.pk])):
        body = client.get(url).content.decode()
        assert 'id="accepted-risks"' in body and "replication is DISCONNECTED" in body


def test_a_running_plan_links_to_its_execution(login, demo):
    client = login("Operator")
    start(client, demo["plan"])
    running = Execution.objects.get()
    response = start(client, demo["plan"], idempotency_key="another")
    assert response.status_code == 302
    body = client.get(response["Location"]).content.decode()
    assert "is already running" in body
    assert f'<a href="{running.get_absolute_url()}">Open the running execution</a>' in body


def test_a_double_submitted_start_form_starts_once(login, demo):
    client = login("Operator")
    first = start(client, demo["plan"], idempotency_key="form-1")
    second = start(client, demo["plan"], idempotency_key="form-1")
    assert first["Location"] == second["Location"]
    assert Execution.objects.count() == 1
