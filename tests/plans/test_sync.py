"""Inventory sync from DRS (through the sandbox), the sync task and the sync_servers command."""

import logging
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from drsorch.drs.times import parse_duration_seconds
from drsorch.sandbox.models import SandboxSourceServer
from drsorch.sandbox.services import (
    sandbox_configure,
    sandbox_server_update,
    sandbox_servers_create,
    sandbox_set_region_initialized,
)
from plans import tasks
from plans.models import SourceServer, Target
from plans.services import source_servers_sync

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def simulate(target, *hostnames, **options):
    return sandbox_servers_create(
        account_id=target.account_id,
        region=target.region,
        specs=[{"hostname": h, **options} for h in hostnames],
        snapshots=0,
    )


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("PT5S", 5),
        ("PT5M30S", 330),
        ("PT1H", 3600),
        ("P1DT2H", 93600),
        ("PT0.5S", 0),
        ("PT0S", 0),
        ("", None),
        (None, None),
        ("5 minutes", None),
        ("P", None),
        ("PT", None),
    ],
)
def test_parse_iso_duration(value, seconds):
    assert parse_duration_seconds(value) == seconds


def test_sync_creates_servers_with_their_drs_fields(sandbox_target):
    (simulated,) = simulate(
        sandbox_target, "db-01", tags={"Tier": "db"}, lag_seconds=95, recommended_instance_type="r5.large"
    )
    result = source_servers_sync(target=sandbox_target)
    assert (result.created, result.updated, result.missing) == (1, 0, 0)
    server = SourceServer.objects.get(target=sandbox_target)
    assert server.drs_id == simulated.source_server_id
    assert server.arn == simulated.arn
    assert server.hostname == "db-01"
    assert server.tags == {"Tier": "db"}
    assert server.replication_state == "CONTINUOUS"
    assert server.lag_seconds == 95
    assert server.recommended_instance_type == "r5.large"
    assert server.os_name == "Ubuntu 22.04.4 LTS"
    assert server.last_seen_at is not None and server.synced_at is not None
    assert server.in_drs is True
    assert server.raw["sourceServerID"] == simulated.source_server_id


def test_sync_updates_and_keeps_servers_drs_no_longer_reports(sandbox_target):
    kept, changed, gone = simulate(sandbox_target, "app-01", "app-02", "app-03")
    source_servers_sync(target=sandbox_target)
    sandbox_server_update(source_server_id=changed.source_server_id, replication_state="STALLED", lag_seconds=900)
    SandboxSourceServer.objects.filter(pk=gone.pk).delete()

    result = source_servers_sync(target=sandbox_target)
    assert (result.created, result.updated, result.missing) == (0, 2, 1)
    servers = {s.drs_id: s for s in SourceServer.objects.filter(target=sandbox_target)}
    assert servers[changed.source_server_id].replication_state == "STALLED"
    assert servers[changed.source_server_id].lag_seconds == 900
    assert servers[gone.source_server_id].in_drs is False
    assert servers[kept.source_server_id].in_drs is True
    # Missing servers are counted once, not at every sync.
    assert source_servers_sync(target=sandbox_target).missing == 0


def test_hostname_falls_back_to_the_fqdn(sandbox_target):
    (simulated,) = simulate(sandbox_target, "web-01")
    sandbox_server_update(source_server_id=simulated.source_server_id, hostname="")
    source_servers_sync(target=sandbox_target)
    assert SourceServer.objects.get().hostname == "web-01.corp.example.com"


def test_servers_of_other_regions_are_not_synced(sandbox_target):
    simulate(sandbox_target, "here-01")
    sandbox_servers_create(
        account_id=sandbox_target.account_id, region="eu-west-1", specs=[{"hostname": "elsewhere-01"}], snapshots=0
    )
    source_servers_sync(target=sandbox_target)
    assert list(SourceServer.objects.values_list("hostname", flat=True)) == ["here-01"]


def test_uninitialized_region_means_no_servers(sandbox_target, caplog):
    simulate(sandbox_target, "db-01", "db-02")
    source_servers_sync(target=sandbox_target)
    sandbox_set_region_initialized(
        account_id=sandbox_target.account_id, region=sandbox_target.region, initialized=False
    )
    with caplog.at_level(logging.INFO, logger="plans.services"):
        result = source_servers_sync(target=sandbox_target)
    assert result.uninitialized and result.missing == 2
    assert not SourceServer.objects.filter(in_drs=True).exists()
    assert SourceServer.objects.count() == 2
    assert "not initialized" in caplog.text


def test_sync_reads_every_page_with_bulk_queries(sandbox_target, django_assert_max_num_queries):
    # More servers than one DescribeSourceServers page (200). SQLite caps the parameters of
    # one statement, so bulk writes come in batches: a few queries, not one per server.
    simulate(sandbox_target, *[f"host-{n:04d}" for n in range(430)])
    with django_assert_max_num_queries(15, using="default"):
        result = source_servers_sync(target=sandbox_target)
    assert result.created == 430
    simulate(sandbox_target, "host-new")
    with django_assert_max_num_queries(25, using="default"):
        result = source_servers_sync(target=sandbox_target)
    assert (result.created, result.updated) == (1, 430)


def test_sync_inventory_task_survives_a_failing_target(sandbox_target, monkeypatch, caplog):
    other = Target.objects.create(name="A broken target", kind="sandbox", account_id="210987654321", region="us-east-1")
    simulate(sandbox_target, "db-01")
    real_sync = tasks.source_servers_sync

    def sync(*, target):
        if target == other:
            raise RuntimeError("AccessDenied")
        return real_sync(target=target)

    monkeypatch.setattr(tasks, "source_servers_sync", sync)
    assert tasks.sync_inventory() == 1
    assert SourceServer.objects.filter(target=sandbox_target).count() == 1
    assert "A broken target" in caplog.text


def test_sync_servers_command(sandbox_target):
    simulate(sandbox_target, "db-01")
    out = StringIO()
    call_command("sync_servers", "--target", sandbox_target.name, stdout=out)
    assert "1 new" in out.getvalue()
    call_command("sync_servers", stdout=out)
    assert "1 updated" in out.getvalue()


def test_sync_servers_names_an_unknown_target(sandbox_target):
    with pytest.raises(CommandError, match="Unknown target 'Nowhere'") as refused:
        call_command("sync_servers", "--target", "Nowhere")
    assert refused.value.returncode == 2


# --- throttling ----------------------------------------------------------------------------------


def test_sync_under_throttling_retries_each_throttled_page(sandbox_target, read_retry_pauses):
    # Three pages, every other DRS call throttled: restarting the listing would never end.
    simulate(sandbox_target, *[f"host-{n:04d}" for n in range(430)])
    sandbox_configure(throttle_rate=0.5)
    result = source_servers_sync(target=sandbox_target)
    assert result.created == 430
    assert read_retry_pauses  # it was throttled, and paused instead of failing


def test_sync_servers_command_under_lasting_throttling_exits_1_with_one_line(sandbox_target, read_retry_pauses):
    simulate(sandbox_target, "db-01")
    sandbox_configure(throttle_rate=1.0)
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("sync_servers", stdout=out, stderr=err)
    assert exited.value.code == 1
    assert err.getvalue() == (
        f"{sandbox_target.name}: sync failed, DRS could not be read: ThrottlingException: Rate exceeded\n"
    )
    assert "Traceback" not in err.getvalue() + out.getvalue()
    assert len(read_retry_pauses) == 4 and read_retry_pauses == sorted(read_retry_pauses)  # backing off


def test_sync_inventory_task_logs_a_throttled_target_and_moves_on(sandbox_target, caplog):
    simulate(sandbox_target, "db-01")
    sandbox_configure(throttle_rate=1.0)
    assert tasks.sync_inventory() == 0
    assert f"Inventory sync of target {sandbox_target.name} failed: ThrottlingException: Rate exceeded" in caplog.text
    assert "Traceback" not in caplog.text
