"""The engine's bulk statements write exactly what Model.save writes (rows._saver)."""

import datetime as dt
import uuid

import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from executions.engine.rows import _saver
from executions.models import DrsJob, Execution, ExecutionEvent, LaunchAttempt, ServerLaunch, WaveRun

MODELS = [DrsJob, Execution, ExecutionEvent, LaunchAttempt, ServerLaunch, WaveRun]
FIELDS = [field for model in MODELS for field in model._meta.concrete_fields]

aware = st.datetimes(
    min_value=dt.datetime(1970, 1, 2),
    max_value=dt.datetime(2100, 1, 1),
    timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-5))]),
)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    aware,
    st.uuids(),
)
fitting = {
    "CharField": st.text(max_size=20),
    "TextField": st.text(max_size=20),
    "DateTimeField": aware,
    "BooleanField": st.booleans(),
    "FloatField": st.floats(allow_nan=False, allow_infinity=False),
    "UUIDField": st.uuids(),
    "JSONField": st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
}


def _internal(field):
    return field.target_field.get_internal_type() if field.is_relation else field.get_internal_type()


def _generic(field, value):
    try:
        return ("ok", repr(field.get_db_prep_save(value, connection=connection)))  # repr: nan == nan
    except Exception as exc:  # the fast path must fail the same way
        return ("error", type(exc))


def _fast(field, value):
    try:
        return ("ok", repr(_saver(field, connection)(value)))
    except Exception as exc:
        return ("error", type(exc))


@pytest.mark.django_db
@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f"{f.model.__name__}.{f.name}")
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_value_is_prepared_as_django_prepares_it(field, data):
    strategy = fitting.get(_internal(field), st.integers(min_value=0, max_value=2**31 - 1))
    value = data.draw(st.one_of(strategy, values))
    assert _fast(field, value) == _generic(field, value)


@pytest.mark.django_db
def test_a_bool_in_an_integer_column_and_a_naive_time_take_djangos_own_path():
    attempts = LaunchAttempt._meta.get_field("launch_status")
    count = ServerLaunch._meta.get_field("attempts")
    started = Execution._meta.get_field("started_at")
    assert _saver(count, connection)(True) == count.get_db_prep_save(True, connection=connection)
    naive = dt.datetime(2026, 1, 2, 3, 4, 5)
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        assert _saver(started, connection)(naive) == started.get_db_prep_save(naive, connection=connection)
    assert _saver(attempts, connection)("LAUNCHED") == "LAUNCHED"
    assert _saver(Execution._meta.pk, connection)(uuid.UUID(int=1)) == Execution._meta.pk.get_db_prep_save(
        uuid.UUID(int=1), connection=connection
    )
