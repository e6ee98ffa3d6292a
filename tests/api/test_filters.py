"""Filters of every API list: a bad value answers 400 naming the parameter and what was wrong,
never an ignored filter or an empty list (issue 13)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from executions.choices import EventKind
from executions.models import ExecutionEvent
from plans.models import SourceServer

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

BIG = str(2**70)

# (path, query, parameter in the answer, words its message must hold)
BAD_LIST_FILTERS = [
    ("targets", "kind=nope", "kind", ['"nope" is not a target kind', "aws or sandbox"]),
    ("targets", "account_id=abc", "account_id", ["12 digits"]),
    ("targets", "region=Mars", "region", ["us-east-1"]),
    ("source-servers", "target=abc", "target", ['"abc" is not the id of a target']),
    ("source-servers", f"target={BIG}", "target", [f'"{BIG}" is not the id of a target']),
    ("source-servers", "target=%D9%A2", "target", ['"\u0662" is not the id of a target']),
    ("source-servers", "target=999", "target", ["There is no target with id 999."]),
    (
        "source-servers",
        "replication_state=BOGUS",
        "replication_state",
        ['"BOGUS" is not a replication state', "STALLED"],
    ),
    ("source-servers", "lag_above_seconds=abc", "lag_above_seconds", ['"abc" is not a whole number']),
    ("source-servers", "lag_above_seconds=1.5", "lag_above_seconds", ['"1.5" is not a whole number']),
    ("source-servers", f"lag_above_seconds={BIG}", "lag_above_seconds", ["from 0 to 2147483647"]),
    ("source-servers", "tag==db", "tag", ['"=db" is not a tag', "Key=Value"]),
    ("source-servers", "in_drs=maybe", "in_drs", ['"maybe" is not yes or no', "true or false"]),
    # What someone sends is never a format string: "%" once broke the answer into a 500.
    ("source-servers", "in_drs=100%25", "in_drs", ['"100%" is not yes or no']),
    ("source-servers", "tag=%3D%25(value)s", "tag", ['"=%(value)s" is not a tag']),
    ("executions", "date_after=%25d", "date_after", ['"%d" is not a day']),
    ("source-servers", "q=%00", "q", ["Null characters"]),
    ("protection-groups", "target=x", "target", ['"x" is not the id of a target']),
    ("plans", "q=a%00b", "q", ["Null characters"]),
    ("executions", "plan=2.9", "plan", ['"2.9" is not the id of a recovery plan']),
    ("executions", "mode=BACKUP", "mode", ['"BACKUP" is not a mode: use DRILL or RECOVERY.']),
    ("executions", "status=DONE", "status", ['"DONE" is not a status', "TIMED_OUT"]),
    ("executions", "created_after=yesterday", "created_after", ['"yesterday" is not an ISO-8601 date and time']),
    ("executions", "date_after=2026-13-01", "date_after", ['"2026-13-01" is not a day', "YYYY-MM-DD"]),
    ("executions", "date_before=01/02/2026", "date_before", ['"01/02/2026" is not a day']),
    (
        "executions",
        "date_after=2026-02-01&date_before=2026-01-01",
        "date_before",
        ["The end of the range (2026-01-01) is before its start (2026-02-01)."],
    ),
    (
        "executions",
        "created_after=2026-02-01T00:00:00Z&created_before=2026-01-01T00:00:00Z",
        "created_before",
        ["is before its start"],
    ),
]


@pytest.mark.parametrize(("path", "query", "parameter", "words"), BAD_LIST_FILTERS)
def test_a_bad_filter_value_answers_400_naming_the_parameter(api, plan, path, query, parameter, words):
    response = api("Viewer").get(f"/api/v1/{path}/?{query}")

    assert response.status_code == 400, response.content
    body = response.json()
    assert list(body) == [parameter]
    message = " ".join(body[parameter])
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    ("query", "parameter", "words"),
    [
        ("kind=NOPE", "kind", ['"NOPE" is not an event kind', "ACTION"]),
        ("wave_index=1.5", "wave_index", ['"1.5" is not a whole number from 0 to 32767']),
        ("wave_index=-1", "wave_index", ['"-1" is not a whole number']),
        ("people=perhaps", "people", ['"perhaps" is not yes or no']),
    ],
)
def test_a_bad_event_filter_answers_400_naming_the_parameter(api, execution, query, parameter, words):
    response = api("Viewer").get(f"/api/v1/executions/{execution.pk}/events/?{query}")

    assert response.status_code == 400
    assert list(response.json()) == [parameter]
    for word in words:
        assert word in " ".join(response.json()[parameter])


def test_a_plans_history_with_a_bad_mode_still_answers_400_naming_it(api, plan):
    response = api("Viewer").get(f"/api/v1/plans/{plan.pk}/history/?mode=BACKUP")

    assert response.status_code == 400
    assert response.json() == {"mode": ['"BACKUP" is not a mode: use DRILL or RECOVERY.']}


def test_every_bad_parameter_of_one_request_is_named(api, plan):
    response = api("Viewer").get("/api/v1/source-servers/?in_drs=maybe&tag==x&target=abc")

    assert response.status_code == 400
    assert set(response.json()) == {"in_drs", "tag", "target"}


def test_known_to_drs_takes_yes_no_and_any(api, sandbox_servers):
    gone = sandbox_servers[0]
    SourceServer.objects.filter(pk=gone.pk).update(in_drs=False)
    client = api("Viewer")

    def hostnames(query):
        response = client.get(f"/api/v1/source-servers/?{query}")
        assert response.status_code == 200, response.json()
        return sorted(item["hostname"] for item in response.json()["results"])

    assert hostnames("in_drs=false") == hostnames("in_drs=no") == ["db-01"]
    assert hostnames("in_drs=true") == hostnames("in_drs=1") == ["app-01", "web-01"]
    # "" and "unknown" (what the pages' old select sent) mean any.
    assert hostnames("in_drs=") == hostnames("in_drs=unknown") == ["app-01", "db-01", "web-01"]


def test_good_values_of_the_stricter_filters_still_filter(api, sandbox_servers, sandbox_target):
    client = api("Viewer")

    def count(path, query):
        response = client.get(f"/api/v1/{path}/?{query}")
        assert response.status_code == 200, response.json()
        return response.json()["count"]

    assert count("source-servers", "tag=Application") == 3
    assert count("source-servers", "tag=Application%3Ddemo") == 3
    assert count("source-servers", "tag=Application%3Dother") == 0
    assert count("source-servers", f"target={sandbox_target.pk}") == 3
    assert count("source-servers", "lag_above_seconds=0") == 3  # the sandbox reports a lag of 5 s
    assert count("source-servers", "lag_above_seconds=5") == 0
    assert count("targets", f"account_id={sandbox_target.account_id}") == 1
    assert count("targets", "account_id=999999999999") == 0
    assert count("targets", "region=us-east-1") == 1


def test_events_people_filter_keeps_what_people_did(api, execution):
    ExecutionEvent.objects.create(execution=execution, kind=EventKind.DRS, actor_name="drsorch", message="Job log.")
    ExecutionEvent.objects.create(
        execution=execution, kind=EventKind.ACTION, actor_name="drsorch", message="Gate approved automatically."
    )
    ExecutionEvent.objects.create(execution=execution, kind=EventKind.ACTION, actor_name="olga", message="Approved.")
    client = api("Viewer")

    people = client.get(f"/api/v1/executions/{execution.pk}/events/?people=true").json()["results"]
    others = client.get(f"/api/v1/executions/{execution.pk}/events/?people=false").json()["results"]

    # The start was recorded by the services with the actor "cli" (no user): a person too.
    assert [e["actor"] for e in people] == ["cli", "olga"]
    assert people[0]["message"].startswith("Started a drill") and people[1]["message"] == "Approved."
    assert {e["message"] for e in others} >= {"Job log.", "Gate approved automatically."}
    assert not {e["kind"] for e in others if e["actor"] != "drsorch"} & {"ACTION"}


def test_events_kind_filter_is_repeatable(api, execution):
    ExecutionEvent.objects.create(execution=execution, kind=EventKind.DRS, message="Job log.")
    ExecutionEvent.objects.create(execution=execution, kind=EventKind.ERROR, message="Broken.")
    response = api("Viewer").get(f"/api/v1/executions/{execution.pk}/events/?kind=DRS&kind=ERROR")

    assert response.status_code == 200
    assert [e["kind"] for e in response.json()["results"]] == ["DRS", "ERROR"]


LIST_PARAMETERS = [
    ("targets", "kind"),
    ("targets", "region"),
    ("targets", "account_id"),
    ("source-servers", "target"),
    ("source-servers", "replication_state"),
    ("source-servers", "lag_above_seconds"),
    ("source-servers", "tag"),
    ("source-servers", "in_drs"),
    ("source-servers", "q"),
    ("protection-groups", "target"),
    ("plans", "q"),
    ("executions", "plan"),
    ("executions", "mode"),
    ("executions", "status"),
    ("executions", "created_after"),
    ("executions", "date_after"),
    ("executions", "date_before"),
]


@given(pair=st.sampled_from(LIST_PARAMETERS), value=st.text(max_size=30))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_filter_value_filters_or_is_a_400_naming_its_parameter(api, plan, pair, value):
    path, parameter = pair
    response = api("Viewer").get(f"/api/v1/{path}/", {parameter: value})

    assert response.status_code in (200, 400), (path, parameter, value, response.status_code)
    if response.status_code == 400:
        assert list(response.json()) == [parameter]
        assert all(isinstance(message, str) and message for message in response.json()[parameter])
