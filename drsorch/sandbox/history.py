"""The point-in-time snapshot history DRS keeps for a replicating source server.

DRS takes a snapshot every 10 minutes and thins them out as they age: every one of the
last hour, one an hour for the last day, one a day for the last week (and always the latest).
The sandbox does not store that history: it is computed from when the server began to be
snapshotted (`snapshots_since`) and when it stopped (`disconnected_at`), so nothing runs in
the background and reading it costs no query. Only the snapshots a launch takes or starts
from are stored (SandboxRecoverySnapshot); a computed snapshot's ID is fixed by its server
and time, so the same snapshot keeps its ID from one read to the next.
"""

import hashlib
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

INTERVAL = timedelta(minutes=10)
# (how far back, one snapshot every): DRS's retention of point-in-time snapshots.
RETENTION = [
    (timedelta(hours=1), INTERVAL),
    (timedelta(days=1), timedelta(hours=1)),
    (timedelta(days=7), timedelta(days=1)),
]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class Point(NamedTuple):
    """One snapshot of the history: its ID and the time it was taken."""

    snapshot_id: str
    timestamp: datetime


def history_snapshot_id(source_server_id: str, moment: datetime) -> str:
    """The ID of the history snapshot of a server taken at `moment`: `pit-` and 17 letters or
    digits derived from both, so it is the same at every read."""
    digest = hashlib.sha256(f"{source_server_id}:{moment.isoformat()}".encode()).digest()
    return "pit-" + "".join(_ALNUM[byte % len(_ALNUM)] for byte in digest[:17])


def floor(moment: datetime, step: timedelta) -> datetime:
    """The latest multiple of `step` (counted from the epoch, UTC) at or before `moment`."""
    return _EPOCH + ((moment - _EPOCH) // step) * step


def history(server, now: datetime) -> list[Point]:
    """The snapshots of `server` DRS still holds at `now`, oldest first. `server` has
    source_server_id, snapshots_since (None: no history) and disconnected_at (no snapshot
    after it)."""
    since = server.snapshots_since
    if since is None:
        return []
    until = min(now, server.disconnected_at) if server.disconnected_at else now
    latest = floor(until, INTERVAL)
    if latest < since:
        return []
    moments = {latest}
    for age, step in RETENTION:
        moment = floor(latest, step)
        while moment >= since and moment > now - age:
            moments.add(moment)
            moment -= step
    return [Point(history_snapshot_id(server.source_server_id, m), m) for m in sorted(moments)]
