"""The crash hook, and that the simulated DRS keeps what it did whatever the caller does."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction

from drsorch.sandbox.models import SandboxJob, SandboxSettings
from drsorch.sandbox.services import sandbox_configure, sandbox_status
from tests.sandbox.conftest import start

MULTI_DB = pytest.mark.django_db(databases=["default", "sandbox"])


@MULTI_DB
def test_crash_after_start_recovery_records_the_job_then_crashes_once(drs_client, sandbox_servers, sandbox_crash):
    sandbox_configure(crash_after_start_recovery=True)
    with pytest.raises(sandbox_crash):
        start(drs_client, sandbox_servers[:1], isDrill=True, tags={"launch-token": "tok-1"})
    recorded = SandboxJob.objects.get()
    assert recorded.tags == {"launch-token": "tok-1"}
    assert SandboxSettings.load().crash_after_start_recovery is False
    # One-shot: the next call answers normally, and the engine can adopt the job by its tag.
    start(drs_client, sandbox_servers[1:2], isDrill=True)
    adopted = [j for j in drs_client.describe_jobs()["items"] if j["tags"].get("launch-token") == "tok-1"]
    assert [j["jobID"] for j in adopted] == [recorded.job_id]


@pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)
def test_callers_rollback_does_not_undo_what_aws_did(drs_client, sandbox_servers):
    with pytest.raises(RuntimeError), transaction.atomic():
        started = start(drs_client, sandbox_servers[:1], isDrill=True)
        raise RuntimeError("the caller fails after StartRecovery")
    assert SandboxJob.objects.filter(job_id=started["jobID"]).exists()
    assert drs_client.describe_jobs()["items"][0]["jobID"] == started["jobID"]


@pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)
def test_crash_inside_callers_transaction_keeps_the_job(drs_client, sandbox_servers, sandbox_crash):
    sandbox_configure(crash_after_start_recovery=True)
    with pytest.raises(sandbox_crash), transaction.atomic():
        start(drs_client, sandbox_servers[:1], isDrill=True)
    assert sandbox_status()["jobs"][0]["source_server_ids"] == [sandbox_servers[0].drs_id]


SNIPPET = """
from drsorch.aws import client_for
from plans.models import Target
target = Target.objects.get(name="Sandbox")
servers = [{"sourceServerID": s.drs_id} for s in target.source_servers.order_by("hostname")[:2]]
client_for(target, "drs").start_recovery(sourceServers=servers, isDrill=True, tags={"launch-token": "crash-1"})
print("STILL ALIVE")
"""


def test_real_crash_exits_137_after_the_job_is_recorded(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "drsorch.settings",
    }
    env.pop("DRSORCH_SANDBOX_DATABASE_URL", None)
    manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]

    def run(*args):
        return subprocess.run([*manage, *args], env=env, capture_output=True, text=True, timeout=120)

    for args in (
        ["migrate"],
        ["migrate", "--database", "sandbox"],
        ["sandbox", "seed", "--servers", "3"],
        ["sandbox", "configure", "--crash-after-start-recovery"],
    ):
        done = run(*args)
        assert done.returncode == 0, done.stderr

    crashed = run("shell", "-c", SNIPPET)
    assert crashed.returncode == 137, crashed.stderr
    assert "STILL ALIVE" not in crashed.stdout

    status = json.loads(run("sandbox", "status", "--json").stdout)
    assert len(status["jobs"]) == 1
    assert status["jobs"][0]["tags"] == {"launch-token": "crash-1"}
    assert len(status["jobs"][0]["source_server_ids"]) == 2
    assert sum(s["launch_count"] for s in status["servers"]) == 2
    assert (tmp_path / "db-sandbox.sqlite3").exists()
