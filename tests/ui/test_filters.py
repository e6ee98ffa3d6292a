"""The filter bar of the list pages: usable multiple choices, Any / Yes / No, a labelled day
range, and a bad value refused with a 400 naming the field, the list left empty (issue 13)."""

import re

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from executions.choices import ExecutionStatus
from tests.factories import ExecutionFactory, build_execution

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

# (page, query, the field's label, words of the message, what the empty list says)
BAD_PAGE_FILTERS = [
    ("/servers/", "target=abc", "Target", '"abc" is not the id of a target', "Fix the filter above to list servers."),
    ("/servers/", "replication_state=BOGUS", "Replication state", '"BOGUS" is not a replication state', "servers"),
    ("/servers/", "lag_above_seconds=1.5", "Lag above (seconds)", '"1.5" is not a whole number', "servers"),
    ("/servers/", "tag=%3Ddb", "Tag (Key=Value)", '"=db" is not a tag', "servers"),
    ("/servers/", "in_drs=maybe", "Known to DRS", '"maybe" is not yes or no', "servers"),
    ("/groups/", "target=999", "Target", "There is no target with id 999.", "protection groups"),
    ("/plans/", "q=a%00b", "Search", "Null characters", "recovery plans"),
    ("/executions/", "status=DONE", "Status", '"DONE" is not a status', "executions"),
    ("/executions/", "mode=BACKUP", "Mode", '"BACKUP" is not a mode', "executions"),
    ("/executions/", "plan=2.9", "Plan", '"2.9" is not the id of a recovery plan', "executions"),
    ("/executions/", "date_after=2026-13-01", "Started from", '"2026-13-01" is not a day', "executions"),
    (
        "/executions/",
        "date_after=2026-02-01&date_before=2026-01-01",
        "Started to",
        "The end of the range (2026-01-01) is before its start (2026-02-01).",
        "executions",
    ),
]


def banner(body):
    found = re.search(r'<div class="banner bad filter-errors".*?</div>', body, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(0))).strip() if found else None


@pytest.mark.parametrize(("page", "query", "label", "message", "empty"), BAD_PAGE_FILTERS)
def test_a_bad_filter_value_is_a_400_naming_the_field_and_lists_nothing(
    login, demo, page, query, label, message, empty
):
    build_execution(servers=1, plan=demo["plan"], target=demo["target"], status=ExecutionStatus.SUCCEEDED)
    response = login("Viewer").get(f"{page}?{query}")
    body = response.content.decode()

    assert response.status_code == 400
    shown = banner(body)
    assert shown is not None and shown.startswith("Nothing is listed")
    assert f"{label}: {message}".replace('"', "&quot;") in shown
    assert "Fix the filter above to list" in body and empty in body
    # Nothing of the unfiltered list leaks through as if it were the filtered one.
    table = body.split("<table>")[1].split("</table>")[0]
    assert "<a href=" not in table and "db-01" not in table


def test_the_banner_links_each_message_to_its_field(login, demo):
    body = login("Viewer").get("/servers/?in_drs=maybe&tag=%3D").content.decode()

    assert 'href="#id_in_drs"' in body and 'href="#id_tag"' in body
    assert re.search(r'<div class="field has-error">\s*<label for="id_in_drs">', body)
    assert "these filters are not valid" in body


def test_valid_filters_answer_200_without_a_banner(login, demo):
    client = login("Viewer")
    for url in [
        "/servers/?in_drs=true&tag=Tier%3Ddb",
        "/groups/?q=Data",
        "/plans/?q=Demo",
        "/executions/?status=FAILED",
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "filter-errors" not in response.content.decode()
    body = client.get("/servers/?in_drs=true&tag=Tier%3Ddb").content.decode()
    assert "db-01" in body and "web-01" not in body


def test_known_to_drs_offers_any_yes_and_no(login, demo):
    demo["servers"][0].in_drs = False
    demo["servers"][0].save()
    client = login("Viewer")
    body = client.get("/servers/").content.decode()

    select = re.search(r'<select name="in_drs".*?</select>', body, re.S).group(0)
    assert re.findall(r'<option value="([^"]*)"[^>]*>([^<]+)</option>', select) == [
        ("", "Any"),
        ("true", "Yes"),
        ("false", "No"),
    ]
    assert "Unknown" not in select
    gone = client.get("/servers/?in_drs=false").content.decode()
    assert "db-01" in gone and "db-02" not in gone
    assert re.search(r'<option value="false" selected>No</option>', gone)


def test_multiple_choices_are_checkbox_dropdowns_showing_what_is_ticked(login, demo):
    client = login("Viewer")
    body = client.get("/servers/").content.decode()
    assert '<select name="replication_state"' not in body and "multiple" not in body
    assert re.search(r'<details class="dropdown" id="id_replication_state">\s*<summary>Any</summary>', body)
    assert body.count('type="checkbox" name="replication_state"') == 11

    ticked = client.get("/executions/?status=FAILED&status=PARTIAL").content.decode()
    assert re.search(r'<details class="dropdown" id="id_status">\s*<summary>Partial, Failed</summary>', ticked)
    assert re.search(r'<input type="checkbox" name="status" value="FAILED"[^>]* checked', ticked)
    assert body.count("<legend>Replication state</legend>") == 1


def test_the_day_range_is_two_labelled_date_inputs(login, demo):
    body = login("Viewer").get("/executions/?date_after=2026-03-01").content.decode()

    assert '<label for="id_date_after">Started from</label>' in body
    assert '<label for="id_date_before">Started to</label>' in body
    assert re.search(r'<input type="date" name="date_after" value="2026-03-01"', body)
    assert re.search(r'<input type="date" name="date_before"', body)


def test_the_day_range_includes_both_days(login, demo, time_machine):
    time_machine.move_to("2026-03-02T23:59:00Z")
    late = ExecutionFactory(plan=demo["plan"], status=ExecutionStatus.FAILED)
    time_machine.move_to("2026-03-03T00:00:01Z")
    next_day = ExecutionFactory(plan=demo["plan"], status=ExecutionStatus.FAILED)
    client = login("Viewer")

    body = client.get(reverse("executions:list"), {"date_after": "2026-03-02", "date_before": "2026-03-02"}).content
    assert late.get_absolute_url().encode() in body and next_day.get_absolute_url().encode() not in body
    body = client.get(reverse("executions:list"), {"date_after": "2026-03-03"}).content
    assert next_day.get_absolute_url().encode() in body and late.get_absolute_url().encode() not in body
    assert client.get(reverse("executions:list"), {"date_before": "9999-12-31"}).status_code == 200


def test_single_choices_offer_any_for_no_choice(login, demo):
    client = login("Viewer")
    servers = client.get("/servers/").content.decode()
    executions = client.get("/executions/").content.decode()

    for body, name in [(servers, "target"), (executions, "plan"), (executions, "mode")]:
        select = re.search(rf'<select name="{name}".*?</select>', body, re.S).group(0)
        assert re.search(r'<option value="" selected>Any</option>', select), name
        assert "---------" not in select


PAGE_PARAMETERS = [
    ("/servers/", "target"),
    ("/servers/", "replication_state"),
    ("/servers/", "lag_above_seconds"),
    ("/servers/", "tag"),
    ("/servers/", "in_drs"),
    ("/servers/", "q"),
    ("/groups/", "target"),
    ("/plans/", "q"),
    ("/executions/", "plan"),
    ("/executions/", "mode"),
    ("/executions/", "status"),
    ("/executions/", "date_after"),
    ("/executions/", "date_before"),
]


@pytest.fixture
def viewer(login):
    return login("Viewer")


@given(pair=st.sampled_from(PAGE_PARAMETERS), value=st.text(max_size=30))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_filter_value_on_a_page_filters_or_names_the_field(viewer, demo, pair, value):
    page, parameter = pair
    response = viewer.get(page, {parameter: value})

    assert response.status_code in (200, 400), (page, parameter, value)
    assert (response.status_code == 400) == ("filter-errors" in response.content.decode())
