"""Two django-q2 workers, as deployed: two `manage.py qcluster` processes on one PostgreSQL
database and the Redis broker drive ten drills started at once.

Every drill must end SUCCEEDED, no server may be launched twice (DRS's own count of LAUNCH
jobs per source server, and one launch attempt per server in drsorch), and both workers
must have ticked. The last is read from the database, not from the poller's internals: a
PostgreSQL trigger records every lease claim of an execution (the engine claims before each
tick of it), and the claiming process is mapped to its qcluster by the process tree. So the
test holds whatever drives the ticks (a minute schedule, a hand-over, a re-enqueue chain).

The workers run with the default poll settings. The size of a worker (RSS and PSS of a
qcluster with all its processes, CPU) is measured while they drive the drills, printed, and
written to $ARTIFACTS/workers.json; their logs go to $ARTIFACTS/worker-*.log.

Needs PostgreSQL (DATABASE_URL) and a disposable Redis (E2E_REDIS_URL); `make test-e2e`
starts both.
"""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections

from tests.e2e.processes import ProcessTree

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, databases=["default", "sandbox"]),
]

ARTIFACTS = Path(os.environ.get("ARTIFACTS", "artifacts"))
REDIS_URL = os.environ.get("E2E_REDIS_URL", "")
ACCOUNTS = ["123456789012", "210987654321"]
DRILLS = 10
TIERS = ["db", "app", "web"]
SERVERS_PER_WAVE = 2
# Short simulated launches keep the run to a few minutes; the poll cadence stays the default.
LAUNCH_SECONDS = 5
DEADLINE_SECONDS = 600
STARTUP_SECONDS = 60
STOP_SECONDS = 15


@pytest.fixture
def redis_broker(monkeypatch):
    """The e2e Redis, emptied of django-q2's keys, as this process's broker too: the drills'
    first advances are enqueued by the services here and must reach the workers' queue."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL to a PostgreSQL database (make test-e2e does)")
    if not REDIS_URL:
        pytest.skip("needs a disposable Redis: set E2E_REDIS_URL (make test-e2e starts one)")
    import redis
    from django_q.conf import Conf

    client = redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at E2E_REDIS_URL={REDIS_URL} does not answer: {exc}")

    def empty():
        for key in client.scan_iter("django_q:*"):
            client.delete(key)

    empty()
    # django-q2 reads its settings once into Conf; the test settings chose the ORM broker.
    monkeypatch.setattr(Conf, "REDIS", REDIS_URL)
    monkeypatch.setattr(Conf, "ORM", None)
    yield client
    empty()
    client.close()


@pytest.fixture
def lease_claims():
    """Record every lease claim of an execution (owner, time) with a trigger; returns a function
    counting the claims by owner."""
    table = connection.ops.quote_name(_execution_table())
    statements = [
        "CREATE TABLE e2e_lease_claim (owner text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())",
        """CREATE FUNCTION e2e_record_lease_claim() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN
             IF NEW.lease_owner <> '' AND NEW.lease_owner IS DISTINCT FROM OLD.lease_owner THEN
               INSERT INTO e2e_lease_claim (owner) VALUES (NEW.lease_owner);
             END IF;
             RETURN NEW;
           END $$""",
        f"""CREATE TRIGGER e2e_lease_claim AFTER UPDATE OF lease_owner ON {table}
            FOR EACH ROW EXECUTE FUNCTION e2e_record_lease_claim()""",
    ]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)

    def counts() -> Counter:
        with connection.cursor() as cursor:
            cursor.execute("SELECT owner, count(*) FROM e2e_lease_claim GROUP BY owner")
            return Counter(dict(cursor.fetchall()))

    yield counts
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER IF EXISTS e2e_lease_claim ON {table}")
        cursor.execute("DROP FUNCTION IF EXISTS e2e_record_lease_claim()")
        cursor.execute("DROP TABLE IF EXISTS e2e_lease_claim")


def _execution_table():
    from executions.models import Execution

    return Execution._meta.db_table


def _database_url(config):
    host = config.get("HOST") or "localhost"
    port = config.get("PORT") or 5432
    return (
        f"postgres://{quote(config['USER'], safe='')}:{quote(config.get('PASSWORD') or '', safe='')}"
        f"@{host}:{port}/{config['NAME']}"
    )


def _worker_environment():
    """The environment of a deployed worker on this test's databases: default settings, so the
    poll cadence is the product's own, and the test's SECRET_KEY, which signs the tasks."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DRSORCH_", "Q_CLUSTER"))
        and name not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DEBUG", "LOG_LEVEL"}
    }
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "drsorch.settings",
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "DATABASE_URL": _database_url(connections["default"].settings_dict),
        # The test runner gave the sandbox alias its own test database: the workers must
        # see the same simulated DRS as the test.
        "DRSORCH_SANDBOX_DATABASE_URL": _database_url(connections["sandbox"].settings_dict),
        "REDIS_URL": REDIS_URL,
        "PYTHONUNBUFFERED": "1",
    }


class Worker:
    """One `manage.py qcluster` process group, its log, and what it cost."""

    def __init__(self, name):
        self.name = name
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"worker-{name}.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(settings.BASE_DIR / "manage.py"), "qcluster"],
            cwd=settings.BASE_DIR,
            env=_worker_environment(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the whole cluster can be stopped
        )
        self.tree = ProcessTree(self.process.pid)

    def check_alive(self):
        if self.process.poll() is not None:
            raise AssertionError(f"worker {self.name} exited with {self.process.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines=40):
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self):
        """SIGTERM, then SIGKILL for whatever of its group is left after STOP_SECONDS."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_SECONDS)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_SECONDS)
        self.log.close()


@pytest.fixture
def workers(redis_broker):
    """Two qcluster processes, running once both have registered with the broker; stopped
    at the end whatever happened."""
    started = []
    try:
        for name in ("a", "b"):
            started.append(Worker(name))
        _wait_until_registered(started)
        yield started
    finally:
        for worker in started:
            worker.stop()
        connections.close_all()


def _wait_until_registered(workers):
    """Both clusters report themselves to the broker before any drill starts, so neither gets
    a head start on the first tasks."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.status import Stat

    deadline = time.monotonic() + STARTUP_SECONDS
    wanted = {worker.process.pid for worker in workers}
    while True:
        for worker in workers:
            worker.check_alive()
        running = {stat.pid for stat in Stat.get_all(broker=get_broker()) if stat.status in (Conf.IDLE, Conf.WORKING)}
        if wanted <= running:
            return
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- worker {w.name}\n{w.log_tail()}" for w in workers)
            raise AssertionError(f"the workers did not start within {STARTUP_SECONDS} s:\n{tails}")
        time.sleep(0.5)


def _seed_drills():
    """Ten three-wave plans over two sandbox accounts, SERVERS_PER_WAVE servers a wave, no
    server in two plans."""
    from drsorch.sandbox.services import sandbox_configure, sandbox_servers_create
    from plans.models import SourceServer, Target
    from plans.services import WaveSpec, plan_save, protection_group_save, source_servers_sync

    sandbox_configure(launch_seconds=LAUNCH_SECONDS)
    targets = []
    for number, account_id in enumerate(ACCOUNTS, start=1):
        hostnames = [
            f"d{drill:02d}-{tier}-{n}"
            for drill in range(number, DRILLS + 1, len(ACCOUNTS))
            for tier in TIERS
            for n in range(1, SERVERS_PER_WAVE + 1)
        ]
        sandbox_servers_create(
            account_id=account_id, region="us-east-1", specs=[{"hostname": hostname} for hostname in hostnames]
        )
        target = Target.objects.create(
            name=f"Sandbox {number}", kind="sandbox", account_id=account_id, region="us-east-1"
        )
        source_servers_sync(target=target)
        targets.append(target)
    servers = {server.hostname: server for server in SourceServer.objects.all()}
    plans = []
    for drill in range(1, DRILLS + 1):
        target = targets[(drill - 1) % len(ACCOUNTS)]
        waves = []
        for tier in TIERS:
            group = protection_group_save(
                name=f"Drill {drill:02d} {tier}",
                target=target,
                servers=[servers[f"d{drill:02d}-{tier}-{n}"] for n in range(1, SERVERS_PER_WAVE + 1)],
            )
            waves.append(WaveSpec(name=tier, protection_groups=[group]))
        plans.append(plan_save(name=f"Drill {drill:02d}", waves=waves))
    return plans


def _wait_for_the_end(execution_ids, workers):
    """Poll the database until every execution has ended, sampling the workers meanwhile;
    fails at DEADLINE_SECONDS naming the executions still running."""
    from executions.choices import EXECUTION_ACTIVE
    from executions.models import Execution

    started = time.monotonic()
    while True:
        for worker in workers:
            worker.check_alive()
            worker.tree.sample()
        statuses = dict(Execution.objects.filter(pk__in=execution_ids).values_list("pk", "status"))
        if not set(statuses.values()) & EXECUTION_ACTIVE:
            return statuses, time.monotonic() - started
        if time.monotonic() - started > DEADLINE_SECONDS:
            running = {str(pk): status for pk, status in statuses.items() if status in EXECUTION_ACTIVE}
            raise AssertionError(f"after {DEADLINE_SECONDS} s these executions still run: {running}")
        time.sleep(1)


def _claims_by_worker(claims, workers):
    """Lease claims per worker: an owner names its process (host:pid:...), which belongs to the
    qcluster whose process tree it was seen in. Claims of the test process (the services
    acting for a person) belong to no worker."""
    by_worker = Counter()
    for owner, count in claims.items():
        pid = owner.split(":")[1] if owner.count(":") >= 2 else ""
        for worker in workers:
            if pid.isdigit() and int(pid) in worker.tree.pids:
                by_worker[worker.name] += count
    return by_worker


def test_two_workers_drive_ten_drills_at_once(workers, lease_claims):
    from drsorch.sandbox.services import sandbox_status
    from executions.models import LaunchAttempt, ServerLaunch
    from executions.services import execution_start
    from tests.executions.test_start import at_once

    call_command("setup_schedules", stdout=io.StringIO())
    plans = _seed_drills()
    for worker in workers:
        worker.tree.mark()
    executions = at_once(DRILLS, lambda n: execution_start(plan=plans[n], mode="DRILL", requested_by=None))
    statuses, seconds = _wait_for_the_end([e.pk for e in executions], workers)
    for worker in workers:
        worker.tree.sample()
    claims = _claims_by_worker(lease_claims(), workers)
    report = _report(workers, seconds, claims)

    assert set(statuses.values()) == {"SUCCEEDED"}, statuses
    # DRS's side: every source server was in exactly one LAUNCH job.
    launch_counts = {s["hostname"]: s["launch_count"] for s in sandbox_status()["servers"]}
    assert len(launch_counts) == DRILLS * len(TIERS) * SERVERS_PER_WAVE
    assert set(launch_counts.values()) == {1}, {h: n for h, n in launch_counts.items() if n != 1}
    # drsorch's side: one launch attempt (server and job) per server, every server launched.
    assert set(ServerLaunch.objects.values_list("status", flat=True)) == {"LAUNCHED"}
    attempts = Counter(LaunchAttempt.objects.values_list("launch_id", flat=True))
    assert len(attempts) == len(launch_counts) and set(attempts.values()) == {1}
    # Both workers ticked executions.
    assert claims["a"] > 0 and claims["b"] > 0, report


def _report(workers, seconds, claims):
    """The size of each worker while it drove the drills, printed and saved as JSON."""
    report = {
        "drills": DRILLS,
        "servers": DRILLS * len(TIERS) * SERVERS_PER_WAVE,
        "seconds": round(seconds, 1),
        "workers": {
            worker.name: {
                "processes": len(worker.tree.peak_processes),
                "idle_rss_mb": round((worker.tree.first_rss_kb or 0) / 1024, 1),
                "peak_rss_mb": round(worker.tree.peak_rss_kb / 1024, 1),
                "peak_pss_mb": round(worker.tree.peak_pss_kb / 1024, 1),
                "peak_rss_by_process_mb": sorted(
                    (round(kb / 1024, 1) for kb in worker.tree.peak_processes.values()), reverse=True
                ),
                "cpu_seconds": round(worker.tree.cpu_seconds(), 1),
                "cpu_share": round(worker.tree.cpu_seconds() / seconds, 3) if seconds else None,
                "lease_claims": claims[worker.name],
            }
            for worker in workers
        },
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "workers.json").write_text(json.dumps(report, indent=2) + "\n")
    print("two workers, ten drills:", json.dumps(report))
    return report
