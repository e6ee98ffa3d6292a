"""The point-in-time snapshot history of the simulated DRS: its retention, DescribeRecoverySnapshots'
filters, order and pagination, and StartRecovery from a chosen snapshot."""

from datetime import timedelta

import pytest

from drsorch.sandbox.protocol import iso
from drsorch.sandbox.services import sandbox_configure
from tests.sandbox.conftest import START, job, start

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def stamps(drs_client, server, **kwargs):
    """The timestamps of a server's snapshots, as the API answers them (every page)."""
    pages = drs_client.get_paginator("describe_recovery_snapshots").paginate(sourceServerID=server.drs_id, **kwargs)
    return [item["timestamp"] for page in pages for item in page["items"]]


def test_history_is_every_10_minutes_then_hourly_then_daily(drs_client, sandbox_servers, clock):
    db = sandbox_servers[0]
    held = stamps(drs_client, db)
    ten_minutes = [iso(START - timedelta(minutes=10 * n)) for n in range(6)]
    hourly = [iso(START - timedelta(hours=n)) for n in range(24)]
    daily = [iso(START.replace(hour=0) - timedelta(days=n)) for n in range(7)]
    assert held == sorted(set(ten_minutes + hourly + daily))
    assert iso(START - timedelta(minutes=70)) not in held  # older than an hour: only hourly ones

    clock.shift(2 * 3600)
    later = stamps(drs_client, db)
    assert iso(START + timedelta(hours=2)) == later[-1]
    assert iso(START + timedelta(minutes=70)) in later  # within the last hour
    assert iso(START - timedelta(minutes=10)) not in later  # thinned out: now over an hour old
    assert iso(START - timedelta(hours=1)) in later  # but its hour stays
    assert iso(START - timedelta(days=6, hours=9)) in later  # and the daily ones


def test_filters_order_and_pagination(drs_client, sandbox_servers, clock):
    db = sandbox_servers[0]
    every = stamps(drs_client, db)
    low, high = START - timedelta(hours=3), START - timedelta(minutes=20)
    window = stamps(drs_client, db, filters={"fromDateTime": iso(low), "toDateTime": iso(high)})
    assert window == [s for s in every if iso(low) <= s <= iso(high)]
    assert window[0] == iso(low) and window[-1] == iso(high)  # both bounds inclusive
    assert stamps(drs_client, db, order="DESC") == every[::-1]

    # The engine's question: the latest snapshot at or before a point.
    point = START - timedelta(minutes=95)
    latest = drs_client.describe_recovery_snapshots(
        sourceServerID=db.drs_id, filters={"toDateTime": iso(point)}, order="DESC", maxResults=1
    )
    assert [i["timestamp"] for i in latest["items"]] == [iso(START - timedelta(hours=2))]
    assert latest["nextToken"]

    first = drs_client.describe_recovery_snapshots(sourceServerID=db.drs_id, maxResults=10)
    second = drs_client.describe_recovery_snapshots(
        sourceServerID=db.drs_id, maxResults=10, nextToken=first["nextToken"]
    )
    assert [i["timestamp"] for i in first["items"] + second["items"]] == every[:20]
    assert stamps(drs_client, db, PaginationConfig={"PageSize": 4}) == every
    # Snapshot IDs are stable from one read to the next.
    again = drs_client.describe_recovery_snapshots(sourceServerID=db.drs_id, maxResults=10)
    assert [i["snapshotID"] for i in again["items"]] == [i["snapshotID"] for i in first["items"]]

    with pytest.raises(drs_client.exceptions.ValidationException):
        drs_client.describe_recovery_snapshots(sourceServerID=db.drs_id, order="SIDEWAYS")
    with pytest.raises(drs_client.exceptions.ValidationException):
        drs_client.describe_recovery_snapshots(
            sourceServerID=db.drs_id, filters={"fromDateTime": iso(high), "toDateTime": iso(low)}
        )


def test_disconnected_server_takes_no_new_snapshots(drs_client, sandbox_servers, clock):
    db, app, _web = sandbox_servers
    clock.shift(300)
    sandbox_configure(disconnect=[db.drs_id])
    clock.shift(3600)
    assert stamps(drs_client, db)[-1] == iso(START)
    assert stamps(drs_client, app)[-1] == iso(START + timedelta(hours=1, minutes=0))


def test_launch_from_a_chosen_snapshot(drs_client, sandbox_servers, clock, launch_seconds):
    db, app, _web = sandbox_servers
    items = drs_client.describe_recovery_snapshots(sourceServerID=db.drs_id)["items"]
    chosen = items[3]
    started = drs_client.start_recovery(
        sourceServers=[{"sourceServerID": db.drs_id, "recoverySnapshotID": chosen["snapshotID"]}], isDrill=True
    )["job"]
    clock.shift(60)
    assert job(drs_client, started["jobID"])["status"] == "COMPLETED"
    events = [i["event"] for i in drs_client.describe_job_log_items(jobID=started["jobID"])["items"]]
    assert "USING_PREVIOUS_SNAPSHOT" in events and "SNAPSHOT_START" not in events
    instance = drs_client.describe_recovery_instances(filters={"sourceServerIDs": [db.drs_id]})["items"][0]
    assert instance["pointInTimeSnapshotDateTime"] == chosen["timestamp"]
    # Launching from it kept it once, under the same ID; a launch without one takes a fresh snapshot.
    ids = [i["snapshotID"] for i in drs_client.describe_recovery_snapshots(sourceServerID=db.drs_id)["items"]]
    assert ids.count(chosen["snapshotID"]) == 1 and len(ids) == len(items)
    start(drs_client, [db], isDrill=True)
    clock.shift(60)
    assert len(drs_client.describe_recovery_snapshots(sourceServerID=db.drs_id)["items"]) == len(items) + 1

    # Another server's snapshot, or one DRS never took: refused, nothing launched.
    for wrong in (chosen["snapshotID"], "pit-00000000000000000"):
        with pytest.raises(drs_client.exceptions.ValidationException, match="not a snapshot of source server"):
            drs_client.start_recovery(sourceServers=[{"sourceServerID": app.drs_id, "recoverySnapshotID": wrong}])
    assert drs_client.describe_recovery_instances(filters={"sourceServerIDs": [app.drs_id]})["items"] == []
