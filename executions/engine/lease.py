"""Leases: one process at a time advances an execution.

A tick *claims* an execution with a conditional UPDATE of its lease, so two workers (or a
worker and `drill --wait`, or a service acting for a person) never both act on it; a lease
is renewed right before each StartRecovery and inside the transaction that saves a tick.

May import: models and choices only (no other engine module).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from executions.choices import EXECUTION_ACTIVE, JOB_OPEN
from executions.models import DrsJob, Execution

LEASE_SECONDS = 60

# Host and pid repeat after a container restart; the token makes each process's identity new.
_PROCESS_TOKEN = uuid.uuid4().hex[:8]


class LeaseLost(Exception):
    """Another process took the execution over; stop acting on it."""


def worker_identity() -> str:
    """This thread's lease owner name: host, pid, thread and a per-process token."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{_PROCESS_TOKEN}"


def executions_needing_work(*, execution_ids: Iterable[object] | None = None) -> QuerySet[Execution]:
    """Active executions, and ended ones whose DRS jobs (e.g. cleanup) are still open."""
    open_job_executions = DrsJob.objects.filter(state__in=JOB_OPEN).values("execution_id")
    queryset = Execution.objects.filter(Q(status__in=EXECUTION_ACTIVE) | Q(pk__in=open_job_executions))
    if execution_ids is not None:
        queryset = queryset.filter(pk__in=execution_ids)
    return queryset


def _lease_is_free(owner: str, now: datetime) -> Q:
    return Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now) | Q(lease_owner=owner)


def claim_executions(*, execution_ids: Iterable[object] | None = None, owner: str) -> list[Execution]:
    """Take the lease of every execution needing work that nobody else holds.

    The UPDATE ... WHERE lease is free is the claim: when two processes race, the database
    applies one UPDATE per row first and the other no longer matches the WHERE clause."""
    now = timezone.now()
    candidates = list(executions_needing_work(execution_ids=execution_ids).values_list("pk", flat=True))
    if not candidates:
        return []
    Execution.objects.filter(pk__in=candidates).filter(_lease_is_free(owner, now)).update(
        lease_owner=owner, lease_expires_at=now + timedelta(seconds=LEASE_SECONDS)
    )
    return list(Execution.objects.filter(pk__in=candidates, lease_owner=owner).order_by("created_at"))


def claim_execution(execution_id: object, *, owner: str) -> bool:
    """Take one execution's lease whatever its status (human actions use it); True if taken."""
    now = timezone.now()
    return (
        Execution.objects.filter(pk=execution_id)
        .filter(_lease_is_free(owner, now))
        .update(lease_owner=owner, lease_expires_at=now + timedelta(seconds=LEASE_SECONDS))
        == 1
    )


def release_executions(executions: Iterable[Execution], *, owner: str) -> None:
    """Give up our lease of `executions` (those another owner holds are left alone)."""
    Execution.objects.filter(pk__in=[e.pk for e in executions], lease_owner=owner).update(
        lease_owner="", lease_expires_at=None
    )


def renew_lease(execution: Execution, *, owner: str) -> bool:
    """Extend our lease, or report that it was lost. Called right before StartRecovery."""
    now = timezone.now()
    return (
        Execution.objects.filter(pk=execution.pk, lease_owner=owner, lease_expires_at__gt=now).update(
            lease_expires_at=now + timedelta(seconds=LEASE_SECONDS)
        )
        == 1
    )


def renew_held_leases(execution_ids: Iterable[object], *, owner: str, excluded: Iterable[object]) -> set[object]:
    """Extend the leases we still hold among `execution_ids` (but `excluded`); their pks.

    Called inside the save transaction: the UPDATE holds the rows (PostgreSQL row locks,
    SQLite's write lock) until commit, so no other worker can claim them between check and write."""
    execution_ids, excluded = list(execution_ids), list(excluded)
    now = timezone.now()
    mine = Execution.objects.filter(pk__in=execution_ids, lease_owner=owner, lease_expires_at__gt=now).exclude(
        pk__in=excluded
    )
    mine.update(lease_expires_at=now + timedelta(seconds=LEASE_SECONDS))
    return set(
        Execution.objects.filter(pk__in=execution_ids, lease_owner=owner, lease_expires_at__gt=now)
        .exclude(pk__in=excluded)
        .values_list("pk", flat=True)
    )
