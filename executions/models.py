"""Executions of recovery plans: the frozen waves and servers, the DRS jobs and the audit log.

An execution never reads its plan again after it starts: WaveRun and ServerLaunch rows,
created at start, are its frozen copy, so editing a plan never changes a running execution.
"""

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from .choices import (
    ACTION_TERMINAL,
    ACTION_TRANSITIONS,
    EXECUTION_ACTIVE,
    EXECUTION_CAN_MEET_TARGETS,
    EXECUTION_TERMINAL,
    EXECUTION_TRANSITIONS,
    LAUNCH_TERMINAL,
    LAUNCH_TRANSITIONS,
    WAVE_TERMINAL,
    WAVE_TRANSITIONS,
    ActionStatus,
    EventKind,
    ExecutionMode,
    ExecutionStatus,
    JobState,
    JobType,
    LaunchPhase,
    LaunchStatus,
    ScheduledRunOutcome,
    WaveStatus,
)


class InvalidTransition(Exception):
    """A status change that the declared transitions do not allow."""


class StatusMixin:
    """Guards `status` changes with a transitions table: illegal moves raise InvalidTransition."""

    TRANSITIONS: dict = {}

    def can_transition_to(self, status):
        return status == self.status or status in self.TRANSITIONS.get(self.status, ())

    def check_transition(self, status):
        if not self.can_transition_to(status):
            raise InvalidTransition(f"{type(self).__name__} {self.pk} cannot go from {self.status} to {status}.")


class ExecutionQuerySet(models.QuerySet):
    """Executions by status group."""

    def active(self):
        return self.filter(status__in=EXECUTION_ACTIVE)


class Execution(StatusMixin, models.Model):
    """One run of a recovery plan as a DRILL or a RECOVERY."""

    TRANSITIONS = EXECUTION_TRANSITIONS

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    plan = models.ForeignKey("plans.RecoveryPlan", on_delete=models.PROTECT, related_name="executions")
    plan_name = models.CharField(max_length=150, help_text="The plan's name when the execution started.")
    mode = models.CharField(max_length=10, choices=ExecutionMode.choices)
    status = models.CharField(max_length=20, choices=ExecutionStatus.choices, default=ExecutionStatus.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_username = models.CharField(max_length=150, blank=True)
    auto_approve = models.BooleanField(default=False)
    # Unique per requester (execution_idempotency_key_per_requester): another user's request
    # with the same key is another request.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    rto_target_minutes = models.PositiveIntegerField()
    rpo_target_minutes = models.PositiveIntegerField()
    plan_snapshot = models.JSONField(default=dict, help_text="The plan as it was at start.")
    accepted_risks = models.JSONField(
        default=list,
        blank=True,
        help_text="The readiness warnings the person who started it accepted (their messages).",
    )
    point_in_time = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Launch every server from its latest recovery snapshot at or before this time "
        "(e.g. before a ransomware attack); null: from a fresh snapshot, as DRS does.",
    )
    comment = models.CharField(
        max_length=1000, blank=True, help_text="Why it was started, in the words of who started it (optional)."
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cleaned_up_at = models.DateTimeField(null=True, blank=True)
    # The evidence, on DRS's clock, set when the execution ends (a retry clears it): from the
    # start to the last critical server's launch, and the oldest recovery snapshot a server
    # was launched from, measured from the start.
    rto_achieved_seconds = models.FloatField(null=True, blank=True)
    rpo_worst_seconds = models.FloatField(null=True, blank=True)
    # Targets whose DRS calls failed in the last ticks because DRS could not be reached or
    # asked (endpoint, credentials, permissions to read jobs): {"<target id>": {"since": ISO,
    # "ticks": consecutive failed ticks, "error": the cause}}. The engine gives up on a target
    # after a bounded time (engine.jobs.give_up_unreachable), so nothing waits forever.
    drs_trouble = models.JSONField(default=dict, blank=True)
    # An advance holds the execution for a short lease, so two workers (or a worker and
    # `drill --wait`) never advance one execution at the same time.
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    objects = ExecutionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status"]), models.Index(fields=["plan", "status"])]
        constraints = [
            # The database, not only the service, guarantees one active execution per plan, so
            # two starts racing in two processes cannot both win.
            models.UniqueConstraint(
                fields=["plan"],
                condition=models.Q(status__in=sorted(EXECUTION_ACTIVE)),
                name="execution_one_active_per_plan",
            ),
            # By the requester's name, which the execution keeps when the user is deleted.
            models.UniqueConstraint(
                fields=["requested_by_username", "idempotency_key"],
                name="execution_idempotency_key_per_requester",
            ),
        ]
        permissions = [
            ("start_drill", "Can start a drill"),
            ("start_recovery", "Can start a recovery"),
            ("approve_execution", "Can approve an approval gate"),
            ("cancel_execution", "Can cancel an execution"),
            ("retry_execution", "Can retry failed waves"),
            ("cleanup_execution", "Can clean up drill instances"),
        ]

    def __str__(self):
        return f"{self.get_mode_display()} of {self.plan_name} ({str(self.pk)[:8]})"

    def get_absolute_url(self):
        return reverse("executions:detail", args=[self.pk])

    @property
    def is_terminal(self):
        return self.status in EXECUTION_TERMINAL

    @property
    def is_drill(self):
        return self.mode == ExecutionMode.DRILL

    def elapsed_seconds(self, now=None):
        if not self.started_at:
            return 0.0
        end = self.finished_at or now or timezone.now()
        return max(0.0, (end - self.started_at).total_seconds())

    def verdict(self, seconds: float | None, target_minutes: int, *, status: str | None = None) -> bool | None:
        """None while it runs; False unless it ended (or ends, `status`) SUCCEEDED or PARTIAL
        within the target; None when the measure is unknown."""
        status = status or self.status
        if status not in EXECUTION_TERMINAL:
            return None
        if status not in EXECUTION_CAN_MEET_TARGETS:
            return False
        if seconds is None:
            return None
        return seconds <= target_minutes * 60

    @property
    def rto_achieved(self) -> float | None:
        """Seconds from the start to the last critical server's launch on DRS's clock (the
        whole elapsed time for executions that ended before this was recorded)."""
        if self.rto_achieved_seconds is not None:
            return self.rto_achieved_seconds
        return self.elapsed_seconds() if self.finished_at and self.started_at else None

    @property
    def rto_met(self) -> bool | None:
        """The RTO verdict: None while it runs, never True for a failed, timed-out or cancelled
        execution (a drill that did not recover proves nothing about the RTO)."""
        return self.verdict(self.rto_achieved, self.rto_target_minutes)

    @property
    def rpo_met(self) -> bool | None:
        """The RPO verdict on the worst server, with the same rules as `rto_met`."""
        return self.verdict(self.rpo_worst_seconds, self.rpo_target_minutes)


class WaveRun(StatusMixin, models.Model):
    """A wave of an execution, frozen from the plan at start."""

    TRANSITIONS = WAVE_TRANSITIONS

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="wave_runs")
    index = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=WaveStatus.choices, default=WaveStatus.PENDING)
    depends_on = models.JSONField(default=list, help_text="Indexes of the waves this one waits for.")
    approval_required = models.BooleanField(default=False)
    wait_after_minutes = models.PositiveIntegerField(default=0)
    timeout_minutes = models.PositiveIntegerField(default=120)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When its servers were first submitted.")
    deadline_at = models.DateTimeField(null=True, blank=True)
    wait_until = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # How many actions run before its launch and after it (frozen at start): a wave without
    # any never loads an ActionRun, so the engine makes no query for them.
    before_actions = models.PositiveSmallIntegerField(default=0)
    after_actions = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["execution", "index"]
        constraints = [models.UniqueConstraint(fields=["execution", "index"], name="wave_run_unique_index")]

    def __str__(self):
        return f"{self.number}: {self.name}"

    @property
    def number(self) -> int:
        """The 1-based number every page, event, audit entry and report shows; `index` (from 0)
        stays the key that dependencies, the API's `wave_index` and DRS job tags use."""
        return self.index + 1

    @property
    def is_terminal(self):
        return self.status in WAVE_TERMINAL


class ServerLaunch(StatusMixin, models.Model):
    """One source server of an execution: its launch, recovery instance and errors."""

    TRANSITIONS = LAUNCH_TRANSITIONS

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="server_launches")
    wave_run = models.ForeignKey(WaveRun, on_delete=models.CASCADE, related_name="server_launches")
    target = models.ForeignKey("plans.Target", on_delete=models.PROTECT, related_name="+")
    server = models.ForeignKey(
        "plans.SourceServer",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="launches",
        help_text="The inventory row, while it exists; source_server_id keeps the DRS id regardless.",
    )
    source_server_id = models.CharField(max_length=19)
    hostname = models.CharField(max_length=255, blank=True)
    critical = models.BooleanField(default=True)
    status = models.CharField(
        "launch status", max_length=20, choices=LaunchStatus.choices, default=LaunchStatus.NOT_STARTED
    )
    phase = models.CharField(max_length=20, choices=LaunchPhase.choices, blank=True, default=LaunchPhase.WAITING)
    job = models.ForeignKey("DrsJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="servers")
    cleanup_job = models.ForeignKey(
        "DrsJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="cleaned_servers",
        help_text="The TERMINATE job its recovery instance was sent in, once a clean-up sent it.",
    )
    recovery_instance_id = models.CharField(max_length=32, blank=True)
    launched_at = models.DateTimeField(null=True, blank=True, help_text="When DRS launched it, on DRS's clock.")
    ended_at = models.DateTimeField(
        null=True, blank=True, help_text="When DRS ended this launch (launched or failed), on DRS's clock."
    )
    snapshot_at = models.DateTimeField(
        null=True, blank=True, help_text="The point-in-time snapshot DRS launched it from."
    )
    post_launch_status = models.CharField(max_length=20, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    terminated_at = models.DateTimeField(null=True, blank=True)
    recovery_snapshot_id = models.CharField(
        max_length=32,
        blank=True,
        help_text="The recovery snapshot a point-in-time execution launches it from, once looked up "
        "(kept, so a retry or a later batch does not ask DRS again).",
    )

    class Meta:
        ordering = ["wave_run__index", "hostname", "source_server_id"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "source_server_id"], name="server_launch_unique_server"),
        ]
        indexes = [models.Index(fields=["source_server_id", "status"])]

    def __str__(self):
        return self.hostname or self.source_server_id

    @property
    def is_terminal(self):
        return self.status in LAUNCH_TERMINAL


class DrsJob(models.Model):
    """A DRS job this execution asked for, recorded *before* the call that creates it."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="jobs")
    wave_run = models.ForeignKey(WaveRun, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    target = models.ForeignKey("plans.Target", on_delete=models.PROTECT, related_name="+")
    type = models.CharField(max_length=12, choices=JobType.choices, default=JobType.LAUNCH)
    launch_token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    job_id = models.CharField("DRS job ID", max_length=32, null=True, blank=True, unique=True)
    state = models.CharField(max_length=12, choices=JobState.choices, default=JobState.INTENDED)
    drs_status = models.CharField("DRS status", max_length=12, blank=True)
    is_drill = models.BooleanField(default=True)
    server_count = models.PositiveIntegerField(default=0)
    requested_at = models.DateTimeField(default=timezone.now)
    drs_created_at = models.DateTimeField(null=True, blank=True)
    drs_ended_at = models.DateTimeField(null=True, blank=True)
    log_items_seen = models.PositiveIntegerField(default=0)
    log_read_at = models.DateTimeField(null=True, blank=True, help_text="When the job log was last read.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["requested_at"]
        indexes = [models.Index(fields=["target", "state"])]
        verbose_name = "DRS job"

    def __str__(self):
        return self.job_id or f"intended {self.type.lower()} job {self.launch_token}"


class ActionRun(StatusMixin, models.Model):
    """A wave action of an execution (a runbook step), frozen from the plan at start, and how
    it ran: its intent, the SSM ids or webhook delivery it made, its output and error.

    Exactly once: its outside call (StartAutomationExecution, SendCommand, a webhook POST) is
    made only after `intent_at` was committed by a conditional UPDATE; the ids it got are
    recorded after. A crash in between leaves `intent_at` without ids, which the next tick
    reconciles (same ClientToken, the command found by its comment, the same delivery id)
    instead of calling blindly again (engine/actions/)."""

    TRANSITIONS = ACTION_TRANSITIONS
    MAX_OUTPUT = 4000

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="action_runs")
    wave_run = models.ForeignKey(WaveRun, on_delete=models.CASCADE, related_name="action_runs")
    position = models.PositiveSmallIntegerField(help_text="Order among the wave's actions, from 0.")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20)
    when = models.CharField(max_length=10)
    config = models.JSONField(default=dict, blank=True)
    timeout_minutes = models.PositiveIntegerField(default=30)
    on_failure = models.CharField(max_length=10)
    status = models.CharField(max_length=20, choices=ActionStatus.choices, default=ActionStatus.PENDING)
    attempt = models.PositiveSmallIntegerField(default=1, help_text="1, then one more per retry of the execution.")
    intent_at = models.DateTimeField(
        null=True, blank=True, help_text="When the outside call of this attempt was committed to, before making it."
    )
    external = models.JSONField(
        default=dict,
        blank=True,
        help_text="What the outside world gave: automation execution ids by instance, the command id, "
        "the webhook's delivery id and attempts.",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    output = models.TextField(blank=True)
    error = models.TextField(blank=True)
    completed_by_username = models.CharField(max_length=150, blank=True)
    comment = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["wave_run__index", "-when", "position"]  # before, then after
        constraints = [models.UniqueConstraint(fields=["execution", "name"], name="action_run_unique_name")]

    def __str__(self):
        return f"{self.name} ({self.kind}, {self.status})"

    @property
    def is_terminal(self):
        return self.status in ACTION_TERMINAL


class LaunchAttempt(models.Model):
    """One launch of a server in one DRS job, on DRS's clock. A retry adds one and never
    overwrites the earlier: the evidence keeps every failure and the retry that followed."""

    launch = models.ForeignKey(ServerLaunch, on_delete=models.CASCADE, related_name="launch_attempts")
    job = models.ForeignKey(DrsJob, on_delete=models.CASCADE, related_name="attempts")
    launch_status = models.CharField(max_length=20, choices=LaunchStatus.choices)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When DRS created the job.")
    ended_at = models.DateTimeField(null=True, blank=True, help_text="When DRS launched or failed it.")

    class Meta:
        ordering = ["started_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["launch", "job"], name="launch_attempt_unique_job")]

    def __str__(self):
        return f"{self.launch} in {self.job}: {self.launch_status}"


class ServerClaim(models.Model):
    """A source server held by an active execution. The unique constraint, not a check in
    Python, makes a server belong to at most one active execution: two starts racing in two
    processes cannot both claim it. Claims are created with the execution (and again by a
    retry) and deleted in the transaction that makes the execution terminal."""

    target = models.ForeignKey("plans.Target", on_delete=models.PROTECT, related_name="+")
    source_server_id = models.CharField(max_length=19)
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="server_claims")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["target", "source_server_id"], name="server_claim_one_execution"),
        ]

    def __str__(self):
        return f"{self.source_server_id} held by {self.execution_id}"


class ExecutionEvent(models.Model):
    """An entry of an execution's audit log: status changes, human actions, DRS job log items."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=10, choices=EventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True, help_text="User name, or 'drsorch' for the engine.")
    wave_index = models.PositiveSmallIntegerField(null=True, blank=True)
    source_server_id = models.CharField(max_length=19, blank=True)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    # Set for events copied from DRS (job log items), so re-reading a log adds nothing twice.
    dedupe_key = models.CharField(max_length=200, null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "dedupe_key"], name="event_unique_dedupe_key"),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.message}"


class PollerLease(models.Model):
    """The one row that says which django-q2 task polls executions right now.

    Pollers are short tasks that hand over to a successor (executions/poller.py); the lease
    keeps two of them from ticking together, and `last_tick_at` lets a successor keep its
    predecessor's pace. Its owner renews it every few seconds, so a worker that dies lets it
    expire quickly and the next poller carries on."""

    name = models.CharField(max_length=32, primary_key=True)
    owner = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_tick_at = models.DateTimeField(null=True, blank=True, help_text="When the poller last ticked the engine.")

    def __str__(self):
        return f"poller lease {self.name} ({self.owner or 'free'})"


class ScheduledDrillRun(models.Model):
    """A slot of a plan's drill schedule that the worker took: STARTING while a worker starts
    its drill, then the drill it STARTED, or why it SKIPPED it (the plan already running,
    readiness errors, the slot missed).

    The unique (plan, scheduled_for) is what makes a slot run at most once: two workers racing
    for it both insert, the database lets one win, and the loser does nothing. The row is
    inserted STARTING with `claimed_until` in a short transaction of its own (the claim); the
    drill is started with no transaction open (readiness reads DRS), and the outcome recorded
    with a conditional UPDATE of a STARTING row. A claim left STARTING past `claimed_until`
    (the worker stopped) is taken over by the next run (executions/unattended/
    scheduled_drills.py); the execution's idempotency key makes a second start of the slot
    return the first one's execution."""

    plan = models.ForeignKey("plans.RecoveryPlan", on_delete=models.CASCADE, related_name="scheduled_drill_runs")
    scheduled_for = models.DateTimeField(help_text="The cron slot (UTC) this run is for.")
    outcome = models.CharField(max_length=10, choices=ScheduledRunOutcome.choices)
    reason = models.TextField(blank=True, help_text="Why the slot was skipped.")
    execution = models.ForeignKey(
        Execution, null=True, blank=True, on_delete=models.SET_NULL, related_name="scheduled_runs"
    )
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="While STARTING: when the worker's claim expires and another may take over."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-scheduled_for"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "scheduled_for"], name="scheduled_drill_run_one_per_slot"),
        ]
        # Every minute: the sweep of stale STARTING claims and the pruning of old SKIPPED rows.
        indexes = [models.Index(fields=["outcome", "scheduled_for"], name="scheduled_drill_run_outcome")]

    def __str__(self):
        return f"{self.plan} at {self.scheduled_for:%Y-%m-%d %H:%M} UTC: {self.outcome}"
