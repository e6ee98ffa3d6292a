"""The unattended-drill settings on the plan form, the plan page and the admin."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse

from plans.models import RecoveryPlan
from plans.services import plan_wave_specs
from tests.ui.test_plans import plan_data

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def waves_of(demo):
    db_group, web_group = demo["groups"]
    return [
        {"name": "Database", "protection_groups": [db_group.pk]},
        {"name": "Web", "protection_groups": [web_group.pk], "depends_on": [0]},
    ]


def test_planner_sets_the_schedule_and_limits_on_the_form(login, demo):
    response = login("Planner").post(
        reverse("plans:plan_create"),
        plan_data(waves_of(demo), drill_schedule=" 30 2 * * * ", drill_instance_ttl_minutes=60, drill_max_age_days=14),
    )
    assert response.status_code == 302
    plan = RecoveryPlan.objects.get(name="New plan")
    assert (plan.drill_schedule, plan.drill_instance_ttl_minutes, plan.drill_max_age_days) == ("30 2 * * *", 60, 14)


def test_empty_settings_on_the_form_are_stored_as_null(login, demo):
    response = login("Planner").post(
        reverse("plans:plan_create"),
        plan_data(waves_of(demo), drill_schedule="", drill_instance_ttl_minutes="", drill_max_age_days=""),
    )
    assert response.status_code == 302
    plan = RecoveryPlan.objects.get(name="New plan")
    assert (plan.drill_schedule, plan.drill_instance_ttl_minutes, plan.drill_max_age_days) == (None, None, None)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("drill_schedule", "0 3 * *", "5 fields"),
        ("drill_schedule", "0 3 * * 8", "out of range"),
        ("drill_instance_ttl_minutes", "0", "greater than or equal to 1"),
        ("drill_instance_ttl_minutes", "10081", "less than or equal to 10080"),
        ("drill_max_age_days", "3661", "less than or equal to 3660"),
    ],
)
def test_a_bad_setting_is_a_form_error_next_to_its_field(login, demo, field, value, message):
    response = login("Planner").post(reverse("plans:plan_create"), plan_data(waves_of(demo), **{field: value}))
    assert response.status_code == 400
    errors = response.context["plan_form"].errors
    assert list(errors) == [field] and message in errors[field][0]
    assert not RecoveryPlan.objects.filter(name="New plan").exists()
    assert 'id="unattended-heading"' in response.content.decode()


def test_editing_keeps_the_settings_shown_on_the_form(login, demo):
    plan = demo["plan"]
    plan.drill_schedule, plan.drill_max_age_days = "0 3 * * 1", 30
    plan.save()
    response = login("Planner").get(reverse("plans:plan_edit", args=[plan.pk]))
    body = response.content.decode()
    assert 'value="0 3 * * 1"' in body and 'name="drill_max_age_days" value="30"' in body


def test_the_plan_page_shows_the_next_three_runs_and_the_limits(login, demo):
    plan = demo["plan"]
    plan.drill_schedule, plan.drill_instance_ttl_minutes, plan.drill_max_age_days = "0 3 * * 1", 45, 30
    plan.save()
    with time_machine.travel(datetime(2027, 1, 4, 2, 0, tzinfo=UTC), tick=False):  # a Monday
        response = login("Viewer").get(plan.get_absolute_url())
    assert response.status_code == 200
    assert response.context["next_drills"] == [datetime(2027, 1, d, 3, 0, tzinfo=UTC) for d in (4, 11, 18)]
    body = response.content.decode()
    start = body.index('id="next-drills"')
    section = body[start : body.index("</ol>", start)]
    assert [f"2027-01-{d:02} 03:00 UTC" in section for d in (4, 11, 18)] == [True] * 3
    assert "Cleaned up 45 min after the drill ends" in body and "30 days: OVERDUE" in body


def test_a_plan_without_schedule_says_so(login, demo):
    response = login("Viewer").get(demo["plan"].get_absolute_url())
    body = response.content.decode()
    assert response.context["next_drills"] == []
    assert "drilled only when someone starts it" in body and 'id="next-drills"' not in body
    assert "Kept until someone cleans them up" in body and "No limit" in body


def test_the_admin_form_refuses_a_bad_schedule(make_user, demo):
    plan = demo["plan"]
    model_admin = admin.site._registry[RecoveryPlan]
    request = RequestFactory().get("/")
    request.user = make_user("root", superuser=True)
    form_class = model_admin.get_form(request, plan)
    data = {"name": plan.name, "description": "", "rto_target_minutes": 30, "rpo_target_minutes": 15}
    assert form_class(data={**data, "drill_schedule": "0 3 * * 1"}, instance=plan).is_valid()
    form = form_class(data={**data, "drill_schedule": "every monday"}, instance=plan)
    assert not form.is_valid() and "5 fields" in form.errors["drill_schedule"][0]
    assert len(plan_wave_specs(plan=plan)) == 2


def test_auto_approve_is_set_on_the_form_and_shown_with_the_schedule(login, demo):
    client = login("Planner")
    response = client.post(
        reverse("plans:plan_create"), plan_data(waves_of(demo), drill_schedule="0 3 * * *", auto_approve="on")
    )
    assert response.status_code == 302
    plan = RecoveryPlan.objects.get(name="New plan")
    assert plan.auto_approve is True
    body = client.get(plan.get_absolute_url()).content.decode()
    assert "Scheduled drills pass them on their own" in body
    plan.auto_approve = False
    plan.save()
    assert "Scheduled drills wait for a person at each gate" in client.get(plan.get_absolute_url()).content.decode()
