"""Targets, the DRS source-server inventory, protection groups and recovery plans."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.urls import reverse

from .choices import ActionKind, ActionOnFailure, ActionWhen, ReplicationState, TargetKind
from .schedules import DRILL_SCHEDULE_MAX_LENGTH, validate_drill_schedule

MAX_DRILL_INSTANCE_TTL_MINUTES = 10080  # a week
MAX_DRILL_AGE_DAYS = 3660  # ten years

# \A...\Z and ASCII classes: `$` also matches before a trailing newline, and `\d`/`\w` accept
# any script's digits and letters, which AWS refuses on every call.
account_id_validator = RegexValidator(r"\A[0-9]{12}\Z", "An AWS account ID is exactly 12 digits.")
region_validator = RegexValidator(
    r"\A[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}\Z",
    "Enter an AWS region code such as us-east-1 or eu-west-2.",
)
role_arn_validator = RegexValidator(
    r"\Aarn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]{1,512}\Z",
    "Enter an IAM role ARN such as arn:aws:iam::123456789012:role/drsorch.",
)
external_id_validator = RegexValidator(
    r"\A[A-Za-z0-9_+=,.@:/-]{2,1224}\Z",
    "An external ID is 2 to 1224 characters of letters, digits and _ + = , . @ : / - (what STS "
    "AssumeRole accepts).",
)
source_server_id_validator = RegexValidator(
    r"\As-[0-9a-zA-Z]{17}\Z", "A DRS source server ID is 's-' followed by 17 letters or digits."
)

TAG_KEY_RE = re.compile(r"^[\w .:/=+@-]{1,128}$")
TAG_VALUE_RE = re.compile(r"^[\w .:/=+@-]{0,256}$")


def validate_tag_selector(value):
    """A tag selector is a JSON object of tag key to tag value, both strings, as AWS allows."""
    if not isinstance(value, dict):
        raise ValidationError("The tag selector must be an object of tag key to value, e.g. {\"Tier\": \"db\"}.")
    for key, tag_value in value.items():
        if not isinstance(key, str) or not TAG_KEY_RE.match(key):
            raise ValidationError("Tag key %(key)r is not a valid AWS tag key.", params={"key": key})
        if not isinstance(tag_value, str) or not TAG_VALUE_RE.match(tag_value):
            raise ValidationError(
                "The value of tag %(key)r must be a string of at most 256 characters.", params={"key": key}
            )


class Target(models.Model):
    """One AWS account and region where DRS replicates servers, or the built-in sandbox."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=TargetKind.choices, default=TargetKind.AWS)
    account_id = models.CharField("account ID", max_length=12, validators=[account_id_validator])
    region = models.CharField(max_length=32, validators=[region_validator])
    role_arn = models.CharField(
        "role ARN", max_length=2048, blank=True, validators=[role_arn_validator],
        help_text="Assumed with STS before every DRS call when set.",
    )
    external_id = models.CharField(
        "external ID", max_length=1224, blank=True, validators=[external_id_validator],
        help_text="Passed to STS AssumeRole with the role: 2 to 1224 characters of letters, digits and _+=,.@:/-."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "account_id", "region"],
                name="target_unique_account_region",
                violation_error_message="A target for this account and region already exists.",
            ),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        if self.external_id and not self.role_arn:
            raise ValidationError({"external_id": "An external ID is only used with a role ARN; set the role too."})


class SourceServer(models.Model):
    """A DRS source server of a target, as last read from DescribeSourceServers."""

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="source_servers")
    drs_id = models.CharField("DRS source server ID", max_length=19, validators=[source_server_id_validator])
    arn = models.CharField(max_length=2048, blank=True)
    hostname = models.CharField(max_length=255, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    replication_state = models.CharField(
        max_length=20, choices=ReplicationState.choices, default=ReplicationState.UNKNOWN
    )
    lag_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Replication lag; empty when DRS reports none."
    )
    last_seen_at = models.DateTimeField(null=True, blank=True, help_text="lastSeenByServiceDateTime.")
    recommended_instance_type = models.CharField(max_length=64, blank=True)
    os_name = models.CharField("operating system", max_length=255, blank=True)
    raw = models.JSONField("raw DRS record", default=dict, blank=True)
    in_drs = models.BooleanField(
        "known to DRS", default=True,
        help_text="False once DRS stops reporting the server; kept because plans may name it.",
    )
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["target__name", "hostname", "drs_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["target", "drs_id"],
                name="source_server_unique_per_target",
                violation_error_message="This source server is already in the inventory of the target.",
            ),
        ]
        indexes = [models.Index(fields=["replication_state"])]

    def __str__(self):
        return f"{self.hostname or self.drs_id} ({self.drs_id})" if self.hostname else self.drs_id

    @property
    def display_name(self):
        return self.hostname or self.drs_id

    def lag_exceeds(self, minutes):
        return self.lag_seconds is not None and self.lag_seconds > minutes * 60

    @property
    def reported_lag(self):
        """The lagDuration DRS last reported, as it wrote it ("" when it reported none)."""
        return ((self.raw or {}).get("dataReplicationInfo") or {}).get("lagDuration") or ""

    @property
    def lag_unknown(self):
        """DRS reported a lag drsorch cannot read (years or months, or malformed): the lag is
        unknown, which must never be shown or judged as no lag."""
        return self.lag_seconds is None and bool(self.reported_lag)


def servers_matching_tags(queryset, selector):
    """Narrow `queryset` to servers carrying every tag of `selector` with the same value.

    KeyTextTransform takes the key literally, so keys with colons or double underscores
    (aws:cloudformation:stack-name) work on SQLite and PostgreSQL alike.
    """
    for position, (key, value) in enumerate(sorted(selector.items())):
        alias = f"_tag_{position}"
        text = Cast(KeyTextTransform(key, "tags"), output_field=models.TextField())
        queryset = queryset.alias(**{alias: text}).filter(**{alias: value})
    return queryset


def tags_match(tags, selector):
    """True when `tags` (a server's, already loaded) carry every tag of `selector` with the
    same value: servers_matching_tags' rule, for rows in hand. Tag values are strings (DRS's
    tags, and validate_tag_selector's rule for selectors)."""
    tags = tags or {}
    return all(tags.get(key) == value for key, value in selector.items())


class ProtectionGroup(models.Model):
    """A named set of source servers of one target: chosen explicitly, by tags, or both."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="protection_groups")
    servers = models.ManyToManyField(
        SourceServer, through="ProtectionGroupMembership", related_name="protection_groups", blank=True
    )
    tag_selector = models.JSONField(
        default=dict, blank=True, validators=[validate_tag_selector],
        help_text="Servers of the target carrying every one of these tags belong to the group.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("plans:group_detail", args=[self.pk])

    def resolved_servers(self):
        """Explicit members and tag matches, as one queryset of SourceServer."""
        matches = SourceServer.objects.filter(pk__in=self.servers.values("pk"))
        if self.tag_selector:
            tagged = servers_matching_tags(SourceServer.objects.filter(target_id=self.target_id), self.tag_selector)
            matches = SourceServer.objects.filter(
                models.Q(pk__in=self.servers.values("pk")) | models.Q(pk__in=tagged.values("pk"))
            )
        return matches.select_related("target").order_by("hostname", "drs_id")


class ProtectionGroupMembership(models.Model):
    """An explicit member of a protection group; a server is explicitly in at most one group."""

    group = models.ForeignKey(ProtectionGroup, on_delete=models.CASCADE, related_name="memberships")
    server = models.OneToOneField(SourceServer, on_delete=models.CASCADE, related_name="membership")

    class Meta:
        ordering = ["group", "server"]

    def __str__(self):
        return f"{self.server} in {self.group}"


class RecoveryPlan(models.Model):
    """An ordered set of waves that recovers an application, with its RTO and RPO targets."""

    name = models.CharField(max_length=150, unique=True)
    description = models.TextField(blank=True)
    rto_target_minutes = models.PositiveIntegerField(
        "RTO target (minutes)", default=60, validators=[MinValueValidator(1), MaxValueValidator(10080)],
        help_text="How long recovery may take, from start to the last wave done.",
    )
    rpo_target_minutes = models.PositiveIntegerField(
        "RPO target (minutes)", default=15, validators=[MinValueValidator(1), MaxValueValidator(10080)],
        help_text="How much data may be lost: replication lag above this fails readiness.",
    )
    drill_schedule = models.CharField(
        "drill schedule", max_length=DRILL_SCHEDULE_MAX_LENGTH, null=True, blank=True,
        validators=[validate_drill_schedule],
        help_text="When the worker drills the plan: a 5-field cron expression in UTC, e.g. '0 3 * * 1'. "
        "Empty: never on its own.",
    )
    auto_approve = models.BooleanField(
        "approve gates of scheduled drills", default=False,
        help_text="A drill the schedule starts passes its approval gates on its own. Drills people start, "
        "and every RECOVERY, still wait for a person.",
    )
    drill_instance_ttl_minutes = models.PositiveIntegerField(
        "drill instance time-to-live (minutes)", null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DRILL_INSTANCE_TTL_MINUTES)],
        help_text="Clean up a drill's instances this long after it ends. Empty: keep them.",
    )
    drill_max_age_days = models.PositiveIntegerField(
        "drill max age (days)", null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_DRILL_AGE_DAYS)],
        help_text="The plan is OVERDUE when its last successful drill is older. Empty: no limit.",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="recovery_plans"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("plans:plan_detail", args=[self.pk])


class Wave(models.Model):
    """A step of a plan: the servers of its protection groups, launched together.

    A wave starts when every wave it depends on has ended SUCCEEDED or PARTIAL. The
    structure rules of a plan (no cycles, no empty wave, no server twice) are checked by
    `plans.services.plan_validate_waves`, since they span several rows.
    """

    plan = models.ForeignKey(RecoveryPlan, on_delete=models.CASCADE, related_name="waves")
    order = models.PositiveSmallIntegerField(help_text="Position of the wave in the plan, from 0.")
    name = models.CharField(max_length=100)
    protection_groups = models.ManyToManyField(ProtectionGroup, related_name="waves")
    depends_on = models.ManyToManyField("self", symmetrical=False, related_name="dependents", blank=True)
    approval_required = models.BooleanField(
        "approval gate", default=False, help_text="Hold the wave until someone approves it."
    )
    wait_after_minutes = models.PositiveIntegerField(
        "wait after (minutes)", default=0, validators=[MaxValueValidator(1440)],
        help_text="Hold dependent waves this long after the wave is done.",
    )
    timeout_minutes = models.PositiveIntegerField(
        "timeout (minutes)", default=120, validators=[MinValueValidator(1), MaxValueValidator(1440)],
    )
    optional_servers = models.ManyToManyField(
        SourceServer, related_name="optional_in_waves", blank=True,
        help_text="Servers whose failure ends the wave PARTIAL instead of FAILED.",
    )

    class Meta:
        ordering = ["plan", "order"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "order"], name="wave_unique_order_per_plan"),
            models.UniqueConstraint(
                fields=["plan", "name"], name="wave_unique_name_per_plan",
                violation_error_message="Two waves of a plan cannot share a name.",
            ),
        ]

    def __str__(self):
        return f"{self.plan.name} / {self.order}: {self.name}"

    def resolved_servers(self):
        """Every server of the wave's protection groups, each once."""
        servers = SourceServer.objects.none()
        for group in self.protection_groups.all():
            servers = servers | group.resolved_servers()
        return servers.distinct()


class WaveAction(models.Model):
    """A runbook step of a wave (contract: Wave actions): an SSM automation or command on the
    wave's recovered instances, a signed webhook, a manual task or a health check, run before
    the wave's servers launch or after they all launched.

    Checked by `plans.actions.actions_check` (through plan_validate_waves), since what its
    `config` may hold depends on its kind; names are unique within a plan because people
    complete manual actions by name. An execution freezes the actions at start, like its waves.
    """

    plan = models.ForeignKey(RecoveryPlan, on_delete=models.CASCADE, related_name="wave_actions")
    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="actions")
    position = models.PositiveSmallIntegerField(help_text="Order among the wave's actions, from 0.")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=ActionKind.choices)
    when = models.CharField(max_length=10, choices=ActionWhen.choices, default=ActionWhen.AFTER)
    config = models.JSONField(default=dict, blank=True)
    timeout_minutes = models.PositiveIntegerField(
        "timeout (minutes)", default=30, validators=[MinValueValidator(1), MaxValueValidator(1440)],
    )
    on_failure = models.CharField(max_length=10, choices=ActionOnFailure.choices, default=ActionOnFailure.FAIL)

    class Meta:
        ordering = ["wave", "position"]
        constraints = [
            models.UniqueConstraint(fields=["wave", "position"], name="wave_action_unique_position"),
            models.UniqueConstraint(
                fields=["plan", "name"], name="wave_action_unique_name_per_plan",
                violation_error_message="Two actions of a plan cannot share a name.",
            ),
        ]

    def __str__(self):
        return f"{self.wave} / {self.when} {self.name} ({self.kind})"


class PlanReadinessEvaluation(models.Model):
    """One look of the readiness watch at a plan (executions.unattended.readiness_watch): its
    verdict, what it found, what changed since the plan's previous evaluation, and which
    notice it sent, if any.

    `sequence` numbers a plan's evaluations from 1; (plan, sequence) is unique, so two workers
    evaluating one plan at once cannot both follow the same previous evaluation (and notify
    twice): the second insert fails and is dropped.
    """

    class Notice(models.TextChoices):
        NONE = "", "none"
        DEGRADED = "readiness.degraded", "readiness.degraded"
        RECOVERED = "readiness.recovered", "readiness.recovered"

    plan = models.ForeignKey(RecoveryPlan, on_delete=models.CASCADE, related_name="readiness_evaluations")
    sequence = models.PositiveIntegerField(help_text="The plan's evaluations numbered from 1.")
    evaluated_at = models.DateTimeField(db_index=True)
    ready = models.BooleanField(
        help_text="No error and no warning, leaving out what only says the plan or its servers are busy now."
    )
    error_count = models.PositiveIntegerField(default=0)
    warning_count = models.PositiveIntegerField(default=0)
    findings = models.JSONField(
        default=list, blank=True,
        help_text="The errors and warnings that decide the verdict: [{severity, code, message, source_server_id, "
        "hostname}].",
    )
    changed = models.JSONField(
        default=dict, blank=True,
        help_text="Findings since the previous evaluation: {\"new\": [...], \"resolved\": [...]}; empty for the "
        "first.",
    )
    notified = models.CharField(max_length=32, choices=Notice.choices, default=Notice.NONE, blank=True)

    class Meta:
        ordering = ["plan", "-sequence"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "sequence"], name="readiness_evaluation_unique_sequence"),
        ]

    def __str__(self):
        return f"{self.plan} #{self.sequence}: {'ready' if self.ready else 'not ready'}"

    @property
    def first_finding(self) -> dict | None:
        """The finding a one-line summary shows: the first error, else the first warning."""
        return next(iter(self.findings or []), None)


class PlanOverdueNotice(models.Model):
    """A drill.overdue notice sent for a plan on a day (UTC): the record that makes the
    notice once a day, whatever the number of watches, workers or notification channels."""

    plan = models.ForeignKey(RecoveryPlan, on_delete=models.CASCADE, related_name="overdue_notices")
    day = models.DateField()
    sent_at = models.DateTimeField()
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["plan", "-day"]
        constraints = [models.UniqueConstraint(fields=["plan", "day"], name="overdue_notice_unique_per_day")]

    def __str__(self):
        return f"{self.plan} overdue on {self.day}"
