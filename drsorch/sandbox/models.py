"""State of the simulated DRS (and its EC2 subset).

These rows stand for what AWS knows. They live behind the `sandbox` database alias (see
routers.py) and are committed as soon as they are written, so a caller's rollback or crash
never undoes what "AWS" did.

Progress is not stored as a status: when a job is created, the moment of every step is
computed and stored (snapshot, conversion, launch, post-launch actions, end), and every
read derives the status from those moments and `timezone.now()`. Nothing has to run in the
background, and tests move time with time-machine.
"""

import secrets
import string

from django.conf import settings
from django.db import IntegrityError, models

ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"


def _random(alphabet, length):
    """`length` characters drawn uniformly from `alphabet`.

    One read of the OS's randomness per ID (secrets.choice reads it once per character, which
    showed in StartRecovery's time); bytes that would favour the first characters are dropped.
    """
    usable = 256 - 256 % len(alphabet)
    chosen = []
    while len(chosen) < length:
        chosen += [alphabet[byte % len(alphabet)] for byte in secrets.token_bytes(2 * length) if byte < usable]
    return "".join(chosen[:length])


def new_source_server_id():
    """A source server ID as DRS makes them: `s-` and 17 letters or digits."""
    return "s-" + _random(ALNUM, 17)


def new_job_id():
    """A job ID: `drsjob-` and 17 letters or digits."""
    return "drsjob-" + _random(ALNUM, 17)


def new_instance_id():
    """An EC2 instance ID (which is also the recovery instance ID): `i-` and 17 hex digits."""
    return "i-" + _random(HEX, 17)


def new_snapshot_id():
    """A recovery snapshot ID: `pit-` and 17 letters or digits."""
    return "pit-" + _random(ALNUM, 17)


class SandboxSettings(models.Model):
    """How the simulated DRS behaves, one row for every process (pk is always PK)."""

    PK = 1

    launch_seconds = models.FloatField(help_text="Typical time from StartRecovery to LAUNCHED.")
    throttle_rate = models.FloatField(default=0.0, help_text="Share of calls answered with ThrottlingException.")
    fail_launch = models.JSONField(default=list, blank=True, help_text="Hostnames or source server IDs that fail.")
    crash_after_start_recovery = models.BooleanField(default=False)
    disconnect = models.JSONField(
        default=list, blank=True, help_text="Hostnames or source server IDs disconnected by `configure`."
    )
    busy = models.JSONField(
        default=list, blank=True, help_text="Hostnames or source server IDs an outside job was started for."
    )
    busy_seconds = models.FloatField(default=120.0, help_text="How long the outside job of `busy` holds them.")
    omit_instance_ids = models.BooleanField(default=False, help_text="Jobs answer without recoveryInstanceID.")
    deny = models.JSONField(default=list, blank=True, help_text="DRS operations answered with AccessDenied.")
    latency_ms = models.PositiveIntegerField(default=0, help_text="Milliseconds every simulated call takes.")
    fail_post_launch = models.JSONField(
        default=list, blank=True, help_text="Hostnames or source server IDs whose post-launch actions fail."
    )
    no_job_tags = models.BooleanField(default=False, help_text="Jobs answer without their tags.")
    fail_ssm = models.JSONField(
        default=list, blank=True, help_text="SSM documents whose automations and commands fail."
    )
    call_count = models.BigIntegerField(default=0, help_text="Calls counted since throttling was configured.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "sandbox settings"
        verbose_name_plural = "sandbox settings"

    def __str__(self):
        return "Sandbox settings"

    @classmethod
    def load(cls):
        """The settings row, created with the defaults on first use."""
        defaults = {"launch_seconds": settings.DRSORCH_SANDBOX_LAUNCH_SECONDS}
        try:
            return cls.objects.get_or_create(pk=cls.PK, defaults=defaults)[0]
        except IntegrityError:
            # Another process created the row between our read and our insert.
            return cls.objects.get(pk=cls.PK)


class SandboxRegion(models.Model):
    """Per account and region flags; a region without a row is initialized."""

    account_id = models.CharField(max_length=12)
    region = models.CharField(max_length=32)
    uninitialized = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account_id", "region"], name="sandbox_region_unique")]

    def __str__(self):
        return f"{self.account_id}/{self.region}"


class SandboxSourceServer(models.Model):
    """A simulated replicating source server of one account and region."""

    source_server_id = models.CharField(max_length=19, unique=True, default=new_source_server_id)
    account_id = models.CharField(max_length=12)
    region = models.CharField(max_length=32)
    hostname = models.CharField(max_length=255)
    fqdn = models.CharField(max_length=255, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    replication_state = models.CharField(max_length=20, default="CONTINUOUS")
    lag_seconds = models.PositiveIntegerField(default=0, help_text="Lag when replicating (or when disconnected).")
    disconnected_at = models.DateTimeField(
        null=True, blank=True, help_text="DISCONNECTED from then on: no new snapshots, the lag grows."
    )
    snapshots_since = models.DateTimeField(
        null=True, blank=True,
        help_text="DRS takes a snapshot every 10 minutes from then on (see history.py); null: none yet.",
    )
    recommended_instance_type = models.CharField(max_length=64, default="m5.large")
    os_name = models.CharField(max_length=255, default="Ubuntu 22.04.4 LTS")
    cpu_cores = models.PositiveSmallIntegerField(default=2)
    ram_bytes = models.BigIntegerField(default=8 * 1024**3)
    disk_bytes = models.BigIntegerField(default=50 * 1024**3)
    post_launch_actions = models.JSONField(
        default=list, blank=True, help_text="LaunchAction records run through SSM after a launch."
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["account_id", "region", "hostname", "source_server_id"]
        indexes = [models.Index(fields=["account_id", "region"])]

    def __str__(self):
        return f"{self.hostname} ({self.source_server_id})"

    @property
    def arn(self):
        return f"arn:aws:drs:{self.region}:{self.account_id}:source-server/{self.source_server_id}"


class SandboxRecoverySnapshot(models.Model):
    """A point-in-time snapshot of a source server a launch took or started from (the periodic
    history is computed, not stored: see history.py)."""

    snapshot_id = models.CharField(max_length=21, unique=True, default=new_snapshot_id)
    source_server = models.ForeignKey(SandboxSourceServer, on_delete=models.CASCADE, related_name="snapshots")
    expected_timestamp = models.DateTimeField()
    timestamp = models.DateTimeField(help_text="When the snapshot was taken; not visible before.")

    class Meta:
        ordering = ["expected_timestamp", "id"]

    def __str__(self):
        return self.snapshot_id


class SandboxJob(models.Model):
    """A DRS job (LAUNCH or TERMINATE), with the moments it starts and ends."""

    job_id = models.CharField(max_length=24, unique=True, default=new_job_id)
    account_id = models.CharField(max_length=12)
    region = models.CharField(max_length=32)
    type = models.CharField(max_length=30)
    initiated_by = models.CharField(max_length=40)
    is_drill = models.BooleanField(default=False)
    tags = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(help_text="JOB_START: PENDING before, STARTED after.")
    ends_at = models.DateTimeField(help_text="JOB_END: COMPLETED from then on.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account_id", "region", "created_at"]),
            models.Index(fields=["ends_at"]),
        ]

    def __str__(self):
        return self.job_id

    @property
    def arn(self):
        return f"arn:aws:drs:{self.region}:{self.account_id}:job/{self.job_id}"


class SandboxRecoveryInstance(models.Model):
    """An EC2 instance a launch created; it exists from `launched_at` on."""

    instance_id = models.CharField(max_length=19, unique=True, default=new_instance_id)
    account_id = models.CharField(max_length=12)
    region = models.CharField(max_length=32)
    source_server = models.ForeignKey(
        SandboxSourceServer, on_delete=models.CASCADE, related_name="recovery_instances"
    )
    job = models.ForeignKey(SandboxJob, on_delete=models.CASCADE, related_name="launched_instances")
    is_drill = models.BooleanField(default=False)
    instance_type = models.CharField(max_length=64)
    tags = models.JSONField(default=dict, blank=True)
    point_in_time = models.DateTimeField(help_text="Time of the snapshot the instance was launched from.")
    launched_at = models.DateTimeField()
    terminate_job = models.ForeignKey(
        SandboxJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="terminated_instances"
    )
    terminating_at = models.DateTimeField(null=True, blank=True, help_text="SHUTTING-DOWN from then on.")
    terminated_at = models.DateTimeField(null=True, blank=True, help_text="TERMINATED from then on.")
    replaced = models.BooleanField(
        default=False, help_text="Terminated by DRS at a later launch of its server (terminate_job is that launch)."
    )

    class Meta:
        ordering = ["launched_at", "id"]
        indexes = [models.Index(fields=["account_id", "region", "launched_at"])]

    def __str__(self):
        return self.instance_id

    @property
    def arn(self):
        return f"arn:aws:drs:{self.region}:{self.account_id}:recovery-instance/{self.instance_id}"


class SandboxJobServer(models.Model):
    """One source server taking part in a job, with the moments of each of its steps."""

    job = models.ForeignKey(SandboxJob, on_delete=models.CASCADE, related_name="servers")
    source_server = models.ForeignKey(SandboxSourceServer, on_delete=models.CASCADE, related_name="job_servers")
    position = models.PositiveIntegerField(help_text="Order of the server in the request.")
    snapshot = models.ForeignKey(SandboxRecoverySnapshot, null=True, blank=True, on_delete=models.SET_NULL)
    used_previous_snapshot = models.BooleanField(default=False)
    snapshot_failed = models.BooleanField(
        default=False, help_text="A disconnected server without any snapshot: USING_PREVIOUS_SNAPSHOT_FAILED."
    )
    snapshot_start = models.DateTimeField()
    snapshot_end = models.DateTimeField()
    conversion_start = models.DateTimeField()
    conversion_end = models.DateTimeField()
    launch_start = models.DateTimeField()
    launch_end = models.DateTimeField(help_text="LAUNCHED, FAILED or (for TERMINATE) TERMINATED from then on.")
    actions_end = models.DateTimeField(null=True, blank=True, help_text="Post-launch actions SUCCEEDED then.")
    failed = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    post_launch_actions = models.JSONField(default=list, blank=True)
    actions_failed = models.BooleanField(default=False, help_text="Post-launch action runs end FAILED.")
    recovery_instance_id = models.CharField(max_length=19, blank=True)
    replaced_instance_ids = models.JSONField(
        default=list, blank=True, help_text="Live recovery instances of an earlier job this launch terminates."
    )

    class Meta:
        ordering = ["job", "position"]
        indexes = [models.Index(fields=["source_server", "launch_end"])]

    def __str__(self):
        return f"{self.source_server_id} in {self.job_id}"


class SandboxSnsMessage(models.Model):
    """A message the simulated SNS accepted (Publish), kept so tests and `sandbox status` show it."""

    message_id = models.CharField(max_length=36, unique=True)
    account_id = models.CharField(max_length=12)
    region = models.CharField(max_length=32)
    topic_arn = models.CharField(max_length=400)
    subject = models.CharField(max_length=100, blank=True)
    message = models.TextField()
    published_at = models.DateTimeField()

    class Meta:
        ordering = ["published_at", "id"]

    def __str__(self):
        return f"{self.message_id} to {self.topic_arn}"


class SandboxAutomationExecution(models.Model):
    """An SSM Automation execution (StartAutomationExecution), with the moments it starts and
    ends; its status is derived from them, the stop request and the current time (drsorch/sandbox/ssm/)."""

    execution_id = models.CharField(max_length=36, unique=True)
    account_id = models.CharField(max_length=12)
    region = models.CharField(max_length=32)
    document_name = models.CharField(max_length=128)
    document_version = models.CharField(max_length=10, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    client_token = models.CharField(max_length=36, blank=True, help_text="Lower-cased; empty when none was given.")
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(help_text="Pending before, InProgress after.")
    ends_at = models.DateTimeField(help_text="Success or Failed from then on, unless stopped before.")
    failed = models.BooleanField(default=False)
    failure_message = models.TextField(blank=True)
    stop_requested_at = models.DateTimeField(null=True, blank=True, help_text="Cancelling from then on.")
    stop_type = models.CharField(max_length=10, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # One execution per client token: two processes retrying at once cannot both start one.
            models.UniqueConstraint(fields=["account_id", "region", "client_token"],
                                    condition=~models.Q(client_token=""), name="sandbox_automation_token_unique"),
        ]

    def __str__(self):
        return self.execution_id


class SandboxCommand(models.Model):
    """An SSM Run Command (SendCommand): one invocation per instance."""

    command_id = models.CharField(max_length=36, unique=True)
    account_id = models.CharField(max_length=12)
    region = models.CharField(max_length=32)
    document_name = models.CharField(max_length=128)
    document_version = models.CharField(max_length=10, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    comment = models.CharField(max_length=100, blank=True)
    timeout_seconds = models.PositiveIntegerField(default=3600)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["account_id", "region", "created_at"])]

    def __str__(self):
        return self.command_id


class SandboxCommandInvocation(models.Model):
    """One instance's part in a command, with the moments it starts and ends."""

    command = models.ForeignKey(SandboxCommand, on_delete=models.CASCADE, related_name="invocations")
    instance_id = models.CharField(max_length=19)
    position = models.PositiveIntegerField()
    started_at = models.DateTimeField(help_text="Pending before, InProgress after.")
    ends_at = models.DateTimeField(help_text="Success, Failed or TimedOut from then on, unless cancelled before.")
    failed = models.BooleanField(default=False)
    timed_out = models.BooleanField(default=False, help_text="The document's executionTimeout ended it.")
    cancel_requested_at = models.DateTimeField(null=True, blank=True, help_text="Cancelling from then on.")

    class Meta:
        ordering = ["command", "position"]

    def __str__(self):
        return f"{self.command_id} on {self.instance_id}"
