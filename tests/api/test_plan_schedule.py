"""The unattended-drill settings of a plan through the API: read/write, validation, PATCH."""

import pytest

from plans.models import RecoveryPlan

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

UNATTENDED = {"drill_schedule": "0 3 * * 1", "drill_instance_ttl_minutes": 90, "drill_max_age_days": 30}


def body_of(groups, **fields):
    return {"name": "Scheduled", "waves": [{"name": "All", "protection_groups": [g.pk for g in groups]}], **fields}


def test_a_plan_without_settings_has_nulls(api, plan):
    body = api("Viewer").get(f"/api/v1/plans/{plan.pk}/").json()
    assert {name: body[name] for name in UNATTENDED} == dict.fromkeys(UNATTENDED)


def test_settings_round_trip(api, groups):
    client = api("Planner")
    created = client.post("/api/v1/plans/", body_of(groups, **UNATTENDED), format="json")
    assert created.status_code == 201, created.json()
    assert {name: created.json()[name] for name in UNATTENDED} == UNATTENDED
    plan = RecoveryPlan.objects.get(name="Scheduled")
    assert (plan.drill_schedule, plan.drill_instance_ttl_minutes, plan.drill_max_age_days) == ("0 3 * * 1", 90, 30)

    url = f"/api/v1/plans/{plan.pk}/"
    read = client.get(url).json()
    assert read == created.json()
    again = client.put(url, read, format="json")
    assert again.status_code == 200 and {name: again.json()[name] for name in UNATTENDED} == UNATTENDED


def test_patch_keeps_what_it_leaves_out_and_null_clears(api, groups):
    client = api("Planner")
    plan_id = client.post("/api/v1/plans/", body_of(groups, **UNATTENDED), format="json").json()["id"]
    url = f"/api/v1/plans/{plan_id}/"

    response = client.patch(url, {"rto_target_minutes": 30}, format="json")
    assert {name: response.json()[name] for name in UNATTENDED} == UNATTENDED

    response = client.patch(url, {"drill_schedule": None, "drill_max_age_days": None}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["drill_schedule"] is None and response.json()["drill_max_age_days"] is None
    assert response.json()["drill_instance_ttl_minutes"] == 90


def test_a_blank_schedule_is_stored_as_null_and_spaces_are_tidied(api, groups):
    client = api("Planner")
    response = client.post("/api/v1/plans/", body_of(groups, drill_schedule="   "), format="json")
    assert response.status_code == 201 and response.json()["drill_schedule"] is None
    url = f"/api/v1/plans/{response.json()['id']}/"
    response = client.patch(url, {"drill_schedule": "  0  3 * *   1 "}, format="json")
    assert response.json()["drill_schedule"] == "0 3 * * 1"


@pytest.mark.parametrize(
    ("expression", "message"),
    [("0 3 * *", "5 fields"), ("0 25 * * *", "out of range"), ("@daily", "5 fields"), ("0 0 30 2 *", "never fires")],
)
def test_a_bad_cron_expression_is_400_naming_the_field(api, groups, expression, message):
    response = api("Planner").post("/api/v1/plans/", body_of(groups, drill_schedule=expression), format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["drill_schedule"]
    assert message in response.json()["drill_schedule"][0]
    assert not RecoveryPlan.objects.filter(name="Scheduled").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("drill_instance_ttl_minutes", 0),
        ("drill_instance_ttl_minutes", 10081),
        ("drill_instance_ttl_minutes", "soon"),
        ("drill_max_age_days", -1),
        ("drill_max_age_days", 3661),
    ],
)
def test_out_of_range_numbers_are_400_naming_the_field(api, plan, field, value):
    response = api("Planner").patch(f"/api/v1/plans/{plan.pk}/", {field: value}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]
    plan.refresh_from_db()
    assert getattr(plan, field) is None


def test_viewer_cannot_set_a_schedule(api, plan):
    response = api("Viewer").patch(f"/api/v1/plans/{plan.pk}/", {"drill_schedule": "* * * * *"}, format="json")
    assert response.status_code == 403
    plan.refresh_from_db()
    assert plan.drill_schedule is None


def test_auto_approve_defaults_to_false_and_round_trips(api, groups):
    client = api("Planner")
    created = client.post("/api/v1/plans/", body_of(groups, **UNATTENDED), format="json").json()
    assert created["auto_approve"] is False
    url = f"/api/v1/plans/{created['id']}/"
    response = client.patch(url, {"auto_approve": True}, format="json")
    assert response.status_code == 200 and response.json()["auto_approve"] is True
    assert RecoveryPlan.objects.get(pk=created["id"]).auto_approve is True
    response = client.patch(url, {"rto_target_minutes": 45}, format="json")  # kept when left out
    assert response.json()["auto_approve"] is True
    response = client.patch(url, {"auto_approve": "maybe"}, format="json")
    assert response.status_code == 400 and "auto_approve" in response.json()
