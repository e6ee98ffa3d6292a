"""DescribeRecoverySnapshots: the snapshots of one source server taken by now."""

from django.utils import timezone

from ..models import SandboxRecoverySnapshot
from ..protocol import iso, paged, parse_iso, validation_error, with_token
from ..simulation import derived_hex
from .common import _one_server


def describe_recovery_snapshots(scope, body):
    """DescribeRecoverySnapshots: the snapshots of one server taken by now, ASC or DESC."""
    server = _one_server(scope, body)
    filters = body.get("filters") or {}
    order = body.get("order", "ASC")
    if order not in ("ASC", "DESC"):
        raise validation_error("order must be ASC or DESC.", field="order")
    snapshots = SandboxRecoverySnapshot.objects.filter(source_server=server, timestamp__lte=timezone.now())
    if filters.get("fromDateTime"):
        snapshots = snapshots.filter(timestamp__gte=parse_iso(filters["fromDateTime"], field="filters.fromDateTime"))
    if filters.get("toDateTime"):
        snapshots = snapshots.filter(timestamp__lte=parse_iso(filters["toDateTime"], field="filters.toDateTime"))
    ordering = ["expected_timestamp", "id"] if order == "ASC" else ["-expected_timestamp", "-id"]
    page, token = paged(snapshots.order_by(*ordering), body)
    items = [
        {
            "snapshotID": s.snapshot_id,
            "sourceServerID": server.source_server_id,
            "expectedTimestamp": iso(s.expected_timestamp),
            "timestamp": iso(s.timestamp),
            "ebsSnapshots": ["snap-" + derived_hex(17, s.snapshot_id)],
        }
        for s in page
    ]
    return 200, with_token({"items": items}, token)
