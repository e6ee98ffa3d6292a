"""Protection group pages: create, edit, delete, the server picker and the tag preview."""

import pytest
from django.urls import reverse

from plans.models import ProtectionGroup

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def test_planner_creates_a_group_with_servers_and_tags(login, demo):
    web = demo["servers"][2]
    response = login("Planner").post(
        reverse("plans:group_create"),
        {
            "name": "Front",
            "description": "",
            "target": demo["target"].pk,
            "servers": [web.pk],
            "tag_selector": "Application=demo\n\n",
        },
    )
    group = ProtectionGroup.objects.get(name="Front")
    assert response.status_code == 302 and response["Location"] == group.get_absolute_url()
    assert list(group.servers.all()) == [web]
    assert group.tag_selector == {"Application": "demo"}


def test_planner_edits_a_group(login, demo):
    group = demo["groups"][1]
    response = login("Planner").post(
        reverse("plans:group_edit", args=[group.pk]),
        {
            "name": "Web tier",
            "target": demo["target"].pk,
            "tag_selector": "Tier=web",
        },
    )
    assert response.status_code == 302
    group.refresh_from_db()
    assert group.name == "Web tier"


def test_edit_form_shows_the_current_values(login, demo):
    group = demo["groups"][0]
    body = login("Planner").get(reverse("plans:group_edit", args=[group.pk])).content.decode()
    assert 'value="Databases"' in body
    assert body.count('name="servers"') >= 2 and "checked" in body


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"name": "", "tag_selector": "Tier=db"}, "name", "This field is required."),
        ({"name": "X", "tag_selector": "Tier"}, "tag_selector", "&#x27;Tier&#x27; has no value"),
        ({"name": "X", "tag_selector": "=db"}, "tag_selector", "Line 1: write a tag as Key=Value"),
        ({"name": "X", "tag_selector": ""}, None, "Choose at least one server or give a tag selector."),
        ({"name": "Databases", "tag_selector": "Tier=db"}, "name", "already exists"),
    ],
)
def test_bad_group_input_is_shown_next_to_the_field(login, demo, data, field, message):
    response = login("Planner").post(reverse("plans:group_create"), {"target": demo["target"].pk, **data})
    assert response.status_code == 400
    form = response.context["form"]
    assert message.replace("&#x27;", "'") in " ".join(form.errors.get(field or "__all__", [])), form.errors
    assert message in response.content.decode()


def test_a_server_already_in_another_group_is_refused_with_the_group_named(login, demo):
    taken = demo["servers"][0]
    response = login("Planner").post(
        reverse("plans:group_create"),
        {
            "name": "Again",
            "target": demo["target"].pk,
            "servers": [taken.pk],
        },
    )
    assert response.status_code == 400
    assert "already in protection group &#x27;Databases&#x27;" in response.content.decode()
    assert response.context["form"].errors["servers"]


def test_server_picker_filters_and_keeps_ticked_servers(login, demo):
    db1, db2, web = demo["servers"]
    url = reverse("plans:group_server_picker")
    body = login("Planner").get(url, {"target": demo["target"].pk, "q": "web", "servers": [db2.pk]}).content.decode()
    assert "web-01" in body
    assert "db-02" in body and f'value="{db2.pk}" checked' in body
    assert "db-01" not in body


def test_server_picker_marks_servers_of_other_groups(login, demo):
    body = login("Planner").get(reverse("plans:group_server_picker"), {"target": demo["target"].pk}).content.decode()
    assert "in Databases" in body and "disabled" in body


def test_tag_preview_lists_the_matching_servers(login, demo):
    url = reverse("plans:group_tag_preview")
    client = login("Planner")
    body = client.get(url, {"target": demo["target"].pk, "tag_selector": "Tier=db"}).content.decode()
    assert "<strong>2</strong> servers match" in body and "db-01" in body and "web-01" not in body
    body = client.get(url, {"target": demo["target"].pk, "tag_selector": "Tier"}).content.decode()
    assert "has no value" in body


def test_delete_refuses_a_group_used_by_a_plan(login, demo):
    group = demo["groups"][0]
    response = login("Planner").post(reverse("plans:group_delete", args=[group.pk]), follow=True)
    assert "is used by the plan(s) Demo plan" in response.content.decode()
    assert ProtectionGroup.objects.filter(pk=group.pk).exists()


def test_delete_an_unused_group(login, demo):
    group = ProtectionGroup.objects.create(name="Spare", target=demo["target"], tag_selector={"Tier": "x"})
    client = login("Planner")
    assert client.get(reverse("plans:group_delete", args=[group.pk])).status_code == 200
    response = client.post(reverse("plans:group_delete", args=[group.pk]))
    assert response.status_code == 302 and not ProtectionGroup.objects.filter(pk=group.pk).exists()
