"""Serializers of executions: the contract's execution JSON, its events, and the requests
that start and act on executions.

The execution serializer is the one declaration of the contract's execution JSON: the API
answers with it and the commands print it with `--json`.
"""

from datetime import UTC

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from drsorch.api import IdRelatedField
from executions.choices import (
    ActionStatus,
    EventKind,
    ExecutionMode,
    ExecutionStatus,
    LaunchStatus,
    ScheduledRunOutcome,
    WaveStatus,
)
from executions.services import COMMENT_MAX_LENGTH, POINT_IN_TIME_EXAMPLE, point_in_time_check
from plans.models import RecoveryPlan

# Execution.idempotency_key's column.
IDEMPOTENCY_KEY_MAX_LENGTH = 255


class NullIfBlankCharField(serializers.CharField):
    """A text column that stores "" for "unknown", shown as null."""

    def __init__(self, **kwargs):
        super().__init__(allow_null=True, **kwargs)

    def to_representation(self, value):
        return value or None


class UtcDateTimeField(serializers.DateTimeField):
    """An instant in UTC with a `Z`, whatever the server's TIME_ZONE."""

    def __init__(self, **kwargs):
        super().__init__(default_timezone=UTC, **kwargs)


@extend_schema_field(OpenApiTypes.DATETIME)
class PointInTimeField(serializers.Field):
    """An ISO-8601 date and time with its timezone, in the past (services.point_in_time_check)."""

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "help_text",
            "Launch every server from its latest recovery snapshot at or before this "
            "time (ISO-8601 with a timezone, in the past), e.g. before a ransomware attack. "
            "Omitted or null: from a fresh snapshot.",
        )
        super().__init__(required=False, allow_null=True, default=None, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError(
                f"Give the point in time as an ISO-8601 string, e.g. {POINT_IN_TIME_EXAMPLE}."
            )
        try:
            return point_in_time_check(value=data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["point_in_time"]) from exc

    def to_representation(self, value):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class CommentField(serializers.CharField):
    """A person's comment (services.comment_check decides when one is required): text of at
    most COMMENT_MAX_LENGTH characters, stripped; omitted or null is no comment."""

    def __init__(self, **kwargs):
        super().__init__(
            required=False,
            allow_blank=True,
            allow_null=True,
            default="",
            max_length=COMMENT_MAX_LENGTH,
            error_messages={
                "max_length": f"The comment is too long; keep it to {COMMENT_MAX_LENGTH} characters at most.",
                "invalid": "The comment must be text.",
            },
            **kwargs,
        )

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ExecutionPlanSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="plan_id")
    name = serializers.CharField(source="plan_name", help_text="The plan's name when the execution started.")


class LaunchAttemptSerializer(serializers.Serializer):
    job_id = serializers.CharField(source="job.job_id", allow_null=True)
    launch_status = serializers.ChoiceField(choices=LaunchStatus.choices)
    error = NullIfBlankCharField()
    started_at = UtcDateTimeField(allow_null=True, help_text="When DRS created the job.")
    ended_at = UtcDateTimeField(allow_null=True, help_text="When DRS launched or failed the server.")


class ServerLaunchSerializer(serializers.Serializer):
    source_server_id = serializers.CharField()
    hostname = serializers.CharField()
    critical = serializers.BooleanField(help_text="False for optional servers: their failure makes the wave PARTIAL.")
    launch_status = serializers.ChoiceField(source="status", choices=LaunchStatus.choices)
    phase = serializers.CharField(help_text="Where the launch is, e.g. SNAPSHOT, CONVERSION, READY; empty at first.")
    job_id = serializers.CharField(source="job.job_id", allow_null=True)
    recovery_instance_id = NullIfBlankCharField()
    launched_at = UtcDateTimeField(allow_null=True, help_text="When DRS launched it, on DRS's clock.")
    error = NullIfBlankCharField()
    snapshot_at = UtcDateTimeField(allow_null=True, help_text="The recovery snapshot DRS launched it from.")
    attempts = LaunchAttemptSerializer(
        source="launch_attempts.all",
        many=True,
        help_text="Every launch of it in this execution, oldest first; a retry adds one.",
    )


class ActionRunSerializer(serializers.Serializer):
    """A wave action as it ran in this execution (contract: Wave actions)."""

    name = serializers.CharField()
    kind = serializers.CharField(help_text="ssm_automation, ssm_command, webhook, manual or health_check.")
    when = serializers.CharField(help_text="before or after the wave's launch.")
    status = serializers.ChoiceField(choices=ActionStatus.choices)
    on_failure = serializers.CharField(help_text="fail (fails the wave) or continue.")
    attempt = serializers.IntegerField(help_text="1, then one more per retry of the execution.")
    started_at = UtcDateTimeField(allow_null=True)
    finished_at = UtcDateTimeField(allow_null=True)
    output = serializers.CharField(help_text="What it reported (bounded); empty when nothing.")
    error = NullIfBlankCharField()
    completed_by = NullIfBlankCharField(
        source="completed_by_username", help_text="Who completed a manual action; null otherwise."
    )
    comment = serializers.CharField(help_text="The comment of who completed a manual action.")


class ExecutionWaveSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    number = serializers.IntegerField(help_text="The 1-based number every page, event and report uses.")
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=WaveStatus.choices)
    depends_on = serializers.ListField(child=serializers.IntegerField(), help_text="Indexes of waves it waits for.")
    started_at = UtcDateTimeField(allow_null=True)
    finished_at = UtcDateTimeField(allow_null=True)
    servers = ServerLaunchSerializer(source="server_launches.all", many=True)
    actions = ActionRunSerializer(
        source="action_runs.all", many=True, help_text="Its actions, before ones first, in their order."
    )


class SecondsField(serializers.FloatField):
    """A duration in seconds, to a tenth of a second."""

    def to_representation(self, value):
        return round(super().to_representation(value), 1)


class RtoSerializer(serializers.Serializer):
    target_minutes = serializers.IntegerField(source="rto_target_minutes")
    achieved_seconds = SecondsField(
        source="rto_achieved",
        allow_null=True,
        help_text="From the start to the last critical server's launch, on DRS's clock; null while it runs.",
    )
    met = serializers.BooleanField(
        source="rto_met",
        allow_null=True,
        help_text="Null while it runs; false unless it ended SUCCEEDED or PARTIAL within the target.",
    )


class RpoSerializer(serializers.Serializer):
    target_minutes = serializers.IntegerField(source="rpo_target_minutes")
    worst_seconds = SecondsField(
        source="rpo_worst_seconds",
        allow_null=True,
        help_text="The oldest recovery snapshot a server was launched from, measured from the start "
        "(or the requested point in time); null while it runs or when DRS did not say.",
    )
    met = serializers.BooleanField(
        source="rpo_met",
        allow_null=True,
        help_text="Null while it runs; false unless it ended SUCCEEDED or PARTIAL within the target.",
    )


class ExecutionSerializer(serializers.Serializer):
    """The contract's execution JSON (read only): the API's and the commands' `--json`.
    Fetch executions with `executions.selectors.executions_for_json()` (constant queries)."""

    id = serializers.CharField()
    plan = ExecutionPlanSerializer(source="*")
    mode = serializers.ChoiceField(choices=ExecutionMode.choices)
    status = serializers.ChoiceField(choices=ExecutionStatus.choices)
    requested_by = serializers.CharField(source="requested_by_username", help_text="User name of who started it.")
    started_at = UtcDateTimeField(allow_null=True)
    finished_at = UtcDateTimeField(allow_null=True)
    rto_target_minutes = serializers.IntegerField()
    elapsed_seconds = SecondsField()
    accepted_risks = serializers.ListField(
        child=serializers.CharField(),
        help_text="The readiness warnings accepted to start it (accept_risks), as they read then; empty if none.",
    )
    point_in_time = UtcDateTimeField(
        allow_null=True,
        help_text="Every server launches from its latest recovery snapshot at or before this time; null: from a "
        "fresh snapshot.",
    )
    comment = serializers.CharField(help_text="Why it was started, as given at start; empty when none was.")
    rto = RtoSerializer(source="*")
    rpo = RpoSerializer(source="*")
    waves = ExecutionWaveSerializer(source="wave_runs.all", many=True)


class HistoryServersSerializer(serializers.Serializer):
    """How many servers the execution had, launched and failed."""

    total = serializers.IntegerField(source="server_total")
    launched = serializers.IntegerField(
        source="server_launched", help_text="Launched by DRS, including drill instances cleaned up since."
    )
    failed = serializers.IntegerField(source="server_failed")


class ExecutionHistorySerializer(serializers.Serializer):
    """One ended execution of a plan's history (read only): what a trend of achieved RTO and
    RPO needs, with the same `rto` and `rpo` objects as the execution JSON. Fetch executions
    with `executions.selectors.plan_history()` (one query, server counts included)."""

    id = serializers.CharField()
    mode = serializers.ChoiceField(choices=ExecutionMode.choices)
    status = serializers.ChoiceField(choices=ExecutionStatus.choices)
    requested_by = serializers.CharField(source="requested_by_username", help_text="User name of who started it.")
    created_at = UtcDateTimeField(help_text="When it was requested; the order of the history.")
    started_at = UtcDateTimeField(allow_null=True, help_text="Null when it ended before it started.")
    finished_at = UtcDateTimeField(allow_null=True)
    point_in_time = UtcDateTimeField(
        allow_null=True, help_text="The point in time its servers were launched from; null: a fresh snapshot."
    )
    rto = RtoSerializer(source="*")
    rpo = RpoSerializer(source="*")
    servers = HistoryServersSerializer(source="*")


class ScheduledDrillRunSerializer(serializers.Serializer):
    """A slot of a plan's drill schedule that the worker took (read only): the drill it
    started, or why it skipped the slot."""

    scheduled_for = UtcDateTimeField(help_text="The cron slot, UTC.")
    outcome = serializers.ChoiceField(
        choices=ScheduledRunOutcome.choices,
        help_text="STARTING while a worker starts the drill (for seconds), then STARTED or SKIPPED.",
    )
    reason = serializers.CharField(
        help_text='Why it was skipped ("already running: ...", "readiness errors: ...", "missed: ..."); '
        "empty when started or starting."
    )
    execution = serializers.SerializerMethodField(
        help_text="The id of the drill it started; null when skipped or starting."
    )
    created_at = UtcDateTimeField(help_text="When the worker took the slot.")

    @extend_schema_field({"type": "string", "format": "uuid", "nullable": True})
    def get_execution(self, run) -> str | None:
        return str(run.execution_id) if run.execution_id else None


class PlanHistoryQuerySerializer(serializers.Serializer):
    """The filter of a plan's history."""

    mode = serializers.ChoiceField(
        choices=ExecutionMode.choices,
        required=False,
        error_messages={"invalid_choice": '"{input}" is not a mode: use DRILL or RECOVERY.'},
        help_text="Only drills (DRILL) or only recoveries (RECOVERY); both when omitted.",
    )


class ExecutionEventSerializer(serializers.Serializer):
    """An entry of an execution's audit log (read only)."""

    id = serializers.IntegerField()
    created_at = UtcDateTimeField()
    kind = serializers.ChoiceField(choices=EventKind.choices)
    actor = NullIfBlankCharField(source="actor_name", help_text="User name, or 'drsorch' for the engine.")
    wave_index = serializers.IntegerField(allow_null=True)
    source_server_id = NullIfBlankCharField()
    message = serializers.CharField()
    data = serializers.DictField(help_text="Details of the event, e.g. the DRS job log item.")


class PlanExecuteSerializer(serializers.Serializer):
    """Start this plan as a DRILL or a RECOVERY."""

    mode = serializers.ChoiceField(choices=ExecutionMode.choices)
    auto_approve = serializers.BooleanField(
        default=False, help_text="Pass every approval gate without waiting for someone to approve it."
    )
    accept_risks = serializers.BooleanField(
        default=False,
        help_text="Start despite the readiness warnings (replication not CONTINUOUS, lag over the RPO, DRS "
        "unreachable for a check, a server held by a DRS job drsorch did not start); they are recorded on "
        "the execution. Errors are never accepted.",
    )
    point_in_time = PointInTimeField()
    comment = CommentField(help_text="Why it is started (optional), kept on the execution and in its audit log.")


class ExecutionStartSerializer(PlanExecuteSerializer):
    """Start a plan as a DRILL or a RECOVERY."""

    plan = IdRelatedField(queryset=RecoveryPlan.objects.all(), help_text="Id of the plan.")


class ExecutionApproveSerializer(serializers.Serializer):
    """Which gate to approve (the wave waiting for approval when omitted), and why."""

    wave_index = serializers.IntegerField(min_value=0, max_value=32767, required=False, allow_null=True)
    comment = CommentField(
        help_text="Why the gate is approved; goes to the audit log. Required for a RECOVERY (400 naming "
        "`comment` without it)."
    )


class ExecutionCancelSerializer(serializers.Serializer):
    """Why the execution is cancelled."""

    comment = CommentField(
        help_text="Why it is cancelled; goes to the audit log. Required for a RECOVERY (400 naming `comment` "
        "without it)."
    )


class ExecutionActionCompleteSerializer(serializers.Serializer):
    """What was done to complete a manual action."""

    comment = CommentField(help_text="What was done and checked; required (400 naming `comment` without it).")

    def validate_comment(self, value):
        if not (value or "").strip():
            raise serializers.ValidationError("A comment is required to complete a manual action: say what was done.")
        return value.strip()
