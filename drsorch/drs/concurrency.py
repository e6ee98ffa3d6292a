"""DRS calls for several targets at once: a bounded thread pool, plain data in and out.

Real DRS answers in 100-400 ms, so a tick asking ten targets one after another spends seconds
waiting on the network. `per_target` runs one callable per target in a pool of at most
`DRSORCH_DRS_CONCURRENCY` threads and hands back, per target, its answer or the exception it
raised: one target failing or throttled never touches another's answer.

The rules the callables must keep (the engine's phase 1 decides in its own thread what to ask,
phase 2 asks here, phase 3 applies the answers in its own thread and transaction):

- DRS calls only (through `drsorch.drs.gateway`), never the ORM of the product's database: a
  pool thread would open its own connection, outside the tick's transaction and lease.
- boto3 clients are shared (thread-safe once made, `drsorch.aws.client_for` makes each once
  under a lock); sessions are never shared.
- The sandbox answers a call in the calling thread through its own `sandbox` connection; each
  pool thread's connections are closed when its call ends, so no thread leaves one open.

Calls are counted for the calling thread (`drsorch.aws.aws_calls_made`), wherever they ran.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from django.conf import settings
from django.db import connections

from drsorch.aws import call_counts, counting_into
from drsorch.sandbox.routers import SANDBOX_DB

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

DEFAULT_CONCURRENCY = 32


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What one target's callable gave: its value, or the exception it raised."""

    value: T | None = None
    error: Exception | None = None

    def get(self) -> T:
        """The value, or raise the callable's exception (in the caller's thread)."""
        if self.error is not None:
            raise self.error
        return self.value


def concurrency() -> int:
    """How many DRS calls for different targets may run at once (DRSORCH_DRS_CONCURRENCY)."""
    return int(getattr(settings, "DRSORCH_DRS_CONCURRENCY", DEFAULT_CONCURRENCY))


def _pool_can_see_the_sandbox() -> bool:
    """Another thread opens its own sandbox connection: it sees only what is committed there.
    A caller inside a sandbox transaction (a test case wrapped in one) or an in-memory SQLite
    sandbox (one database per connection) would be answered from another state, so its calls
    stay in its own thread."""
    sandbox = connections[SANDBOX_DB]
    if sandbox.in_atomic_block:
        return False
    return not (sandbox.vendor == "sqlite" and sandbox.is_in_memory_db())


def per_target(calls: Mapping[K, Callable[[], T]], *, workers: int | None = None) -> dict[K, Outcome[T]]:
    """Run `calls` (one per target, keyed by the target) at once in a bounded pool and return
    each one's Outcome under its key. An Exception is caught into its Outcome; a BaseException
    (a simulated crash, KeyboardInterrupt) is raised in the caller's thread once every call has
    ended. A single call, a concurrency of 1, or a caller whose sandbox state another thread
    could not see runs the calls in the caller's thread, one after another."""
    workers = concurrency() if workers is None else workers
    if len(calls) <= 1 or workers <= 1 or not _pool_can_see_the_sandbox():
        return {key: _outcome(call) for key, call in calls.items()}
    counts = call_counts()
    with ThreadPoolExecutor(max_workers=min(workers, len(calls)), thread_name_prefix="drs-call") as pool:
        futures = {key: pool.submit(_in_pool_thread, call, counts) for key, call in calls.items()}
    return {key: future.result() for key, future in futures.items()}


def per_target_started(calls: Mapping[K, Callable[[], T]], *,
                       workers: int | None = None) -> Callable[[], dict[K, Outcome[T]]]:
    """Start `calls` now in their own pool and return a function that waits for them and gives
    per_target's answer: the caller works on meanwhile (the tick reads job logs while it starts
    jobs). Where per_target would run the calls in the caller's thread, they run then, when
    the answer is asked for, one after another."""
    workers = concurrency() if workers is None else workers
    if not calls or workers <= 1 or not _pool_can_see_the_sandbox():
        return lambda: per_target(calls, workers=workers)
    counts = call_counts()
    pool = ThreadPoolExecutor(max_workers=min(workers, len(calls)), thread_name_prefix="drs-call")
    futures = {key: pool.submit(_in_pool_thread, call, counts) for key, call in calls.items()}
    pool.shutdown(wait=False)  # its threads end with their calls

    def answers() -> dict[K, Outcome[T]]:
        return {key: future.result() for key, future in futures.items()}

    return answers


def _outcome(call: Callable[[], T]) -> Outcome[T]:
    try:
        return Outcome(value=call())
    except Exception as exc:
        return Outcome(error=exc)


def _in_pool_thread(call: Callable[[], T], counts: dict[str, int]) -> Outcome[T]:
    try:
        with counting_into(counts):
            return _outcome(call)
    finally:
        # The sandbox's connection of this thread (and any other it opened): a pool thread
        # must not keep one open after its call, on SQLite least of all (file locks).
        connections.close_all()
