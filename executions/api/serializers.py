"""Serializers of executions: the contract's execution JSON, its events, and the requests
that start and act on executions.

The execution and event serializers only *describe* their objects for the OpenAPI schema;
their output is exactly `execution_as_json` / `event_as_json`, the same objects the
commands print with `--json`.
"""

from rest_framework import serializers

from executions.choices import EventKind, ExecutionMode, ExecutionStatus, LaunchStatus, WaveStatus
from executions.presenters import event_as_json, execution_as_json
from plans.models import RecoveryPlan

# Execution.idempotency_key's column.
IDEMPOTENCY_KEY_MAX_LENGTH = 255


class ExecutionPlanSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text="The plan's name when the execution started.")


class ServerLaunchSerializer(serializers.Serializer):
    source_server_id = serializers.CharField()
    hostname = serializers.CharField()
    critical = serializers.BooleanField(help_text="False for optional servers: their failure makes the wave PARTIAL.")
    launch_status = serializers.ChoiceField(choices=LaunchStatus.choices)
    phase = serializers.CharField(help_text="Where the launch is, e.g. SNAPSHOT, CONVERSION, READY; empty at first.")
    job_id = serializers.CharField(allow_null=True)
    recovery_instance_id = serializers.CharField(allow_null=True)
    launched_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_null=True)


class ExecutionWaveSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=WaveStatus.choices)
    depends_on = serializers.ListField(child=serializers.IntegerField(), help_text="Indexes of waves it waits for.")
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    servers = ServerLaunchSerializer(many=True)


class ExecutionSerializer(serializers.Serializer):
    """The contract's execution JSON (read only)."""

    id = serializers.UUIDField()
    plan = ExecutionPlanSerializer()
    mode = serializers.ChoiceField(choices=ExecutionMode.choices)
    status = serializers.ChoiceField(choices=ExecutionStatus.choices)
    requested_by = serializers.CharField(help_text="User name of who started it.")
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    rto_target_minutes = serializers.IntegerField()
    elapsed_seconds = serializers.FloatField()
    waves = ExecutionWaveSerializer(many=True)

    def to_representation(self, execution):
        return execution_as_json(execution)


class ExecutionEventSerializer(serializers.Serializer):
    """An entry of an execution's audit log (read only)."""

    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=EventKind.choices)
    actor = serializers.CharField(allow_null=True, help_text="User name, or 'drsorch' for the engine.")
    wave_index = serializers.IntegerField(allow_null=True)
    source_server_id = serializers.CharField(allow_null=True)
    message = serializers.CharField()
    data = serializers.DictField(help_text="Details of the event, e.g. the DRS job log item.")

    def to_representation(self, event):
        return event_as_json(event)


class ExecutionStartSerializer(serializers.Serializer):
    """Start a plan as a DRILL or a RECOVERY."""

    plan = serializers.PrimaryKeyRelatedField(queryset=RecoveryPlan.objects.all(), help_text="Id of the plan.")
    mode = serializers.ChoiceField(choices=ExecutionMode.choices)
    auto_approve = serializers.BooleanField(
        default=False, help_text="Pass every approval gate without waiting for someone to approve it."
    )


class PlanExecuteSerializer(serializers.Serializer):
    """Start this plan as a DRILL or a RECOVERY."""

    mode = serializers.ChoiceField(choices=ExecutionMode.choices)
    auto_approve = serializers.BooleanField(
        default=False, help_text="Pass every approval gate without waiting for someone to approve it."
    )


class ExecutionApproveSerializer(serializers.Serializer):
    """Which gate to approve; the wave waiting for approval when omitted."""

    wave_index = serializers.IntegerField(min_value=0, max_value=32767, required=False, allow_null=True)
