"""The inventory's Group column: every group a server belongs to, explicitly or by a tag
selector, in a fixed number of queries (issue 13)."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from plans.models import ProtectionGroup
from plans.selectors import server_groups
from tests.factories import ProtectionGroupFactory, SourceServerFactory, TargetFactory

pytestmark = pytest.mark.django_db


def group_cells(body):
    """{hostname: the text of its Group cell}."""
    rows = re.findall(
        r"<tr>\s*<td>([^<]+?)(?: <span[^>]*>[^<]*</span>)?</td>.*?<td class=\"groups\">(.*?)</td>", body, re.S
    )
    return {host.strip(): re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell)).strip() for host, cell in rows}


@pytest.fixture
def inventory():
    """Two targets; on the first, db-01 chosen explicitly in "Databases", which also selects
    Tier=db; web-01 and web-02 in "Web" by tag only; web-01 also in "Everything" by tag; app-01
    in no group. The second target has a "Web elsewhere" group selecting Tier=web."""
    target, other = TargetFactory(name="Primary"), TargetFactory(name="Other")
    db = SourceServerFactory(target=target, hostname="db-01", tags={"Tier": "db", "App": "erp"})
    web1 = SourceServerFactory(target=target, hostname="web-01", tags={"Tier": "web", "App": "erp"})
    web2 = SourceServerFactory(target=target, hostname="web-02", tags={"Tier": "web"})
    SourceServerFactory(target=target, hostname="app-01", tags={"Tier": "app"})
    ProtectionGroupFactory(name="Databases", target=target, servers=[db], tag_selector={"Tier": "db"})
    ProtectionGroupFactory(name="Web", target=target, tag_selector={"Tier": "web"})
    ProtectionGroupFactory(name="Everything", target=target, tag_selector={"Tier": "web", "App": "erp"})
    ProtectionGroupFactory(name="Web elsewhere", target=other, tag_selector={"Tier": "web"})
    return {"target": target, "other": other, "db": db, "web1": web1, "web2": web2}


def test_the_group_column_shows_explicit_and_tag_groups(login, inventory):
    body = login("Viewer").get("/servers/").content.decode()

    assert group_cells(body) == {
        "app-01": "—",
        "db-01": "Databases",
        "web-01": "Everything by tag Web by tag",
        "web-02": "Web by tag",
    }
    web = ProtectionGroup.objects.get(name="Web")
    assert f'<a href="{web.get_absolute_url()}">Web</a>' in body
    assert 'title="Matches the group\'s tag selector Tier=web"' in body


def test_server_groups_lists_an_explicit_member_once_and_ignores_other_targets(inventory):
    servers = list(inventory["target"].source_servers.select_related("membership__group"))
    found = {
        server.hostname: [(g.group.name, g.explicit) for g in groups]
        for server, groups in ((s, server_groups(servers)[s.pk]) for s in servers)
    }

    assert found["db-01"] == [("Databases", True)]
    assert found["web-01"] == [("Everything", False), ("Web", False)]
    assert found["web-02"] == [("Web", False)]
    assert found["app-01"] == []
    assert server_groups([]) == {}


def count_queries(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/servers/")
    assert response.status_code == 200
    return len(queries)


def test_the_inventory_takes_the_same_queries_for_a_page_of_many_servers(
    login, inventory, django_assert_max_num_queries
):
    client = login("Viewer")
    count_queries(client)  # the session and permissions, cached from here on
    few = count_queries(client)

    target = inventory["target"]
    many = [
        SourceServerFactory(target=target, hostname=f"web-{n:03d}", tags={"Tier": "web", "App": "erp"})
        for n in range(3, 60)
    ]
    for n in range(20):
        ProtectionGroupFactory(name=f"Explicit {n}", target=target, servers=many[n : n + 1])
    for n in range(10):
        ProtectionGroupFactory(name=f"Tagged {n}", target=target, tag_selector={"Tier": "web", "Slot": str(n)})

    assert count_queries(client) == few
    with django_assert_max_num_queries(8):  # session, user, 2 permissions, count, page, groups, targets
        body = client.get("/servers/").content.decode()
    # A full page of 50 rows, each with every group it belongs to.
    assert len(group_cells(body)) == 50
    assert "Explicit 0" in body and body.count(">Everything</a>") >= 40
