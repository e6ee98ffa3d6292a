"""`sandbox configure --disconnect`: replication DISCONNECTED, no new snapshots, the lag grows,
and DRS still launches the servers from the snapshots it holds."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from drsorch.sandbox.protocol import iso
from drsorch.sandbox.services import (
    sandbox_configure,
    sandbox_server_create,
    sandbox_server_update,
    sandbox_status,
)
from tests.sandbox.conftest import START, job, start

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def replication(drs_client):
    """(state, lagDuration) of every source server, by hostname."""
    return {
        s["sourceProperties"]["identificationHints"]["hostname"]: (
            s["dataReplicationInfo"]["dataReplicationState"],
            s["dataReplicationInfo"]["lagDuration"],
        )
        for s in drs_client.describe_source_servers()["items"]
    }


def events(drs_client, job_id):
    return [
        (i["event"], i.get("eventData", {}).get("sourceServerID"))
        for i in drs_client.describe_job_log_items(jobID=job_id)["items"]
    ]


def test_disconnected_server_shows_disconnected_and_its_lag_grows(drs_client, sandbox_servers, clock):
    assert replication(drs_client)["db-01"] == ("CONTINUOUS", "PT5S")
    sandbox_configure(disconnect=["db-01"])
    assert replication(drs_client)["db-01"] == ("DISCONNECTED", "PT5S")
    clock.shift(600)
    states = replication(drs_client)
    assert states["db-01"] == ("DISCONNECTED", "PT10M5S")  # the lag it had plus the time since
    assert states["web-01"] == ("CONTINUOUS", "PT5S")
    db = next(
        s for s in drs_client.describe_source_servers()["items"] if s["sourceServerID"] == sandbox_servers[0].drs_id
    )
    assert db["lifeCycle"]["lastSeenByServiceDateTime"] == iso(START)


def test_disconnected_server_launches_from_its_latest_snapshot(drs_client, sandbox_servers, clock, launch_seconds):
    db, _, web = sandbox_servers
    sandbox_configure(disconnect=[db.drs_id])
    clock.shift(300)
    started = start(drs_client, [db, web], isDrill=True)
    clock.shift(60)
    assert job(drs_client, started["jobID"])["status"] == "COMPLETED"
    log = events(drs_client, started["jobID"])
    assert ("USING_PREVIOUS_SNAPSHOT", db.drs_id) in log
    assert ("SNAPSHOT_START", db.drs_id) not in log and ("SNAPSHOT_END", db.drs_id) not in log
    assert ("SNAPSHOT_START", web.drs_id) in log  # still replicating: a fresh snapshot
    instances = {i["sourceServerID"]: i for i in drs_client.describe_recovery_instances()["items"]}
    # Its last snapshot is the one of the 10-minute grid at its disconnection (START).
    assert instances[db.drs_id]["pointInTimeSnapshotDateTime"] == iso(START)
    assert instances[web.drs_id]["pointInTimeSnapshotDateTime"] > iso(START + timedelta(seconds=300))
    # No new snapshot was taken of the disconnected server.
    snapshots = drs_client.describe_recovery_snapshots(sourceServerID=db.drs_id, order="DESC")["items"]
    assert snapshots[0]["timestamp"] == iso(START)
    clock.shift(3600)
    later = drs_client.describe_recovery_snapshots(sourceServerID=db.drs_id, order="DESC")["items"]
    assert later[0]["timestamp"] == iso(START)


def test_disconnected_server_without_snapshots_fails_to_launch(drs_client, sandbox_target, clock, launch_seconds):
    bare = sandbox_server_create(
        account_id=sandbox_target.account_id, region=sandbox_target.region, hostname="bare-01", snapshots=0
    )
    sandbox_configure(disconnect=["bare-01"])
    started = drs_client.start_recovery(sourceServers=[{"sourceServerID": bare.source_server_id}], isDrill=True)["job"]
    clock.shift(60)
    record = job(drs_client, started["jobID"])
    assert [s["launchStatus"] for s in record["participatingServers"]] == ["FAILED"]
    items = drs_client.describe_job_log_items(jobID=started["jobID"])["items"]
    failed = [i for i in items if i["event"] == "USING_PREVIOUS_SNAPSHOT_FAILED"]
    assert failed and "no recovery snapshot" in failed[0]["eventData"]["rawError"]
    assert drs_client.describe_recovery_instances()["items"] == []


def test_disconnect_replaces_the_list_and_clear_reconnects(drs_client, sandbox_servers, clock):
    sandbox_configure(disconnect=["db-01", "web-01.corp.example.com"])
    assert {h for h, (state, _) in replication(drs_client).items() if state == "DISCONNECTED"} == {"db-01", "web-01"}
    clock.shift(60)
    sandbox_configure(disconnect=["db-01"])
    states = replication(drs_client)
    assert states["db-01"] == ("DISCONNECTED", "PT1M5S")  # still disconnected since the first time
    assert states["web-01"] == ("CONTINUOUS", "PT5S")
    sandbox_configure(launch_seconds=5)  # other switches leave it as it is
    assert replication(drs_client)["db-01"][0] == "DISCONNECTED"
    sandbox_configure(clear=True)
    assert {state for state, _ in replication(drs_client).values()} == {"CONTINUOUS"}


def test_disconnect_of_an_unknown_server_is_invalid(sandbox_servers):
    with pytest.raises(ValidationError) as caught:
        sandbox_configure(disconnect=["db-01", "nope-99"])
    assert "nope-99" in caught.value.message_dict["disconnect"][0]
    assert "db-01" not in caught.value.message_dict["disconnect"][0]
    assert [s["replication_state"] for s in sandbox_status()["servers"]] == ["CONTINUOUS"] * 3


def test_server_update_to_disconnected_behaves_the_same(drs_client, sandbox_servers, clock, launch_seconds):
    db = sandbox_servers[0]
    sandbox_server_update(source_server_id=db.drs_id, replication_state="DISCONNECTED")
    clock.shift(120)
    assert replication(drs_client)["db-01"] == ("DISCONNECTED", "PT2M5S")
    started = start(drs_client, [db], isDrill=True)
    clock.shift(60)
    assert ("USING_PREVIOUS_SNAPSHOT", db.drs_id) in events(drs_client, started["jobID"])
    sandbox_configure(clear=True)  # configure does not reconnect what sandbox_server_update disconnected
    assert replication(drs_client)["db-01"][0] == "DISCONNECTED"
    sandbox_server_update(source_server_id=db.drs_id, replication_state="CONTINUOUS")
    assert replication(drs_client)["db-01"] == ("CONTINUOUS", "PT5S")


def test_status_shows_the_replication_state(sandbox_servers):
    sandbox_configure(disconnect=["web-01"])
    states = {s["hostname"]: s["replication_state"] for s in sandbox_status()["servers"]}
    assert states == {"db-01": "CONTINUOUS", "app-01": "CONTINUOUS", "web-01": "DISCONNECTED"}
