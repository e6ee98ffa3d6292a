"""Statuses of executions, waves, server launches, wave actions and DRS jobs, declared once with their
terminal sets and allowed transitions. Models refuse any move not listed here."""

from django.db import models


class ExecutionMode(models.TextChoices):
    DRILL = "DRILL", "Drill"
    RECOVERY = "RECOVERY", "Recovery"


class ExecutionStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    RUNNING = "RUNNING", "Running"
    WAITING_APPROVAL = "WAITING_APPROVAL", "Waiting for approval"
    CANCELLING = "CANCELLING", "Cancelling"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    PARTIAL = "PARTIAL", "Partial"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"
    TIMED_OUT = "TIMED_OUT", "Timed out"


EXECUTION_TERMINAL = frozenset(
    {
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.PARTIAL,
        ExecutionStatus.FAILED,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.TIMED_OUT,
    }
)
EXECUTION_ACTIVE = frozenset(set(ExecutionStatus.values) - EXECUTION_TERMINAL)
# Ended executions with failed waves can be retried.
EXECUTION_RETRYABLE = frozenset({ExecutionStatus.FAILED, ExecutionStatus.PARTIAL, ExecutionStatus.TIMED_OUT})
# Only these can meet an RTO or RPO target: a failed, timed-out or cancelled execution recovered
# nothing it can vouch for, however fast it ended.
EXECUTION_CAN_MEET_TARGETS = frozenset({ExecutionStatus.SUCCEEDED, ExecutionStatus.PARTIAL})

EXECUTION_TRANSITIONS = {
    ExecutionStatus.PENDING: {
        ExecutionStatus.RUNNING,
        ExecutionStatus.CANCELLING,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.FAILED,
    },
    ExecutionStatus.RUNNING: {
        ExecutionStatus.WAITING_APPROVAL,
        ExecutionStatus.CANCELLING,
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.PARTIAL,
        ExecutionStatus.FAILED,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.TIMED_OUT,
    },
    ExecutionStatus.WAITING_APPROVAL: {
        ExecutionStatus.RUNNING,
        ExecutionStatus.CANCELLING,
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.PARTIAL,
        ExecutionStatus.FAILED,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.TIMED_OUT,
    },
    ExecutionStatus.CANCELLING: {ExecutionStatus.CANCELLED},
    ExecutionStatus.SUCCEEDED: set(),
    ExecutionStatus.PARTIAL: {ExecutionStatus.RUNNING},
    ExecutionStatus.FAILED: {ExecutionStatus.RUNNING},
    ExecutionStatus.TIMED_OUT: {ExecutionStatus.RUNNING},
    ExecutionStatus.CANCELLED: set(),
}


class WaveStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    WAITING_APPROVAL = "WAITING_APPROVAL", "Waiting for approval"
    BEFORE_ACTIONS = "BEFORE_ACTIONS", "Running before actions"
    LAUNCHING = "LAUNCHING", "Launching"
    AFTER_ACTIONS = "AFTER_ACTIONS", "Running after actions"
    WAITING = "WAITING", "Waiting"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    PARTIAL = "PARTIAL", "Partial"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"
    SKIPPED = "SKIPPED", "Skipped"
    TIMED_OUT = "TIMED_OUT", "Timed out"


WAVE_TERMINAL = frozenset(
    {
        WaveStatus.SUCCEEDED,
        WaveStatus.PARTIAL,
        WaveStatus.FAILED,
        WaveStatus.CANCELLED,
        WaveStatus.SKIPPED,
        WaveStatus.TIMED_OUT,
    }
)
# A dependent wave may start once each wave it depends on ended in one of these.
WAVE_SATISFIES_DEPENDENTS = frozenset({WaveStatus.SUCCEEDED, WaveStatus.PARTIAL})
# Waves a retry re-opens: their failed servers go again, and skipped waves get their chance.
WAVE_RETRYABLE = frozenset({WaveStatus.FAILED, WaveStatus.TIMED_OUT, WaveStatus.PARTIAL, WaveStatus.SKIPPED})

# A wave running its actions (engine/actions/): it is on the move, and its dependents wait.
WAVE_ACTION_PHASES = frozenset({WaveStatus.BEFORE_ACTIONS, WaveStatus.AFTER_ACTIONS})

WAVE_TRANSITIONS = {
    WaveStatus.PENDING: {
        WaveStatus.WAITING_APPROVAL,
        WaveStatus.BEFORE_ACTIONS,
        WaveStatus.LAUNCHING,
        WaveStatus.SKIPPED,
        WaveStatus.CANCELLED,
    },
    WaveStatus.WAITING_APPROVAL: {
        WaveStatus.BEFORE_ACTIONS,
        WaveStatus.LAUNCHING,
        WaveStatus.CANCELLED,
        WaveStatus.SKIPPED,
    },
    WaveStatus.BEFORE_ACTIONS: {WaveStatus.LAUNCHING, WaveStatus.FAILED, WaveStatus.CANCELLED},
    WaveStatus.AFTER_ACTIONS: {
        WaveStatus.WAITING,
        WaveStatus.SUCCEEDED,
        WaveStatus.PARTIAL,
        WaveStatus.FAILED,
        WaveStatus.CANCELLED,
    },
    WaveStatus.LAUNCHING: {
        WaveStatus.AFTER_ACTIONS,
        WaveStatus.WAITING,
        WaveStatus.SUCCEEDED,
        WaveStatus.PARTIAL,
        WaveStatus.FAILED,
        WaveStatus.CANCELLED,
        WaveStatus.TIMED_OUT,
    },
    WaveStatus.WAITING: {WaveStatus.SUCCEEDED, WaveStatus.PARTIAL, WaveStatus.CANCELLED},
    WaveStatus.SUCCEEDED: set(),
    WaveStatus.PARTIAL: {WaveStatus.PENDING},
    WaveStatus.FAILED: {WaveStatus.PENDING},
    WaveStatus.TIMED_OUT: {WaveStatus.PENDING},
    WaveStatus.SKIPPED: {WaveStatus.PENDING},
    WaveStatus.CANCELLED: {WaveStatus.PENDING},
}


class LaunchStatus(models.TextChoices):
    """A server's launch, named as DRS names participatingServers[].launchStatus."""

    NOT_STARTED = "NOT_STARTED", "Not started"
    PENDING = "PENDING", "Pending"
    IN_PROGRESS = "IN_PROGRESS", "In progress"
    LAUNCHED = "LAUNCHED", "Launched"
    FAILED = "FAILED", "Failed"
    TERMINATED = "TERMINATED", "Terminated"


LAUNCH_TERMINAL = frozenset({LaunchStatus.LAUNCHED, LaunchStatus.FAILED, LaunchStatus.TERMINATED})

LAUNCH_TRANSITIONS = {
    LaunchStatus.NOT_STARTED: {
        LaunchStatus.PENDING,
        LaunchStatus.IN_PROGRESS,
        LaunchStatus.LAUNCHED,
        LaunchStatus.FAILED,
    },
    LaunchStatus.PENDING: {
        LaunchStatus.IN_PROGRESS,
        LaunchStatus.LAUNCHED,
        LaunchStatus.FAILED,
        LaunchStatus.NOT_STARTED,
    },
    LaunchStatus.IN_PROGRESS: {LaunchStatus.LAUNCHED, LaunchStatus.FAILED},
    LaunchStatus.LAUNCHED: {LaunchStatus.TERMINATED},
    LaunchStatus.FAILED: {LaunchStatus.NOT_STARTED, LaunchStatus.TERMINATED},
    LaunchStatus.TERMINATED: set(),
}


class LaunchPhase(models.TextChoices):
    """What a user wants to see of a server on its way up; DRS only shows it in the job log."""

    WAITING = "", "—"
    QUEUED = "QUEUED", "Queued"
    HELD = "HELD", "Held by another DRS job"
    STARTING = "STARTING", "Starting job"
    SNAPSHOT = "SNAPSHOT", "Taking snapshot"
    CONVERSION = "CONVERSION", "Converting"
    LAUNCHING = "LAUNCHING", "Launching instance"
    POST_LAUNCH = "POST_LAUNCH", "Post-launch actions"
    READY = "READY", "Ready"
    FAILED = "FAILED", "Failed"
    TERMINATING = "TERMINATING", "Terminating"
    TERMINATED = "TERMINATED", "Terminated"


class JobState(models.TextChoices):
    """Our side of a DRS job. INTENDED is written *before* StartRecovery is called, so a crash
    between the call and storing the job id leaves a row that the next advance resolves by
    looking the job up by its launch-token tag."""

    INTENDED = "INTENDED", "Intended (not yet confirmed by DRS)"
    ACTIVE = "ACTIVE", "Active in DRS"
    COMPLETED = "COMPLETED", "Completed"
    ABANDONED = "ABANDONED", "Never reached DRS"
    # DRS could not be asked (unreachable target, failing credentials) for longer than the
    # engine waits: whether the job exists is unknown. Its servers were failed, never
    # relaunched automatically; a person's retry decides.
    UNKNOWN = "UNKNOWN", "Outcome unknown (DRS unreachable)"


JOB_OPEN = frozenset({JobState.INTENDED, JobState.ACTIVE})


class JobType(models.TextChoices):
    LAUNCH = "LAUNCH", "Launch"
    TERMINATE = "TERMINATE", "Terminate"


class EventKind(models.TextChoices):
    STATUS = "STATUS", "Status change"
    ACTION = "ACTION", "Human action"
    DRS = "DRS", "DRS job log"
    ENGINE = "ENGINE", "Engine"
    ERROR = "ERROR", "Error"


class ActionStatus(models.TextChoices):
    """A wave action of an execution (ActionRun). WAITING: a manual action waits for a person."""

    PENDING = "PENDING", "Pending"
    RUNNING = "RUNNING", "Running"
    WAITING = "WAITING", "Waiting for an Operator"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"
    TIMED_OUT = "TIMED_OUT", "Timed out"
    CANCELLED = "CANCELLED", "Cancelled"
    SKIPPED = "SKIPPED", "Skipped"


ACTION_TERMINAL = frozenset(
    {
        ActionStatus.SUCCEEDED,
        ActionStatus.FAILED,
        ActionStatus.TIMED_OUT,
        ActionStatus.CANCELLED,
        ActionStatus.SKIPPED,
    }
)
# The ends that count as the action's failure (its on_failure decides what the wave does).
ACTION_FAILED = frozenset({ActionStatus.FAILED, ActionStatus.TIMED_OUT})
# What a retry of the execution runs again (with attempt + 1).
ACTION_RETRYABLE = frozenset(
    {ActionStatus.FAILED, ActionStatus.TIMED_OUT, ActionStatus.CANCELLED, ActionStatus.SKIPPED}
)

ACTION_TRANSITIONS = {
    ActionStatus.PENDING: {
        ActionStatus.RUNNING,
        ActionStatus.WAITING,
        ActionStatus.SKIPPED,
        ActionStatus.CANCELLED,
        ActionStatus.FAILED,
    },
    ActionStatus.RUNNING: {ActionStatus.SUCCEEDED, ActionStatus.FAILED, ActionStatus.TIMED_OUT, ActionStatus.CANCELLED},
    ActionStatus.WAITING: {ActionStatus.SUCCEEDED, ActionStatus.TIMED_OUT, ActionStatus.CANCELLED},
    ActionStatus.SUCCEEDED: set(),
    ActionStatus.FAILED: {ActionStatus.PENDING},
    ActionStatus.TIMED_OUT: {ActionStatus.PENDING},
    ActionStatus.CANCELLED: {ActionStatus.PENDING},
    ActionStatus.SKIPPED: {ActionStatus.PENDING},
}


class ScheduledRunOutcome(models.TextChoices):
    """What the worker did with a slot of a plan's drill schedule. STARTING while a worker has
    claimed the slot and is starting its drill (a claim that expires: see ScheduledDrillRun)."""

    STARTING = "STARTING", "Starting"
    STARTED = "STARTED", "Started"
    SKIPPED = "SKIPPED", "Skipped"
