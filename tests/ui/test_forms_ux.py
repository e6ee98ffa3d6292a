"""Issue 13's form fixes: optional servers limited to the wave's own (checkboxes refreshed by
htmx), a summary of wave errors at the top of the plan form, the wave name's required marker,
a tag-selector error said once, and delete pages that say before the click what cannot go."""

import re

import pytest
from django.urls import reverse

from executions.services import execution_start
from plans.models import ProtectionGroup, RecoveryPlan

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def optional_boxes(html, prefix):
    """The (value, checked) of the optional-server checkboxes of wave `prefix`."""
    return [
        (value, bool(checked))
        for value, checked in re.findall(
            rf'<input type="checkbox" name="{prefix}-optional_servers" value="(\d+)"( checked)?>', html
        )
    ]


# --- 6. optional servers --------------------------------------------------------------------------


def test_each_wave_offers_only_its_own_servers_as_optional_checkboxes(login, demo):
    db01, db02, web01 = demo["servers"]
    body = login("Planner").get(reverse("plans:plan_edit", args=[demo["plan"].pk])).content.decode()

    assert optional_boxes(body, "waves-0") == [(str(db01.pk), False), (str(db02.pk), False)]
    # the Web group selects its servers by tag
    assert optional_boxes(body, "waves-1") == [(str(web01.pk), False)]
    assert "<select" not in body.split('id="waves-0-optional"')[1].split("</fieldset>")[0]
    assert 'hx-get="/plans/wave-optional-servers/"' in body and '"prefix": "waves-0"' in body


def test_the_optional_servers_follow_the_wave_groups_through_htmx(login, demo):
    db_group, web_group = demo["groups"]
    db01, db02, web01 = demo["servers"]
    client = login("Planner")
    url = reverse("plans:plan_wave_optional_servers")

    both = client.get(
        url,
        {
            "prefix": "waves-1",
            "waves-1-protection_groups": [db_group.pk, web_group.pk],
            "waves-1-optional_servers": [db02.pk],
        },
    ).content.decode()
    assert 'id="waves-1-optional"' in both
    assert optional_boxes(both, "waves-1") == [(str(db01.pk), False), (str(db02.pk), True), (str(web01.pk), False)]

    web_only = client.get(
        url, {"prefix": "waves-1", "waves-1-protection_groups": [web_group.pk], "waves-1-optional_servers": [db02.pk]}
    ).content.decode()
    # db-02 stays ticked but is shown as outside the wave, so it can be unticked
    assert optional_boxes(web_only, "waves-1") == [(str(web01.pk), False), (str(db02.pk), True)]
    assert "(not in this wave)" in web_only

    empty = client.get(url, {"prefix": "waves-0"}).content.decode()
    assert optional_boxes(empty, "waves-0") == [] and "Tick the wave's protection groups first" in empty


@pytest.mark.parametrize("prefix", ["", "other-0", "waves-x", 'waves-0"><script>', "waves-\u0662"])
def test_the_optional_servers_partial_refuses_a_bad_prefix(login, demo, prefix):
    response = login("Planner").get(reverse("plans:plan_wave_optional_servers"), {"prefix": prefix})
    assert response.status_code == 400


def test_the_optional_servers_partial_needs_a_login(client, demo):
    response = client.get(reverse("plans:plan_wave_optional_servers"), {"prefix": "waves-0"})
    assert response.status_code == 302


def plan_post(plan, waves):
    data = {
        "name": plan.name,
        "description": "",
        "rto_target_minutes": 30,
        "rpo_target_minutes": 15,
        "waves-TOTAL_FORMS": len(waves),
        "waves-INITIAL_FORMS": len(waves),
        "waves-MIN_NUM_FORMS": 1,
        "waves-MAX_NUM_FORMS": 1000,
    }
    for i, wave in enumerate(waves):
        for key, value in {"wait_after_minutes": 0, "timeout_minutes": 120, **wave}.items():
            data[f"waves-{i}-{key}"] = value
    return data


def test_a_server_outside_the_wave_is_still_refused_naming_it_and_summarised_on_top(login, demo):
    db_group, web_group = demo["groups"]
    web01 = demo["servers"][2]
    data = plan_post(
        demo["plan"],
        [
            {"name": "Database", "protection_groups": [db_group.pk], "optional_servers": [web01.pk]},
            {"name": "", "protection_groups": [web_group.pk], "depends_on": [0]},
        ],
    )
    response = login("Planner").post(reverse("plans:plan_edit", args=[demo["plan"].pk]), data)

    assert response.status_code == 400
    body = response.content.decode()
    message = f"Server web-01 ({web01.drs_id}) is marked optional but is not in wave"
    assert message in body
    summary = body[body.index('id="wave-error-summary"') : body.index("</div>", body.index('id="wave-error-summary"'))]
    assert body.index('id="wave-error-summary"') < body.index('id="id_name"')
    assert "2 waves need fixing" in summary
    assert '<a href="#wave-0">Wave 1 “Database”</a>: Optional servers: ' + message in summary
    assert '<a href="#wave-1">Wave 2</a>: ' in summary
    assert 'id="wave-0"' in body and 'id="wave-1"' in body
    assert list(demo["plan"].waves.get(order=0).optional_servers.all()) == []


def test_a_valid_plan_form_shows_no_summary_and_saves_optional_servers(login, demo):
    db_group, web_group = demo["groups"]
    db02 = demo["servers"][1]
    data = plan_post(
        demo["plan"],
        [
            {"name": "Database", "protection_groups": [db_group.pk], "optional_servers": [db02.pk]},
            {"name": "Web", "protection_groups": [web_group.pk], "depends_on": [0]},
        ],
    )
    client = login("Planner")
    assert client.post(reverse("plans:plan_edit", args=[demo["plan"].pk]), data).status_code == 302
    assert list(demo["plan"].waves.get(order=0).optional_servers.all()) == [db02]
    body = client.get(reverse("plans:plan_edit", args=[demo["plan"].pk])).content.decode()
    assert 'id="wave-error-summary"' not in body
    assert (str(db02.pk), True) in optional_boxes(body, "waves-0")


# --- 9. forms -------------------------------------------------------------------------------------


def test_the_wave_name_has_a_required_marker(login, demo):
    body = login("Planner").get(reverse("plans:plan_create")).content.decode()
    assert re.search(r'<label for="id_waves-0-name">Name <span class="req" aria-hidden="true">\*</span></label>', body)


def test_a_tag_selector_error_is_said_once(login, demo):
    response = login("Planner").post(
        reverse("plans:group_create"), {"name": "Broken", "target": demo["target"].pk, "tag_selector": "Tier"}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert body.count("&#x27;Tier&#x27; has no value") == 1
    # the live preview does not load over it; typing replaces it with the preview
    textarea = re.search(r'<textarea name="tag_selector"[^>]*>', body).group()
    assert "load," not in textarea and "input changed delay:400ms" in textarea
    assert re.search(r'id="tag-preview"[^>]*><div class="errors" role="alert"><p>Line 1: &#x27;Tier', body)


def test_a_fresh_group_form_still_loads_the_preview(login, demo):
    body = login("Planner").get(reverse("plans:group_create")).content.decode()
    assert "load," in re.search(r'<textarea name="tag_selector"[^>]*>', body).group()


def test_deleting_a_group_used_by_a_plan_says_why_before_the_click(login, demo):
    group = demo["groups"][0]
    client = login("Planner")
    body = client.get(reverse("plans:group_delete", args=[group.pk])).content.decode()

    assert "cannot be deleted" in body and "is used by the plan(s) Demo plan" in body
    assert '<button class="danger" type="submit">Delete</button>' not in body
    client.post(reverse("plans:group_delete", args=[group.pk]))
    assert ProtectionGroup.objects.filter(pk=group.pk).exists()


def test_deleting_a_plan_with_executions_says_why_before_the_click(login, demo):
    execution_start(plan=demo["plan"], mode="DRILL", requested_by=None)
    client = login("Planner")
    body = client.get(reverse("plans:plan_delete", args=[demo["plan"].pk])).content.decode()

    assert "has 1 execution(s); they are evidence" in body
    assert '<button class="danger" type="submit">Delete</button>' not in body
    client.post(reverse("plans:plan_delete", args=[demo["plan"].pk]))
    assert RecoveryPlan.objects.filter(pk=demo["plan"].pk).exists()


def test_a_deletable_plan_still_offers_delete(login, demo):
    client = login("Planner")
    body = client.get(reverse("plans:plan_delete", args=[demo["plan"].pk])).content.decode()
    assert '<button class="danger" type="submit">Delete</button>' in body and "cannot be deleted" not in body
    client.post(reverse("plans:plan_delete", args=[demo["plan"].pk]))
    assert not RecoveryPlan.objects.filter(pk=demo["plan"].pk).exists()
