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

