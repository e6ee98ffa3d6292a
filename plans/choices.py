"""Choices of the plans app, declared once."""

from django.db import models


class TargetKind(models.TextChoices):
    AWS = "aws", "AWS (real DRS)"
    SANDBOX = "sandbox", "Sandbox (simulated DRS)"


class ReplicationState(models.TextChoices):
    """dataReplicationInfo.dataReplicationState as DRS reports it."""

    STOPPED = "STOPPED", "Stopped"
    INITIATING = "INITIATING", "Initiating"
    INITIAL_SYNC = "INITIAL_SYNC", "Initial sync"
    BACKLOG = "BACKLOG", "Backlog"
    CREATING_SNAPSHOT = "CREATING_SNAPSHOT", "Creating snapshot"
    CONTINUOUS = "CONTINUOUS", "Continuous"
    PAUSED = "PAUSED", "Paused"
    RESCAN = "RESCAN", "Rescan"
    STALLED = "STALLED", "Stalled"
    DISCONNECTED = "DISCONNECTED", "Disconnected"
    UNKNOWN = "UNKNOWN", "Unknown"



class ActionKind(models.TextChoices):
    """What a wave action (a runbook step) does (contract: Wave actions)."""

    SSM_AUTOMATION = "ssm_automation", "SSM automation (per recovered instance)"
    SSM_COMMAND = "ssm_command", "SSM Run Command (on the wave's instances)"
    WEBHOOK = "webhook", "Webhook (signed POST of the execution)"
    MANUAL = "manual", "Manual task (an Operator completes it)"
    HEALTH_CHECK = "health_check", "Health check (EC2 status checks, SSM ping)"


class ActionWhen(models.TextChoices):
    """When a wave action runs: before the wave's servers launch, or after they all launched."""

    BEFORE = "before", "Before launch"
    AFTER = "after", "After launch"


class ActionOnFailure(models.TextChoices):
    """What a failed (or timed-out) action does to its wave."""

    FAIL = "fail", "Fail the wave (dependents are skipped)"
    CONTINUE = "continue", "Record the failure and go on"


# Kinds that act on the wave's recovered instances, so they cannot run before the launch.
ACTION_KINDS_AFTER_LAUNCH_ONLY = frozenset({ActionKind.SSM_AUTOMATION, ActionKind.SSM_COMMAND, ActionKind.HEALTH_CHECK})
