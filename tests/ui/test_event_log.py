"""The execution page's event log: a page of 50 at a time, filtered by kind and by what
people did, kept across the live refresh; the server table scrolls with the page (issue 13)."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from executions.choices import EventKind, ExecutionStatus
from executions.models import ExecutionEvent
from tests.factories import build_execution

pytestmark = pytest.mark.django_db


def events_shown(body):
    """The messages of the log's events, in page order."""
    log = body.split('id="event-log"')[1].split("</ol>")[0]
    found = re.findall(
        r'<li class="event[^"]*"[^>]*>.*?(?:<span class="message">)?([^<>]+?)(?:</span>)?</li>', log, re.S
    )
    return [message.strip() for message in found]


def older_link(body):
    found = re.search(r'<a href="([^"]*)" hx-get="[^"]*">Older events', body)
    return found.group(1).replace("&amp;", "&") if found else None


@pytest.fixture
def execution():
    return build_execution(servers=2, waves=1)


def log(execution, count, *, kind=EventKind.ENGINE, actor="drsorch", same_time=False):
    """`count` events numbered from 0, one second apart (or all at one instant), oldest first."""
    start = timezone.now() - timedelta(hours=1)
    return ExecutionEvent.objects.bulk_create(
        [
            ExecutionEvent(
                execution=execution,
                kind=kind,
                actor_name=actor,
                message=f"{kind} event {n:03d}",
                created_at=start if same_time else start + timedelta(seconds=n),
            )
            for n in range(count)
        ]
    )


@pytest.mark.parametrize("same_time", [False, True])
def test_the_log_pages_through_every_event_newest_first_without_gaps(login, execution, same_time):
    log(execution, 120, same_time=same_time)
    client = login("Viewer")

    seen, url, pages = [], execution.get_absolute_url(), 0
    while url:
        body = client.get(url).content.decode()
        shown = events_shown(body)
        assert len(shown) <= 50
        seen += shown
        pages += 1
        if pages > 1:
            assert "« Newest events" in body and "(older events)" in body
        url = older_link(body)
    assert pages == 3
    assert seen == [f"ENGINE event {n:03d}" for n in reversed(range(120))]


def test_an_older_page_stays_the_same_while_new_events_arrive(login, execution):
    log(execution, 60)
    client = login("Viewer")
    second = older_link(client.get(execution.get_absolute_url()).content.decode())
    before = events_shown(client.get(second).content.decode())

    ExecutionEvent.objects.create(execution=execution, kind=EventKind.DRS, message="A new job log item.")

    assert events_shown(client.get(second).content.decode()) == before
    assert "A new job log item." in events_shown(client.get(execution.get_absolute_url()).content.decode())


def test_the_log_filters_by_kind_with_ticked_chips(login, execution):
    log(execution, 5, kind=EventKind.DRS)
    log(execution, 2, kind=EventKind.ERROR)
    client = login("Viewer")

    body = client.get(execution.get_absolute_url(), {"kind": ["ERROR"]}).content.decode()

    assert events_shown(body) == ["ERROR event 001", "ERROR event 000"]
    assert re.search(r'<input type="checkbox" name="kind" value="ERROR"[^>]*checked', body)
    assert not re.search(r'<input type="checkbox" name="kind" value="DRS"[^>]*checked', body)
    assert ">All events</a>" in body
    both = client.get(execution.get_absolute_url(), {"kind": ["ERROR", "DRS"]}).content.decode()
    assert len(events_shown(both)) == 7


def test_the_people_view_shows_what_people_did_first_class(login, execution):
    log(execution, 30, kind=EventKind.DRS)
    ExecutionEvent.objects.create(
        execution=execution, kind=EventKind.ACTION, actor_name="drsorch", message="Gate approved automatically."
    )
    ExecutionEvent.objects.create(
        execution=execution, kind=EventKind.ACTION, actor_name="olga", message="Approved wave 2 'Web'."
    )
    ExecutionEvent.objects.create(execution=execution, kind=EventKind.ACTION, actor_name="cli", message="Cancelled.")
    client = login("Viewer")

    body = client.get(execution.get_absolute_url(), {"people": "true"}).content.decode()

    assert events_shown(body) == ["Cancelled.", "Approved wave 2 &#x27;Web&#x27;."]
    assert re.search(
        r'<li class="event person" data-kind="ACTION">.*?<span class="avatar" aria-hidden="true">O</span>'
        r"<strong>olga</strong>",
        body,
        re.S,
    )
    assert 'id="events-people" checked' in body
    # In the whole log too, a person's action stands out and the engine's does not.
    everything = client.get(execution.get_absolute_url()).content.decode()
    assert everything.count('<li class="event person"') == 2
    assert re.search(r'<li class="event kind-action"[^>]*>.*?Gate approved automatically', everything, re.S)


def test_the_live_refresh_keeps_the_readers_view_and_page(login, execution):
    log(execution, 60, kind=EventKind.DRS)
    client = login("Viewer")
    live_url = reverse("executions:live", args=[execution.pk])

    body = client.get(execution.get_absolute_url(), {"kind": ["DRS"], "people": "false"}).content.decode()
    older = older_link(body)
    assert older is not None
    before = re.search(r"before=(\d+)", older).group(1)
    paged = client.get(older).content.decode()

    root = re.search(r'<div id="live"[^>]*>', paged).group(0)
    assert f'hx-get="{live_url}?kind=DRS&amp;people=false&amp;before={before}"' in root
    live = client.get(f"{live_url}?kind=DRS&people=false&before={before}").content.decode()
    assert events_shown(live) == events_shown(paged) == [f"DRS event {n:03d}" for n in reversed(range(10))]


def test_the_filter_form_swaps_the_live_part_and_keeps_its_url(login, execution):
    body = login("Viewer").get(execution.get_absolute_url()).content.decode()

    section = re.search(r'<section class="card" id="event-log"[^>]*>', body).group(0)
    assert 'hx-target="#live"' in section and 'hx-select="#live"' in section and 'hx-push-url="true"' in section
    form = re.search(r'<form method="get"[^>]*class="event-filter"[^>]*>', body).group(0)
    assert f'hx-get="{execution.get_absolute_url()}"' in form and 'hx-trigger="change"' in form


@pytest.mark.parametrize("query", ["kind=NOPE", "before=1.5", "people=maybe"])
def test_a_bad_log_filter_is_named_a_400_on_the_page_and_a_200_for_the_live_part(login, execution, query):
    log(execution, 3)
    client = login("Viewer")

    page = client.get(f"{execution.get_absolute_url()}?{query}")
    live = client.get(f"{reverse('executions:live', args=[execution.pk])}?{query}")

    assert page.status_code == 400 and live.status_code == 200
    for response in (page, live):
        body = response.content.decode()
        assert "No event is listed: the event filter is not valid." in body
        assert query.split("=")[1] in body
        assert events_shown(body) == []
        assert 'id="execution-status"' in body  # the rest of the page is there


def test_the_server_table_scrolls_with_the_page(login, execution):
    body = login("Viewer").get(execution.get_absolute_url()).content.decode()

    assert re.search(
        r'<section class="card flush page-table">\s*<h2 class="pad">Servers</h2>\s*<div class="table-wrap">', body
    )
    assert "table-wrap tall" not in body


def test_the_log_takes_the_same_queries_for_many_events(login, execution):
    other = build_execution(servers=2, waves=1, status=ExecutionStatus.RUNNING)
    log(execution, 5)
    log(other, 400)
    client = login("Viewer")

    def count(target):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(target.get_absolute_url(), {"kind": ["ENGINE"], "before": "999999"}).status_code == 200
        return len(queries)

    count(execution)
    assert count(execution) == count(other)


@pytest.fixture
def viewer(login):
    return login("Viewer")


@given(name=st.sampled_from(["kind", "people", "before"]), value=st.text(max_size=30))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_log_filter_value_is_a_page_or_a_named_400_and_the_live_part_always_answers(viewer, execution, name, value):
    page = viewer.get(execution.get_absolute_url(), {name: value})
    live = viewer.get(reverse("executions:live", args=[execution.pk]), {name: value})

    assert page.status_code in (200, 400)
    assert live.status_code == 200
    assert ("the event filter is not valid" in page.content.decode()) == (page.status_code == 400)


def test_the_live_refresh_carries_only_the_logs_own_parameters(login, execution):
    body = login("Viewer").get(execution.get_absolute_url(), {"kind": "DRS", "utm": "x", "page": "3"}).content.decode()

    root = re.search(r'<div id="live"[^>]*>', body).group(0)
    assert f'hx-get="{reverse("executions:live", args=[execution.pk])}?kind=DRS"' in root
