"""Property-based: no request of a signed-in user answers a 5xx (issue 13).

(a) Every write operation of the API (POST, PUT, PATCH, DELETE under /api/v1/, read from the
    drf-spectacular schema, so a new endpoint is covered without touching this file) gets JSON
    bodies shaped by its request schema with hostile values mixed in: integers past 64 bits,
    non-ASCII digits, floats where ids go, nulls, nested lists and objects, long and unicode
    strings.
(b) Every page (every GET route outside the API, the admin and the login pages, read from the
    URL resolver, with valid ids in its path) gets query strings over the parameters the pages
    read (the filtersets' fields, the htmx endpoints' own) and random ones.

The user holds every role. The test client re-raises a view's exception, so a failure shows
its traceback; the status must be below 500 either way. The schemathesis run in CI
(.ci/schemathesis.sh) does the same against a live server; this one runs in `make test`.
"""

import inspect
import json
import os
import re
from datetime import UTC, datetime
from urllib.parse import urlencode

import django_filters
import pytest
import time_machine
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drsorch.roles import roles_sync
from executions import filtersets as execution_filtersets
from executions.services import execution_start
from plans import filtersets as plan_filtersets
from plans.demo import sandbox_seed

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
# `make test` runs 300 examples of the API's writes and 25 of each page (about 20 s in all on
# 2 cores); set DRSORCH_FUZZ_EXAMPLES (the API's count; pages get a twelfth each) to hunt longer.
FUZZ = settings(
    max_examples=int(os.environ.get("DRSORCH_FUZZ_EXAMPLES", 300)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- Hostile values -----------------------------------------------------------------------------

HOSTILE_TEXT = [
    "\u0661\u0662",  # Arabic-Indic digits: int() takes them, the database does not
    "\uff12",  # a fullwidth digit
    "2.9",
    "1e400",
    "NaN",
    "-Infinity",
    "-1",
    "0",
    "",
    " ",
    "\x00",
    "0x10",
    "9" * 40,
    "a" * 3000,
    "caf\u00e9 \U0001f525 \u202e",
    "2026-02-30T25:61:00Z",
    "99999-01-01T00:00:00+00:00",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
]
HOSTILE_SCALARS = st.one_of(
    st.integers(min_value=2**63 - 2, max_value=2**80),
    st.integers(min_value=-(2**80), max_value=-(2**63) + 1),
    st.integers(min_value=-3, max_value=3),
    st.sampled_from(HOSTILE_TEXT),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([2.9, 1e308, -0.0]),
    st.none(),
    st.booleans(),
    st.text(max_size=30),
)
HOSTILE = st.recursive(
    HOSTILE_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)


# --- Data the requests name -----------------------------------------------------------------------


def refuse_nul(execute, sql, params, many, context):
    """PostgreSQL refuses a NUL character in text and jsonb (a 500 there), SQLite stores it:
    fail here on what would reach PostgreSQL."""
    for value in (p for group in (params or []) for p in (group if many else [group])):
        # The character itself in text, or JSON's escape of it in a jsonb value.
        nul = isinstance(value, str) and ("\x00" in value or re.search(r"(?<!\\)\\u0000", value))
        assert not nul, f"a NUL character reached the database: {sql} {params}"
    return execute(sql, params, many, context)


@pytest.fixture
def world(make_user):
    """The sandbox demo, one execution of it, and a client signed in as a user in every role;
    every query checked for NUL characters (refuse_nul)."""
    with time_machine.travel(START, tick=False), connection.execute_wrapper(refuse_nul):
        seeded = sandbox_seed(servers=3, with_actions=True)
        execution = execution_start(plan=seeded.plan, mode="DRILL", requested_by=None)
        roles_sync()
        user = make_user("everyone")
        user.groups.set(Group.objects.all())
        client = Client()
        client.force_login(user)
        yield {"client": client, "execution": execution, "plan": seeded.plan}


# Ids of the seeded objects (every table counts from 1): drawn as plain numbers, because the
# rows change between examples (a DELETE succeeds) while hypothesis needs its draws repeatable.
IDS = list(range(1, 9))


# --- (a) the API's write operations -------------------------------------------------------------


def write_operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            if method in ("post", "put", "patch", "delete") and path.startswith("/api/v1/"):
                content = operation.get("requestBody", {}).get("content", {})
                body = content.get("application/json", {}).get("schema")
                operations.append((method, path, body))
    return schema, sorted(operations, key=lambda op: (op[1], op[0]))


SCHEMA, WRITE_OPERATIONS = write_operations()


def resolve(schema):
    while "$ref" in schema:
        schema = SCHEMA["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    for combined in ("allOf", "oneOf", "anyOf"):
        if combined in schema:
            return resolve(schema[combined][0])
    return schema


def shaped(schema, ids, depth=0):
    """A value of the schema's shape, or (one time in five) a hostile one in its place: most
    bodies are valid but for a field or two, so the hostile value reaches the code behind the
    first check."""
    valid = valid_shape(resolve(schema or {}), ids, depth)
    return st.one_of(valid, valid, valid, valid, HOSTILE if depth < 2 else HOSTILE_SCALARS)


def valid_shape(schema, ids, depth):
    kind = schema.get("type")
    if depth > 3:
        return HOSTILE_SCALARS
    if kind == "object" or "properties" in schema:
        properties = {name: shaped(sub, ids, depth + 1) for name, sub in schema.get("properties", {}).items()}
        return st.fixed_dictionaries({}, optional=properties)
    if kind == "array":
        return st.lists(shaped(schema.get("items", {}), ids, depth + 1), max_size=3)
    if "enum" in schema:
        return st.sampled_from([v for v in schema["enum"] if v is not None] or [None])
    if kind == "integer":
        return st.one_of(st.sampled_from(ids), st.integers(min_value=0, max_value=2000))
    if kind == "boolean":
        return st.booleans()
    if kind == "string" and schema.get("format") == "date-time":
        return st.sampled_from(["2026-03-02T08:00:00Z", "2026-03-02T08:55:00+00:00", "2026-03-02T08:00:00"])
    if kind == "string" and schema.get("format") == "uuid":
        return st.uuids().map(str)
    return st.text(max_size=40)


@FUZZ
@given(data=st.data(), operation=st.sampled_from(WRITE_OPERATIONS))
def test_no_write_to_the_api_answers_5xx(world, data, operation):
    method, path, body_schema = operation
    ids = IDS
    execution_ids = [str(world["execution"].pk), "00000000-0000-0000-0000-000000000000"]

    def fill(match):
        if match.group(1) == "id" and "/executions/" in path:
            return data.draw(st.one_of(st.sampled_from(execution_ids), st.sampled_from(HOSTILE_TEXT[:13])))
        return str(data.draw(st.one_of(st.sampled_from(ids), st.sampled_from(HOSTILE_TEXT[:13]))))

    url = re.sub(r"\{(\w+)\}", fill, path)
    body = data.draw(shaped(body_schema, ids)) if body_schema else data.draw(st.one_of(st.none(), HOSTILE))
    with time_machine.travel(START, tick=False):
        response = getattr(world["client"], method)(url, json.dumps(body), content_type="application/json")
    assert response.status_code < 500, (method, url, body, response.content[:500])


def test_the_write_operations_are_read_from_the_schema():
    """A sanity check that the fuzz test above covers every kind of write, so an empty list
    (e.g. a broken schema) cannot pass it vacuously."""
    methods = {method for method, _, _ in WRITE_OPERATIONS}
    assert methods == {"post", "put", "patch", "delete"}
    assert any(path.endswith("/execute/") for _, path, _ in WRITE_OPERATIONS)


# --- (b) the pages' query parameters ------------------------------------------------------------


def page_routes(resolver=None, prefix=""):
    """(route text, converters) of every page: not the API, the admin, the auth views."""
    routes = []
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if route.startswith(("api/", "admin/", "accounts/login", "accounts/logout", "accounts/password", "metrics")):
            continue
        if isinstance(entry, URLResolver):
            routes += page_routes(entry, route)
        elif isinstance(entry, URLPattern):
            routes.append(route)
    return sorted(set(routes))


PAGE_ROUTES = page_routes()


def filterset_parameters():
    names = set()
    for module in (plan_filtersets, execution_filtersets):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, django_filters.FilterSet) and cls.__module__ == module.__name__:
                for name, flt in cls.base_filters.items():
                    names.add(name)
                    if isinstance(flt, django_filters.RangeFilter | django_filters.DateFromToRangeFilter):
                        names.update({f"{name}_after", f"{name}_before", f"{name}_min", f"{name}_max"})
    return sorted(names)


# The parameters views read themselves (the htmx endpoints, pagination, redirects).
VIEW_PARAMETERS = ["page", "target", "group", "servers", "q", "tag_selector", "next", "wave", "format", "row",
                   "add_action", "remove"]
PARAMETERS = sorted(set(filterset_parameters()) | set(VIEW_PARAMETERS))


def page_url(route, world, ids, draw):
    """The route with a valid id in each of its parameters (the execution's UUID for a uuid)."""

    def fill(match):
        if match.group(1) == "uuid":
            return str(world["execution"].pk)
        return str(draw(st.sampled_from(ids)))

    return "/" + re.sub(r"<(?:(\w+):)?\w+>", fill, route)


# Parameters naming an object or a number get a valid one most of the time, so that the hostile
# value of another parameter (a search, a tag selector, a date) reaches the code behind it.
NUMBER_PARAMETERS = {"target", "group", "servers", "plan", "page", "wave", "wave_index", "lag_above_seconds"}
HOSTILE_QUERY_VALUES = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=20), st.integers().map(str))
VALID_NUMBERS = st.sampled_from([str(n) for n in IDS])
# Every known parameter, each left out now and then (None), so that a page's related ones meet,
# then a few random ones.
QUERIES = st.tuples(
    st.fixed_dictionaries(
        {
            name: st.one_of(st.none(), VALID_NUMBERS, VALID_NUMBERS, VALID_NUMBERS, HOSTILE_QUERY_VALUES)
            if name in NUMBER_PARAMETERS
            else st.one_of(st.none(), HOSTILE_QUERY_VALUES)
            for name in PARAMETERS
        },
    ),
    st.lists(st.tuples(st.text(min_size=1, max_size=10), HOSTILE_QUERY_VALUES), max_size=2),
)
PAGE_FUZZ = settings(FUZZ, max_examples=max(1, FUZZ.max_examples // 12))


@pytest.mark.parametrize("route", PAGE_ROUTES)
@PAGE_FUZZ
@given(data=st.data(), query=QUERIES, htmx=st.booleans())
def test_no_page_answers_5xx_whatever_its_query_string(world, route, data, query, htmx):
    url = page_url(route, world, IDS, data.draw)
    known, extra = query
    query_string = urlencode([*((name, value) for name, value in known.items() if value is not None), *extra])
    with time_machine.travel(START, tick=False):
        response = world["client"].get(f"{url}?{query_string}", headers={"HX-Request": "true"} if htmx else {})
    assert response.status_code < 500, (url, query_string, response.content[:500])


def test_every_page_route_is_fuzzed_with_its_parameters():
    """The route and parameter lists the fuzz test draws from are the real ones."""
    assert "groups/server-picker/" in PAGE_ROUTES and "groups/tag-preview/" in PAGE_ROUTES
    assert any("<uuid:pk>" in route for route in PAGE_ROUTES)
    assert {"target", "replication_state", "status", "page", "tag_selector"} <= set(PARAMETERS)
