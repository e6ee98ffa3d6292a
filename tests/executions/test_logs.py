"""DRSORCH_LOG_FORMAT=json: one JSON object a line, engine lines with execution and wave ids;
the drill command prints progress, not INFO logging, unless -v 2."""

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from pythonjsonlogger.json import JsonFormatter

from drsorch import logs
from drsorch.sandbox.services import sandbox_configure
from executions import cli
from executions.services import execution_start

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_lines():
    """Every log record of the run, formatted as DRSORCH_LOG_FORMAT=json formats it."""
    stream = io.StringIO()
    config = logs.logging_config(log_format="json", level="INFO")["formatters"]["json"]
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        JsonFormatter(config["fmt"], rename_fields=config["rename_fields"], timestamp=config["timestamp"])
    )
    handler.addFilter(logs.ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def test_engine_lines_are_json_objects_with_execution_and_wave_ids(
    json_lines, clock, drive, make_plan, django_capture_on_commit_callbacks
):
    sandbox_configure(launch_seconds=5)
    plan = make_plan("Logged", [("Database", ["db-01"], {}), ("Web", ["web-01"], {})])
    with django_capture_on_commit_callbacks(execute=True):
        execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    with django_capture_on_commit_callbacks(execute=True):
        drive(execution)

    lines = json_lines()
    assert lines and all(
        {"time", "level", "logger", "message", "execution_id", "wave_id"} <= set(line) for line in lines
    )
    ours = [line for line in lines if line["execution_id"] == str(execution.pk)]
    wave_ids = {str(pk) for pk in execution.wave_runs.values_list("pk", flat=True)}
    assert {line["wave_id"] for line in ours if line["wave_id"]} == wave_ids
    assert any(line["message"].endswith("RUNNING -> SUCCEEDED") and line["wave_id"] is None for line in ours)


def test_a_tick_of_one_execution_binds_its_id_to_every_line(json_lines, clock, make_plan):
    from executions import engine

    plan = make_plan("Bound", [("All", ["b-01"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    engine.tick(execution_ids=[execution.pk])  # launches
    sandbox_configure(throttle_rate=1.0)  # then the poll is throttled: the engine logs it
    clock.shift(5)
    engine.tick(execution_ids=[execution.pk])
    logging.getLogger("elsewhere").info("outside any tick")

    lines = json_lines()
    inside = [line for line in lines if line["logger"].startswith(("executions", "drsorch"))]
    assert inside and all(line["execution_id"] == str(execution.pk) for line in inside)
    assert [line["execution_id"] for line in lines if line["logger"] == "elsewhere"] == [None]


def test_log_format_setting_json_configures_the_process(tmp_path):
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('executions.engine').warning('hello', extra={'execution_id': 'e-1'})"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "drsorch.test_settings",
        "DRSORCH_LOG_FORMAT": "json",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert line["message"] == "hello" and line["level"] == "WARNING" and line["logger"] == "executions.engine"
    assert line["execution_id"] == "e-1" and line["wave_id"] is None


def test_an_unknown_log_format_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="DRSORCH_LOG_FORMAT must be 'text' or 'json', not 'xml'"):
        logs.logging_config(log_format="xml", level="INFO")


# Transactional: status changes are logged on commit, as in a real command.
@pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)
@pytest.mark.parametrize(("verbosity", "info_logged"), [(1, False), (2, True)])
def test_drill_prints_progress_and_logs_info_only_with_verbosity_2(
    caplog, clock, monkeypatch, make_plan, verbosity, info_logged
):
    make_plan("Quiet", [("All", ["quiet-01"], {})])
    # Every other DRS call throttled: the engine and the gateway log it at INFO.
    sandbox_configure(launch_seconds=5, throttle_rate=0.5)
    monkeypatch.setattr(cli, "sleep", clock.shift)
    out = io.StringIO()
    caplog.clear()
    call_command("drill", "Quiet", "--wait", f"--verbosity={verbosity}", stdout=out, stderr=io.StringIO())

    assert "Execution SUCCEEDED" in out.getvalue()
    info = [r for r in caplog.records if r.levelno == logging.INFO]
    assert bool(info) is info_logged
    if info_logged:
        assert {"executions.status", "drsorch.drs.gateway"} <= {r.name for r in info}
    assert logging.getLogger().level == logging.INFO  # restored after the command
