"""DescribeRecoverySnapshots: the snapshots of one source server DRS holds now.

They are the server's periodic history (computed by history.py, thinned out as it ages) and
the snapshots launches took or started from (stored), merged by ID.
"""

from django.utils import timezone

from ..history import history
from ..models import SandboxRecoverySnapshot
from ..protocol import iso, paged, parse_iso, validation_error, with_token
from ..simulation import derived_hex
from .common import _one_server


def server_snapshots(server, now):
    """(snapshot ID, expected timestamp, timestamp) of every snapshot of `server` taken by
    `now`, oldest first: its history and the stored snapshots of its launches. One query."""
    merged = {p.snapshot_id: (p.snapshot_id, p.timestamp, p.timestamp) for p in history(server, now)}
    stored = SandboxRecoverySnapshot.objects.filter(source_server=server, timestamp__lte=now)
    for snapshot_id, expected, taken in stored.values_list("snapshot_id", "expected_timestamp", "timestamp"):
        merged[snapshot_id] = (snapshot_id, expected, taken)
    return sorted(merged.values(), key=lambda row: (row[1], row[0]))


def describe_recovery_snapshots(scope, body):
    """DescribeRecoverySnapshots: the snapshots of one server taken by now, filtered on their
    timestamp (fromDateTime, toDateTime, both inclusive), ASC or DESC, paginated."""
    server = _one_server(scope, body)
    filters = body.get("filters") or {}
    order = body.get("order", "ASC")
    if order not in ("ASC", "DESC"):
        raise validation_error("order must be ASC or DESC.", field="order")
    low = parse_iso(filters["fromDateTime"], field="filters.fromDateTime") if filters.get("fromDateTime") else None
    high = parse_iso(filters["toDateTime"], field="filters.toDateTime") if filters.get("toDateTime") else None
    if low and high and low > high:
        raise validation_error("filters.fromDateTime must not be after filters.toDateTime.", field="filters")
    snapshots = [
        row for row in server_snapshots(server, timezone.now())
        if (low is None or row[2] >= low) and (high is None or row[2] <= high)
    ]
    if order == "DESC":
        snapshots.reverse()
    page, token = paged(snapshots, body)
    items = [
        {
            "snapshotID": snapshot_id,
            "sourceServerID": server.source_server_id,
            "expectedTimestamp": iso(expected),
            "timestamp": iso(taken),
            "ebsSnapshots": ["snap-" + derived_hex(17, snapshot_id)],
        }
        for snapshot_id, expected, taken in page
    ]
    return 200, with_token({"items": items}, token)
