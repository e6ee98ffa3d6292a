"""Workers claiming at the same moment, in real threads on the real database: no row is ever
held by two of them (SQLite in make test; PostgreSQL's row locks in make test-e2e)."""

import threading

import pytest
from django.db import connection

from executions.notable import NotableEvent, notable_events_send
from notifications.models import Notification
from notifications.services import notifications_claim

ROWS = 3
WORKERS = 6


def claim_race(make_channel):
    make_channel("Mail", kind="email", address="ops@example.com", events=["drill.overdue"])
    notable_events_send([NotableEvent(event="drill.overdue", plan_id=None, details={"n": n}) for n in range(ROWS)])
    assert Notification.objects.count() == ROWS
    barrier = threading.Barrier(WORKERS)
    claimed: dict[str, list[int]] = {}
    errors = []

    def worker(token):
        try:
            barrier.wait(timeout=10)
            claimed[token] = [row.pk for row in notifications_claim(token=token, limit=ROWS)]
        except Exception as exc:  # reported below: a thread's exception would vanish
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(f"worker-{n}",)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    every_claim = [pk for pks in claimed.values() for pk in pks]
    assert len(every_claim) == len(set(every_claim)) == ROWS  # each row once, none twice
    holders = dict(Notification.objects.values_list("pk", "claim_token"))
    for token, pks in claimed.items():
        assert all(holders[pk] == token for pk in pks)


@pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)
def test_concurrent_claims_never_share_a_row(make_channel):
    claim_race(make_channel)


@pytest.mark.postgres
@pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)
def test_concurrent_claims_never_share_a_row_on_postgresql(make_channel):
    assert connection.vendor == "postgresql"
    claim_race(make_channel)
