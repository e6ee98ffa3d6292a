"""Metrics for /metrics: counted in each process, added up in the database, read at scrape time.

The worker that ticks and calls DRS is another process than the web server that answers
/metrics, possibly on another host, and a process forgets everything when it restarts. So a
process only *accumulates* its increments in memory (`counter_inc`, `histogram_observe`,
`latest_set`: cheap, thread-safe, callable from the DRS call hook in any thread) and `flush()`
adds them to `drsorch.models.MetricSample` in one upsert. The worker flushes at the end of
every tick (`record_tick`, the one hook of `engine.tick()`), django-q2 tasks when they end, and
web processes at the end of a writing request (a read writes nothing) and before answering a
scrape.

A scrape builds a fresh registry (`render`): the stored counters (`StoredMetricsCollector`)
plus the gauges each app computes from the database then (`register_collector`; the core
imports no app, so `executions` registers its own). Nothing is kept in a process-wide
prometheus registry, so every web process answers the same figures.
"""

import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connection
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from drsorch import logs
from drsorch.models import MetricSample

logger = logging.getLogger(__name__)

PREFIX = "drsorch_"
TICK_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class Declared:
    """A stored metric: its kind ("counter", "histogram" or "latest"), help and label names."""

    kind: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


# Every stored series, by name without the prefix (and without _total: prometheus_client adds it).
DECLARED = {
    "poll_ticks": Declared("counter", "Engine ticks run, by result (worked: claimed an execution; idle; failed).",
                           ("result",)),
    "poll_tick_duration_seconds": Declared("histogram", "How long one engine tick took.",
                                           buckets=TICK_DURATION_BUCKETS),
    "drs_calls": Declared("counter", "DRS API calls made, by operation and outcome (ok, throttled, error).",
                          ("operation", "outcome")),
    "launches": Declared("counter", "Servers submitted to DRS by successful StartRecovery calls."),
    "notification_deliveries": Declared(
        "counter", "Notification delivery attempts, by channel kind and outcome (delivered, retry, failed: gave up).",
        ("kind", "outcome")),
    "poller_last_tick_timestamp_seconds": Declared("latest", "When an engine tick last ended (Unix time)."),
}
POLLER_LAST_TICK = "poller_last_tick_timestamp_seconds"

_lock = threading.Lock()
# (name, canonical labels) -> [kind, value]; swapped out whole by flush().
_pending: dict[tuple[str, str], list[Any]] = {}
_collectors: list[Callable[[], Iterable[Metric]]] = []


def _labels_key(labels: dict[str, str] | None) -> str:
    return json.dumps(labels or {}, sort_keys=True, separators=(",", ":"))


def _add(name: str, labels: dict[str, str] | None, amount: float, *, kind: str = MetricSample.COUNTER) -> None:
    key = (name, _labels_key(labels))
    with _lock:
        entry = _pending.get(key)
        if entry is None or kind == MetricSample.LATEST:
            _pending[key] = [kind, amount]
        else:
            entry[1] += amount


def counter_inc(name: str, labels: dict[str, str] | None = None, amount: float = 1) -> None:
    """Add `amount` to the declared counter `name` (series `labels`) in this process, until flush()."""
    _add(name, labels, amount)


def histogram_observe(name: str, value: float) -> None:
    """Count one observation of the declared histogram `name` in this process, until flush().

    Stored per bucket (not cumulative), so one observation changes one bucket row and the
    histogram's sum; the scrape adds the buckets up (the +Inf total is the count)."""
    buckets = DECLARED[name].buckets
    upper = next((str(bound) for bound in buckets if value <= bound), "+Inf")
    _add(f"{name}_bucket", {"le": upper}, 1)
    _add(f"{name}_sum", None, value)


def latest_set(name: str, value: float) -> None:
    """Set the declared "latest" metric `name` (overwritten, not added to, by flush())."""
    _add(name, None, value, kind=MetricSample.LATEST)


def has_pending() -> bool:
    """Whether this process counted something it has not flushed yet."""
    return bool(_pending)


def discard_pending() -> None:
    """Forget what this process counted and did not flush (tests start from nothing)."""
    with _lock:
        _pending.clear()


def flush() -> int:
    """Add this process's pending increments to the database in one upsert; the series written.

    On a database error the increments are kept for the next flush (and the error logged):
    metrics must never break a tick."""
    with _lock:
        pending = dict(_pending)
        _pending.clear()
    if not pending:
        return 0
    table = connection.ops.quote_name(MetricSample._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    rows, params = [], []
    for (name, labels), (kind, value) in sorted(pending.items()):
        rows.append("(%s, %s, %s, %s, %s)")
        params += [name, labels, kind, value, now]
    # One statement for every changed series (SQLite >= 3.24 and PostgreSQL both read it): a
    # counter row is added to, a "latest" row overwritten; two workers upserting at once are
    # serialised by the unique constraint, so no increment is lost.
    sql = (
        f"INSERT INTO {table} (name, labels, kind, value, updated_at) VALUES {', '.join(rows)} "
        f"ON CONFLICT (name, labels) DO UPDATE SET "
        f"value = CASE WHEN excluded.kind = '{MetricSample.LATEST}' THEN excluded.value "
        f"ELSE {table}.value + excluded.value END, updated_at = excluded.updated_at"
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    except DatabaseError as exc:
        logger.warning("Could not record %d metric series; keeping them for the next flush: %s", len(pending), exc)
        with _lock:
            for key, (kind, value) in pending.items():
                entry = _pending.get(key)
                if entry is None:
                    _pending[key] = [kind, value]
                elif kind == MetricSample.COUNTER:
                    entry[1] += value
                # A newer "latest" value set meanwhile wins over the unsaved one.
        return 0
    return len(pending)


def record_tick(tick: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate the engine's tick: its duration, its result, the poller's heartbeat, then flush.

    A tick that claimed an execution counts as `worked`, else `idle`; one that raised counts
    as `failed` and is no heartbeat. The flush happens in the tick's own thread, after the
    tick's transaction, so the DRS calls its threads made are stored with it. A tick of one
    execution (a person's action, `drill --wait`) logs with that execution's id."""

    @functools.wraps(tick)
    def recorded(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        result_label = "failed"
        ids = list(kwargs.get("execution_ids") or ())
        try:
            with logs.bind(execution_id=ids[0] if len(ids) == 1 else None):
                result = tick(*args, **kwargs)
            result_label = "worked" if getattr(result, "claimed", 0) else "idle"
            return result
        finally:
            histogram_observe("poll_tick_duration_seconds", time.monotonic() - started)
            counter_inc("poll_ticks", {"result": result_label})
            if result_label != "failed":
                latest_set(POLLER_LAST_TICK, time.time())
            flush()

    return recorded


def poller_checked_in() -> None:
    """A poller found nothing to do: it is alive all the same, so /healthz does not call a
    worker that runs with nothing to do 'no tick recorded'."""
    latest_set(POLLER_LAST_TICK, time.time())
    flush()


def register_collector(collect: Callable[[], Iterable[Metric]]) -> None:
    """Add an app's scrape-time metrics: `collect()` yields prometheus metric families, read
    from the database at each scrape (names must start with "drsorch_"). Idempotent."""
    if collect not in _collectors:
        _collectors.append(collect)


class StoredMetricsCollector:
    """The DECLARED metrics as stored by every process (one query)."""

    def collect(self) -> Iterator[Metric]:
        """Yield every declared metric family, with zero series where nothing was counted yet."""
        stored: dict[str, list[tuple[dict[str, str], float]]] = {}
        for name, labels, value in MetricSample.objects.values_list("name", "labels", "value"):
            stored.setdefault(name, []).append((json.loads(labels), value))
        for name, declared in DECLARED.items():
            full = PREFIX + name
            if declared.kind == "histogram":
                yield _histogram(full, declared, stored, name)
            elif declared.kind == "latest":
                family = GaugeMetricFamily(full, declared.help)
                for _, value in stored.get(name, []):
                    family.add_metric([], value)
                yield family
            else:
                family = CounterMetricFamily(full, declared.help, labels=declared.labels)
                series = stored.get(name, [])
                if not series and not declared.labels:
                    series = [({}, 0.0)]
                for labels, value in sorted(series, key=lambda item: sorted(item[0].items())):
                    family.add_metric([labels.get(label, "") for label in declared.labels], value)
                yield family


def _histogram(full: str, declared: Declared, stored: dict, name: str) -> HistogramMetricFamily:
    per_bucket = {labels.get("le"): value for labels, value in stored.get(f"{name}_bucket", [])}
    cumulative, buckets = 0.0, []
    for bound in [*(str(b) for b in declared.buckets), "+Inf"]:
        cumulative += per_bucket.get(bound, 0.0)
        buckets.append((bound, cumulative))
    total = sum(value for _, value in stored.get(f"{name}_sum", []))
    family = HistogramMetricFamily(full, declared.help)
    family.add_metric([], buckets, sum_value=total)
    return family


class _AppCollector:
    def __init__(self, collect: Callable[[], Iterable[Metric]]):
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return self._collect()


def render() -> bytes:
    """The Prometheus text exposition of every metric, read now (flushing this process first)."""
    flush()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoredMetricsCollector())
    for collect in _collectors:
        registry.register(_AppCollector(collect))
    return generate_latest(registry)
