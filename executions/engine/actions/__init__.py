"""Wave actions (runbook steps) in the tick: before a wave's launch and after it.

A wave with `before_actions` goes PENDING -> BEFORE_ACTIONS -> LAUNCHING; one with
`after_actions` goes LAUNCHING -> AFTER_ACTIONS -> WAITING/SUCCEEDED/PARTIAL once its
launches settled (not when its outcome is FAILED). The actions of a phase run one after the
other, in their order; the phase ends when they all ended. A failed or timed-out action with
`on_failure: fail` fails its wave (the later actions of the phase are SKIPPED, its dependents
too); with `continue` the failure is recorded and the next action runs.

Kinds:
- manual: WAITING until an Operator completes it (services.execution_action_complete);
- webhook: the execution JSON, signed, POSTed until a 2xx, retried with a doubling backoff
  (WEBHOOK_FIRST_BACKOFF_SECONDS) within its timeout;
- health_check: DescribeInstanceStatus (both status checks ok) and, when asked, SSM's
  DescribeInstanceInformation (PingStatus Online) until every launched instance passes;
- ssm_automation: StartAutomationExecution per launched instance (InstanceId), followed with
  GetAutomationExecution; ssm_command: SendCommand to the launched instances of each target,
  followed with ListCommandInvocations.

Exactly once, as launches: an outside call that acts (StartAutomationExecution, SendCommand,
a webhook POST) is made only after the action's intent was committed by a conditional UPDATE
(PENDING with no intent -> RUNNING with `intent_at`), and what it gave is recorded right
after (`_recorded`). A crash in between leaves an intent without ids; the next tick
reconciles instead of calling blindly again:
- ssm_automation sends the same deterministic ClientToken (uuid5 of the action run, its
  attempt and the instance), which SSM answers with the execution it already started;
- ssm_command looks for its command with ListCommands by its Comment
  ("drsorch <action run id> #<attempt>") before sending again;
- webhook sends again with the same X-Drsorch-Delivery id: at least once, which is the best
  HTTP allows; receivers deduplicate by that id (docs/api.md).

Outside calls run outside any transaction (the tick's save is the only one), after the lease
was renewed: an automation's per-instance calls at once in the bounded pool
(drsorch.drs.concurrency: boto3 only, no ORM there), a webhook's POST in a small pool of its
own that the tick waits for at most WEBHOOK_WAIT_IN_TICK_SECONDS (a receiver that is down
must not hold every other execution for its timeout), the rest in the tick's thread.

May import: rows, lease (and models, choices, drsorch). Never waves, launching or ticks.

Laid out by job: phases.py (the state machine of a wave's actions), records.py (intent,
record, output, end), one module per kind (webhook.py, health.py, automation.py, command.py)
and ssm.py (what the two SSM kinds share). Modules import downward only: phases uses the
kinds, the kinds use ssm and records.
"""

from .automation import client_token
from .command import command_comment
from .phases import Phase, cancel_phase, close_actions, step_phase
from .webhook import execution_json, webhooks_in_flight

__all__ = [
    "Phase",
    "cancel_phase",
    "client_token",
    "close_actions",
    "command_comment",
    "execution_json",
    "step_phase",
    "webhooks_in_flight",
]
