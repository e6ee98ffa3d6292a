"""The execution engine: turns waves into DRS jobs and follows every server to its end.

One `tick()` is one pass over the executions that need work. The modules, each importing
only the ones listed before it (docs/architecture.md has the map):

- hooks: the "status changed" hook point (signals sent on commit);
- times: DRS timestamps;
- lease: claiming, renewing and releasing executions;
- rows: the rows of a tick, change tracking and the bulk save;
- evidence: times on DRS's clock, snapshots, the achieved RTO and worst RPO;
- jobs: following DRS jobs, adopting or abandoning intents;
- job_log: DRS job logs as phases and events;
- account: the account's active jobs on a target (busy servers, DRS's quota count);
- cleanup: drill clean-ups sent as TERMINATE jobs and followed;
- launching: quotas, intents and StartRecovery;
- waves: the wave and execution state machine;
- ticks: `tick()`, which runs them in order.

Safety rules, each explained where it is enforced:
- An execution is advanced by one process at a time: a tick *claims* it with a conditional
  UPDATE of its lease (lease.py), so two workers (or a worker and `drill --wait`) never both act on it.
- A launch is recorded (DrsJob INTENDED, with a launch token) and its servers are claimed
  with a conditional UPDATE *before* StartRecovery is called, and the lease is renewed just
  before the call (launching.py). A crash after the call leaves the intent; the next tick
  finds the job by its launch-token tag and adopts it (jobs.py).
- A tick's changes are saved only for the executions whose lease it still holds (rows.py).
"""

from .lease import (
    LEASE_SECONDS,
    claim_execution,
    claim_executions,
    executions_needing_work,
    release_executions,
    worker_identity,
)
from .ticks import TickResult, tick

__all__ = [
    "LEASE_SECONDS",
    "TickResult",
    "claim_execution",
    "claim_executions",
    "executions_needing_work",
    "release_executions",
    "tick",
    "worker_identity",
]
