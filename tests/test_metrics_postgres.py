"""The metrics upsert on PostgreSQL (run by make test-e2e): counters add up, even from two
threads flushing at once, and the poller's last tick is overwritten."""

import threading

import pytest
from django.db import connection

from drsorch import metrics
from drsorch.models import MetricSample

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_flush_adds_counters_and_overwrites_the_last_tick():
    metrics.counter_inc("drs_calls", {"operation": "DescribeJobs", "outcome": "ok"}, 2)
    metrics.latest_set(metrics.POLLER_LAST_TICK, 100.0)
    assert metrics.flush() == 2
    metrics.counter_inc("drs_calls", {"operation": "DescribeJobs", "outcome": "ok"}, 3)
    metrics.latest_set(metrics.POLLER_LAST_TICK, 200.0)
    assert metrics.flush() == 2

    assert MetricSample.objects.get(name="drs_calls").value == 5
    assert MetricSample.objects.get(name=metrics.POLLER_LAST_TICK).value == 200


def test_two_processes_flushing_at_once_lose_no_increment():
    barrier = threading.Barrier(2)
    errors = []

    def worker():
        try:
            for _ in range(20):
                barrier.wait(timeout=10)
                # Both threads count and flush at once, each on its own connection: whichever
                # flush takes an increment, the upserts must add up, never overwrite.
                metrics.counter_inc("launches", None, 1)
                metrics.flush()
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert MetricSample.objects.get(name="launches").value == 40
