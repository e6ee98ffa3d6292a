"""Every page answers each role: login required, read for all roles, 403 without a role."""

import pytest
from django.urls import reverse

from tests.factories import build_execution
from tests.ui.conftest import ROLES

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


@pytest.fixture
def pages(demo):
    execution = build_execution(servers=6, plan=demo["plan"], target=demo["target"])
    group, plan = demo["groups"][0], demo["plan"]
    return [
        reverse("executions:dashboard"),
        reverse("executions:dashboard_running"),
        reverse("plans:server_list"),
        reverse("plans:group_list"),
        reverse("plans:group_detail", args=[group.pk]),
        reverse("plans:plan_list"),
        reverse("plans:plan_detail", args=[plan.pk]),
        reverse("executions:list"),
        reverse("executions:detail", args=[execution.pk]),
        reverse("executions:live", args=[execution.pk]),
        reverse("executions:report", args=[execution.pk]),
        reverse("plans:group_server_picker") + f"?target={demo['target'].pk}",
        reverse("plans:group_tag_preview") + f"?target={demo['target'].pk}&tag_selector=Tier%3Ddb",
    ]


def test_every_page_needs_a_login(client, pages):
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_every_page(login, pages, role):
    client = login(role)
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)


def test_a_user_without_a_role_is_refused(login, pages):
    client = login()
    for url in pages:
        assert client.get(url).status_code == 403, url


def test_navigation_bar_links_every_section(login, demo):
    body = login("Viewer").get("/").content.decode()
    for label, url in [
        ("Dashboard", "/"),
        ("Servers", "/servers/"),
        ("Groups", "/groups/"),
        ("Plans", "/plans/"),
        ("Executions", "/executions/"),
        ("API docs", "/api/docs/"),
    ]:
        assert f'href="{url}"' in body and label in body
    assert "/admin/" not in body
    assert 'href="/admin/"' in login(superuser=True).get("/").content.decode()


def test_htmx_is_served_from_this_app(login, demo):
    body = login("Viewer").get("/").content.decode()
    assert "/static/vendor/htmx.min.js" in body
    assert "cdn" not in body.lower() and "unpkg" not in body.lower()


@pytest.mark.parametrize(
    "role, visible, hidden",
    [
        ("Viewer", [], ["Start drill", "Start recovery", ">Edit<", ">Delete<"]),
        ("Operator", ["Start drill"], ["Start recovery", ">Edit<"]),
        ("Commander", ["Start drill", "Start recovery"], [">Edit<"]),
        ("Planner", [">Edit<", ">Delete<"], ["Start drill", "Start recovery"]),
    ],
)
def test_plan_page_offers_only_what_the_role_may_do(login, demo, role, visible, hidden):
    body = login(role).get(demo["plan"].get_absolute_url()).content.decode()
    for text in visible:
        assert text in body, text
    for text in hidden:
        assert text not in body, text


@pytest.mark.parametrize("role", ["Viewer", "Operator", "Commander"])
def test_only_planners_are_offered_edits_and_sync(login, demo, role):
    client = login(role)
    assert "Sync now" not in client.get("/servers/").content.decode()
    assert "New group" not in client.get("/groups/").content.decode()
    assert "New plan" not in client.get("/plans/").content.decode()
    planner = login("Planner")
    assert "Sync now" in planner.get("/servers/").content.decode()
    assert "New group" in planner.get("/groups/").content.decode()
    assert "New plan" in planner.get("/plans/").content.decode()


@pytest.mark.parametrize("role", ["Viewer", "Operator", "Commander"])
def test_non_planners_cannot_edit(login, demo, role):
    client = login(role)
    group, plan = demo["groups"][0], demo["plan"]
    for url in [
        reverse("plans:group_create"),
        reverse("plans:group_edit", args=[group.pk]),
        reverse("plans:group_delete", args=[group.pk]),
        reverse("plans:plan_create"),
        reverse("plans:plan_edit", args=[plan.pk]),
        reverse("plans:plan_delete", args=[plan.pk]),
    ]:
        assert client.get(url).status_code == 403, url
        assert client.post(url, {"name": "x"}).status_code == 403, url
    assert client.post(reverse("plans:server_sync"), {}).status_code == 403


def test_dashboard_shows_plans_readiness_last_drill_and_inventory(login, demo):
    from executions.choices import ExecutionStatus

    build_execution(servers=3, plan=demo["plan"], target=demo["target"], status=ExecutionStatus.SUCCEEDED)
    body = login("Viewer").get("/").content.decode()
    assert "Demo plan" in body
    assert "ready" in body
    assert "Succeeded" in body
    assert "CONTINUOUS" in body
    assert 'hx-get="/dashboard/running/"' in body and 'hx-trigger="every 5s"' in body


def test_dashboard_lists_servers_lagging_beyond_rpo_and_15_minutes(login, demo):
    db = demo["servers"][0]
    db.lag_seconds = 40 * 60
    db.save()
    body = login("Viewer").get("/").content.decode()
    assert "Beyond their plan" in body
    assert "db-01" in body and "40 min 00 s" in body


def test_inventory_filters_by_search_state_and_tag(login, demo):
    client = login("Viewer")
    body = client.get("/servers/?q=web").content.decode()
    assert "web-01" in body and "db-01" not in body
    body = client.get("/servers/?tag=Tier%3Ddb").content.decode()
    assert "db-01" in body and "web-01" not in body
    body = client.get("/servers/?replication_state=STALLED").content.decode()
    assert "No server matches" in body


def test_inventory_sync_now_for_planners(login, demo):
    response = login("Planner").post(reverse("plans:server_sync"), {"target": demo["target"].pk}, follow=True)
    assert response.status_code == 200
    assert "Synced target &#x27;Sandbox test&#x27;: 0 new, 3 updated" in response.content.decode()


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/phish", "//evil.example/", "/\\evil.example", "javascript:alert(1)"]
)
def test_inventory_sync_never_redirects_off_site(login, demo, next_url):
    response = login("Planner").post(reverse("plans:server_sync"), {"target": demo["target"].pk, "next": next_url})
    assert response.status_code == 302 and response["Location"] == reverse("plans:server_list")


def test_inventory_sync_returns_to_the_filtered_list_it_came_from(login, demo):
    response = login("Planner").post(
        reverse("plans:server_sync"), {"target": demo["target"].pk, "next": "/servers/?tag=Tier%3Ddb"}
    )
    assert response.status_code == 302 and response["Location"] == "/servers/?tag=Tier%3Ddb"


def test_inventory_sync_shows_drs_errors(login, demo, monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    def fail(*, target):
        raise EndpointConnectionError(endpoint_url="https://drs.us-east-1.amazonaws.com")

    monkeypatch.setattr("plans.views.source_servers_sync", fail)
    response = login("Planner").post(reverse("plans:server_sync"), {"target": ""}, follow=True)
    assert "Could not sync target" in response.content.decode()


def test_dashboard_shows_a_running_plan_as_running_with_its_link_not_as_an_error(login, demo):
    """Issue 13, item 4: the plan's own run is no readiness error on the dashboard."""
    from executions.choices import ExecutionStatus

    running = build_execution(servers=3, plan=demo["plan"], target=demo["target"], status=ExecutionStatus.RUNNING)
    body = login("Viewer").get("/").content.decode()
    row = body[body.index('href="' + demo["plan"].get_absolute_url() + '"') :]
    row = row[: row.index("</tr>")]
    assert f'<a href="{running.get_absolute_url()}"' in row and ">Running</span>" in row
    assert "error" not in row and ">ready<" not in row
