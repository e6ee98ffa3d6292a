"""/metrics and /healthz: what an operator scrapes, after the engine drove drills against the sandbox."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from drsorch import health, metrics
from drsorch.models import MetricSample
from drsorch.sandbox.services import sandbox_configure
from executions.services import execution_start

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

THREE_WAVES = [("Database", ["db-01", "db-02"], {}), ("Application", ["app-01"], {}), ("Web", ["web-01"], {})]


def scrape(client, **headers):
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def drilled(clock, drive, make_plan):
    """A three-wave drill of four servers, driven to its end by the engine's tick (as the worker does)."""
    sandbox_configure(launch_seconds=10)
    plan = make_plan("Metrics", THREE_WAVES)
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    assert execution.status == "SUCCEEDED"
    return execution


def test_metrics_show_the_workers_drs_calls_ticks_and_launches_from_the_database(client, drilled):
    # The worker is another process: what it counted is in the database, not in this one.
    metrics.discard_pending()
    assert MetricSample.objects.filter(name="drs_calls", labels__contains="StartRecovery").exists()

    samples = scrape(client)

    assert value(samples, "drsorch_drs_calls_total", operation="StartRecovery", outcome="ok") == 3  # one per wave
    assert value(samples, "drsorch_drs_calls_total", operation="DescribeJobs", outcome="ok") >= 3
    assert value(samples, "drsorch_launches_total") == 4
    ticks = sum(v for (name, _), v in samples.items() if name == "drsorch_poll_ticks_total")
    assert ticks >= 4 and value(samples, "drsorch_poll_ticks_total", result="failed") == 0
    assert value(samples, "drsorch_poll_tick_duration_seconds_count") == ticks
    assert value(samples, "drsorch_poll_tick_duration_seconds_bucket", le="+Inf") == ticks
    assert value(samples, "drsorch_executions", status="SUCCEEDED") == 1
    assert value(samples, "drsorch_executions", status="RUNNING") == 0
    assert value(samples, "drsorch_queued_servers") == 0
    assert value(samples, "drsorch_oldest_running_execution_age_seconds") == 0
    assert value(samples, "drsorch_poller_last_tick_timestamp_seconds") > 0
    assert all(name.startswith("drsorch_") for name, _ in samples)


def test_counters_add_up_across_processes_and_restarts(client, drilled):
    before = value(scrape(client), "drsorch_drs_calls_total", operation="StartRecovery", outcome="ok")
    # Another process (a second worker, or this one after a restart) counts and flushes its own.
    metrics.counter_inc("drs_calls", {"operation": "StartRecovery", "outcome": "ok"}, 2)
    metrics.flush()
    metrics.counter_inc("drs_calls", {"operation": "StartRecovery", "outcome": "ok"})

    # A scrape flushes the scraping process's own pending counts first.
    assert value(scrape(client), "drsorch_drs_calls_total", operation="StartRecovery", outcome="ok") == before + 3


def test_a_tick_stores_its_metrics_in_one_query_whatever_it_counted(clock, make_plan):
    plan = make_plan("One query", [("All", [f"srv-{n:02d}" for n in range(12)], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    from executions import engine

    with CaptureQueriesContext(connection) as queries:
        engine.tick(execution_ids=[execution.pk])
    upserts = [q["sql"] for q in queries.captured_queries if "drsorch_metricsample" in q["sql"]]
    assert len(upserts) == 1 and upserts[0].startswith("INSERT")
    assert not metrics.has_pending()


def test_throttled_and_failed_drs_calls_are_counted_by_outcome(client, sandbox_servers, drs_client):
    sandbox_configure(throttle_rate=1.0)
    with pytest.raises(drs_client.exceptions.ThrottlingException):
        drs_client.describe_jobs()
    sandbox_configure(throttle_rate=0, deny=["DescribeSourceServers"])
    with pytest.raises(drs_client.exceptions.AccessDeniedException):
        drs_client.describe_source_servers()

    samples = scrape(client)

    assert value(samples, "drsorch_drs_calls_total", operation="DescribeJobs", outcome="throttled") == 1
    assert value(samples, "drsorch_drs_calls_total", operation="DescribeSourceServers", outcome="error") == 1


def test_a_failed_flush_keeps_the_counts_for_the_next_one(db, monkeypatch):
    from django.db import DatabaseError

    metrics.counter_inc("launches", None, 5)

    def broken_cursor():
        raise DatabaseError("database is locked")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    assert metrics.flush() == 0 and metrics.has_pending()
    monkeypatch.undo()
    assert metrics.flush() == 1
    assert MetricSample.objects.get(name="launches").value == 5


def test_queued_servers_and_oldest_execution_age_are_read_at_scrape_time(client, clock, make_plan):
    plan = make_plan("Queued", [("All", ["q-01", "q-02", "q-03"], {})])
    execution_start(plan=plan, mode="DRILL", requested_by=None)
    clock.shift(120)

    samples = scrape(client)

    assert value(samples, "drsorch_queued_servers") == 3
    assert value(samples, "drsorch_executions", status="PENDING") == 1
    assert value(samples, "drsorch_oldest_running_execution_age_seconds") == 120


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("Bearer wrong-token", 401),
        ("Token s3cret-token", 401),
        ("Bearer s3cret-token", 200),
    ],
)
def test_metrics_token_requires_the_bearer_header(client, settings, header, status):
    settings.DRSORCH_METRICS_TOKEN = "s3cret-token"
    response = client.get("/metrics", **({"HTTP_AUTHORIZATION": header} if header else {}))
    assert response.status_code == status
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert b"drsorch_" not in response.content


def test_metrics_are_open_without_a_token(client, settings):
    settings.DRSORCH_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 200


# --- /healthz ----------------------------------------------------------------------------------


def healthz(client):
    response = client.get("/healthz")
    return response.status_code, response.json()


def test_healthz_is_degraded_before_any_tick(client):
    status, body = healthz(client)
    assert status == 200 and body["status"] == "degraded"
    assert body["database"] == "ok" and body["broker"] == "ok"
    assert body["poller"]["last_tick_at"] is None and body["poller"]["age_seconds"] is None
    assert "no engine tick" in body["problems"][0]


def test_healthz_ok_after_a_tick_then_degraded_when_the_poller_goes_stale(client, clock, make_plan, settings):
    from executions import engine

    settings.DRSORCH_POLL_SECONDS = 15
    plan = make_plan("Stale", [("All", ["st-01"], {})])
    execution_start(plan=plan, mode="DRILL", requested_by=None)
    engine.tick()
    clock.shift(10)

    status, body = healthz(client)
    assert (status, body["status"], body["problems"]) == (200, "ok", [])
    assert body["poller"]["age_seconds"] == 10 and body["poller"]["last_tick_at"].startswith("2026-11-28T12:00:00")

    clock.shift(36)  # 46 s > 3 x 15 s with an execution waiting
    status, body = healthz(client)
    assert status == 200 and body["status"] == "degraded" and body["poller"]["stale"]
    assert "last tick 46 s ago" in body["problems"][0]


def test_healthz_is_ok_once_a_poller_ran_with_nothing_to_do(client):
    # A worker that started on a fresh install has nothing to tick, yet it is alive.
    from executions.poller import poller_run

    assert poller_run(sleep=lambda seconds: None).stopped == "nothing needs work"
    status, body = healthz(client)
    assert (status, body["status"], body["problems"]) == (200, "ok", [])
    assert body["poller"]["last_tick_at"] is not None


def test_healthz_an_old_tick_is_fine_when_no_execution_needs_work(client, clock, drilled):
    clock.shift(3600)
    status, body = healthz(client)
    assert status == 200 and body["status"] == "ok" and body["poller"]["age_seconds"] >= 3600


def test_healthz_is_down_with_503_when_the_database_fails(client, monkeypatch):
    monkeypatch.setattr(health, "check_database", lambda: "unreachable: connection refused")
    status, body = healthz(client)
    assert status == 503 and body["status"] == "down" and body["database"] == "unreachable: connection refused"


def test_healthz_checks_the_database_with_a_query(db, monkeypatch):
    from django.db import DatabaseError

    def broken_cursor():
        raise DatabaseError("server closed the connection unexpectedly\nThis probably means...")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    assert health.check_database() == "unreachable: server closed the connection unexpectedly"


def test_healthz_is_degraded_when_the_broker_does_not_answer(client, monkeypatch):
    class DeadBroker:
        def ping(self):
            raise ConnectionError("Error 111 connecting to localhost:6379. Connection refused.")

    monkeypatch.setattr("django_q.brokers.get_broker", lambda: DeadBroker())
    status, body = healthz(client)
    assert status == 200 and body["status"] == "degraded"
    assert body["broker"] == "unreachable: Error 111 connecting to localhost:6379. Connection refused."


def test_web_requests_store_what_they_counted_after_writes_only(rf):
    from django.http import HttpResponse

    from drsorch.monitoring import MetricsFlushMiddleware

    middleware = MetricsFlushMiddleware(lambda request: HttpResponse())
    metrics.counter_inc("drs_calls", {"operation": "DescribeSourceServers", "outcome": "ok"})
    middleware(rf.get("/plans/1/"))
    assert metrics.has_pending() and not MetricSample.objects.exists()  # a read writes nothing
    middleware(rf.post("/api/v1/source-servers/sync/"))
    assert not metrics.has_pending() and MetricSample.objects.get(name="drs_calls").value == 1
