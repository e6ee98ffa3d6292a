"""Serializers of targets, the source-server inventory, protection groups and plans.

Writes go through the services of `plans.services` (the pages' rules and messages); a
Django ValidationError they raise reaches the API's exception handler, which reports it
with the fields at fault (see drsorch.api.field_errors).
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from drsorch.api import IdRelatedField, field_errors
from plans.actions import (
    ACTION_NAME_MAX_LENGTH,
    DEFAULT_ACTION_TIMEOUT_MINUTES,
    MAX_ACTION_TIMEOUT_MINUTES,
    ActionSpec,
)
from plans.choices import ActionKind, ActionOnFailure, ActionWhen
from plans.models import (
    DRILL_SCHEDULE_MAX_LENGTH,
    MAX_DRILL_AGE_DAYS,
    MAX_DRILL_INSTANCE_TTL_MINUTES,
    PlanReadinessEvaluation,
    ProtectionGroup,
    RecoveryPlan,
    SourceServer,
    Target,
    validate_tag_selector,
)
from plans.selectors import last_readiness_evaluation, plan_drill_age, plan_last_successful_drill_at
from plans.services import (
    MAX_WAVE_TIMEOUT_MINUTES,
    MAX_WAVE_WAIT_MINUTES,
    WaveSpec,
    plan_save,
    plan_wave_specs,
    protection_group_save,
    wave_action_secrets_keep,
)

# The largest value the integer columns hold on every database we support.
MAX_INT = 2_147_483_647


class ModelCleanMixin:
    """Runs the model's own validation (fields, clean(), constraints) on the would-be
    instance, so the API refuses exactly what the admin and the pages refuse."""

    def validate(self, attrs):
        attrs = super().validate(attrs)
        instance = self.instance or self.Meta.model()
        for name, value in attrs.items():
            setattr(instance, name, value)
        try:
            instance.full_clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(field_errors(exc))
        return attrs


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
class TagsField(serializers.JSONField):
    """An object of AWS tag key to tag value, both strings."""

    # DRF formats these messages with str.format: the example's braces are doubled.
    default_error_messages = {"invalid": "Give an object of tag key to value, e.g. {{\"Tier\": \"db\"}}."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            validate_tag_selector(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages)
        return value


class TargetSerializer(ModelCleanMixin, serializers.ModelSerializer):
    """An AWS account and region where DRS replicates servers, or the sandbox."""

    class Meta:
        model = Target
        fields = ["id", "name", "kind", "account_id", "region", "role_arn", "external_id", "created_at",
                  "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        # The model's constraint (checked by full_clean) words the message for users.
        validators = []


class SourceServerSerializer(ModelCleanMixin, serializers.ModelSerializer):
    """A DRS source server of a target, as last read from DescribeSourceServers."""

    tags = TagsField(required=False, help_text="Tag key to value, both strings.")
    lag_seconds = serializers.IntegerField(min_value=0, max_value=MAX_INT, allow_null=True, required=False)
    protection_group = serializers.SerializerMethodField(
        help_text="The protection group the server is explicitly a member of, if any."
    )

    class Meta:
        model = SourceServer
        fields = ["id", "target", "drs_id", "hostname", "tags", "replication_state", "lag_seconds",
                  "last_seen_at", "recommended_instance_type", "os_name", "in_drs", "arn", "synced_at",
                  "protection_group"]
        read_only_fields = ["arn", "last_seen_at", "synced_at"]
        validators = []

    def get_protection_group(self, server) -> int | None:
        membership = getattr(server, "membership", None)
        return membership.group_id if membership else None


class SourceServerSyncSerializer(serializers.Serializer):
    """Which target to refresh from DRS; every target when omitted."""

    target = IdRelatedField(queryset=Target.objects.all(), required=False, allow_null=True)


class ObjectRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class SyncResultSerializer(serializers.Serializer):
    """What one target's sync changed, or why it failed (`error`, then the counts are 0)."""

    target = ObjectRefSerializer()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    missing = serializers.IntegerField(help_text="Servers DRS no longer reports (kept, marked in_drs=false).")
    uninitialized = serializers.BooleanField(help_text="DRS was never initialized in the target's region.")
    error = serializers.CharField(allow_null=True)


class SyncResponseSerializer(serializers.Serializer):
    results = SyncResultSerializer(many=True)


class ResolvedServerSerializer(serializers.ModelSerializer):
    """A server a protection group resolves to (explicitly or by its tags)."""

    class Meta:
        model = SourceServer
        fields = ["id", "drs_id", "hostname", "replication_state", "in_drs"]
        read_only_fields = fields


class ProtectionGroupSerializer(serializers.ModelSerializer):
    """A set of source servers of one target: explicit `servers`, a `tag_selector`, or both.

    `resolved_servers` lists every server the group stands for now (read only).
    """

    servers = IdRelatedField(
        many=True, queryset=SourceServer.objects.all(), required=False,
        help_text="Ids of source servers chosen explicitly (each in at most one group).",
    )
    tag_selector = TagsField(
        required=False, help_text="Servers of the target carrying every one of these tags belong to the group."
    )
    resolved_servers = serializers.SerializerMethodField()

    class Meta:
        model = ProtectionGroup
        fields = ["id", "name", "description", "target", "servers", "tag_selector", "resolved_servers",
                  "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        # The service checks the name, so its message is the pages' one.
        extra_kwargs = {"name": {"validators": []}}

    @extend_schema_field(ResolvedServerSerializer(many=True))
    def get_resolved_servers(self, group):
        return ResolvedServerSerializer(group.resolved_servers(), many=True).data

    def save_through_service(self, group=None):
        """Create or update the group with protection_group_save; fields a PATCH leaves out
        keep their current values."""
        data = self.validated_data

        def current(name, default):
            return data[name] if name in data else (default() if group else None)

        return protection_group_save(
            group=group,
            name=current("name", lambda: group.name),
            target=current("target", lambda: group.target),
            description=current("description", lambda: group.description) or "",
            servers=current("servers", lambda: list(group.servers.all())) or [],
            tag_selector=current("tag_selector", lambda: group.tag_selector) or {},
        )

    def create(self, validated_data):
        return self.save_through_service()

    def update(self, instance, validated_data):
        return self.save_through_service(group=instance)


ACTION_CONFIG_SCHEMA = {
    "type": "object",
    "description": "What the action does; its keys depend on `kind`. ssm_automation and ssm_command: "
    "`document` (required) and `parameters` (name to a string or a list of strings; InstanceId is given by "
    "drsorch). webhook: `url` (required) and `secret` (write-only: never returned; left out on an update, "
    "the action of the same name keeps its secret; \"\" removes it). manual: `instructions` (required). "
    "health_check: `ec2_status_checks` (default true) and `ssm_ping` (default false), at least one true.",
    "properties": {
        "document": {"type": "string", "example": "AWS-RunShellScript"},
        "parameters": {
            "type": "object",
            "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        },
        "url": {"type": "string", "format": "uri"},
        "secret": {"type": "string", "writeOnly": True},
        "instructions": {"type": "string"},
        "ec2_status_checks": {"type": "boolean"},
        "ssm_ping": {"type": "boolean"},
    },
}


@extend_schema_field(ACTION_CONFIG_SCHEMA)
class ActionConfigField(serializers.JSONField):
    """An action's config: an object. Which keys it may hold is the service's rule (plans.actions),
    so that its message names the key at fault."""

    default_error_messages = {
        "not_an_object": "The config is an object, e.g. {{\"document\": \"AWS-RunShellScript\"}}.",
    }

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_an_object")
        return value


class WaveActionSerializer(serializers.Serializer):
    """A runbook step of a wave, run before its servers launch or after they all launched.

    A webhook's `secret` is write-only: it is never returned (`has_secret` says whether one is set)."""

    name = serializers.CharField(
        max_length=ACTION_NAME_MAX_LENGTH, allow_blank=True,
        help_text="Unique within the plan: an Operator completes a manual action by its name.",
    )
    kind = serializers.ChoiceField(choices=ActionKind.choices)
    when = serializers.ChoiceField(choices=ActionWhen.choices, default=ActionWhen.AFTER,
                                   help_text="before the wave's servers launch, or after they all launched.")
    config = ActionConfigField(required=False, default=dict)
    timeout_minutes = serializers.IntegerField(min_value=1, max_value=MAX_ACTION_TIMEOUT_MINUTES,
                                               default=DEFAULT_ACTION_TIMEOUT_MINUTES)
    on_failure = serializers.ChoiceField(
        choices=ActionOnFailure.choices, default=ActionOnFailure.FAIL,
        help_text="fail: a failed or timed-out action fails the wave; continue: it is recorded and the wave goes on.",
    )
    has_secret = serializers.BooleanField(read_only=True, help_text="A webhook action has a secret set.")

    def to_representation(self, action):
        config = dict(action.config) if isinstance(action.config, dict) else {}
        secret = config.pop("secret", None)
        return {
            "name": action.name,
            "kind": action.kind,
            "when": action.when,
            "config": config,
            "timeout_minutes": action.timeout_minutes,
            "on_failure": action.on_failure,
            "has_secret": bool(secret),
        }


class WaveSerializer(serializers.Serializer):
    """A wave of a plan. On output `index` is its position; `depends_on` lists positions of
    waves of the same plan, and when omitted on input means "the previous wave"."""

    index = serializers.IntegerField(read_only=True, help_text="Position of the wave in the plan, from 0.")
    name = serializers.CharField(max_length=100, allow_blank=True)
    protection_groups = IdRelatedField(
        many=True, queryset=ProtectionGroup.objects.all(), help_text="Ids of the protection groups it launches."
    )
    depends_on = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=MAX_INT), required=False, allow_null=True,
        help_text="Positions of the waves this one waits for; omitted or null: the previous wave.",
    )
    approval_required = serializers.BooleanField(default=False, help_text="Hold the wave until approved.")
    wait_after_minutes = serializers.IntegerField(min_value=0, max_value=MAX_WAVE_WAIT_MINUTES, default=0)
    timeout_minutes = serializers.IntegerField(min_value=1, max_value=MAX_WAVE_TIMEOUT_MINUTES, default=120)
    optional_servers = IdRelatedField(
        many=True, queryset=SourceServer.objects.all(), required=False,
        help_text="Ids of servers of the wave whose failure ends it PARTIAL instead of FAILED.",
    )
    actions = WaveActionSerializer(
        many=True, required=False, default=list,
        help_text="Runbook steps of the wave, in order; a wave written without `actions` has none.",
    )

    def to_representation(self, wave):
        return {
            "index": wave.order,
            "name": wave.name,
            "protection_groups": [group.pk for group in wave.protection_groups.all()],
            "depends_on": sorted(dep.order for dep in wave.depends_on.all()),
            "approval_required": wave.approval_required,
            "wait_after_minutes": wave.wait_after_minutes,
            "timeout_minutes": wave.timeout_minutes,
            "optional_servers": [server.pk for server in wave.optional_servers.all()],
            "actions": WaveActionSerializer(wave.actions.all(), many=True).data,
        }


def wave_spec(data):
    """A WaveSpec from one validated wave object."""
    return WaveSpec(
        name=data.get("name", ""),
        protection_groups=list(data.get("protection_groups", [])),
        depends_on=data.get("depends_on"),
        approval_required=data.get("approval_required", False),
        wait_after_minutes=data.get("wait_after_minutes", 0),
        timeout_minutes=data.get("timeout_minutes", 120),
        optional_servers=list(data.get("optional_servers", [])),
        actions=[
            ActionSpec(
                name=action.get("name", ""), kind=action.get("kind", ""),
                when=action.get("when", ActionWhen.AFTER), config=dict(action.get("config") or {}),
                timeout_minutes=action.get("timeout_minutes", DEFAULT_ACTION_TIMEOUT_MINUTES),
                on_failure=action.get("on_failure", ActionOnFailure.FAIL),
            )
            for action in data.get("actions") or []
        ],
    )


UNATTENDED_FIELDS = ("drill_schedule", "auto_approve", "drill_instance_ttl_minutes", "drill_max_age_days")


class ReadinessFindingSerializer(serializers.Serializer):
    """A finding of the readiness watch (an error or a warning that decides its verdict)."""

    severity = serializers.ChoiceField(choices=["error", "warning"])
    code = serializers.CharField(help_text="e.g. replication_unhealthy, lag_above_rpo, inventory_stale.")
    message = serializers.CharField()
    source_server_id = serializers.CharField(allow_null=True)
    hostname = serializers.CharField(allow_null=True)


class ReadinessChangeSerializer(serializers.Serializer):
    new = ReadinessFindingSerializer(many=True, required=False, help_text="Findings the previous evaluation lacked.")
    resolved = ReadinessFindingSerializer(many=True, required=False,
                                          help_text="Findings of the previous evaluation gone now.")


class ReadinessEvaluationSerializer(serializers.ModelSerializer):
    """One evaluation of the worker's readiness watch (read only)."""

    ready = serializers.BooleanField(
        help_text="No error and no warning, leaving out findings that only say the plan or its servers are busy "
        "(running, held by a job)."
    )
    findings = ReadinessFindingSerializer(many=True)
    changed = ReadinessChangeSerializer(help_text="Against the previous evaluation; {} for the first.")
    notified = serializers.CharField(
        allow_null=True, help_text="readiness.degraded or readiness.recovered when this evaluation sent it; null: none."
    )

    class Meta:
        model = PlanReadinessEvaluation
        fields = ["sequence", "evaluated_at", "ready", "error_count", "warning_count", "findings", "changed",
                  "notified"]
        read_only_fields = fields

    def to_representation(self, evaluation):
        data = super().to_representation(evaluation)
        data["notified"] = data["notified"] or None
        return data


class RecoveryPlanSerializer(serializers.ModelSerializer):
    """A recovery plan with its waves. Writing `waves` replaces every wave of the plan."""

    owner = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    rto_target_minutes = serializers.IntegerField(min_value=1, max_value=10080, default=60)
    rpo_target_minutes = serializers.IntegerField(min_value=1, max_value=10080, default=15)
    drill_schedule = serializers.CharField(
        max_length=DRILL_SCHEDULE_MAX_LENGTH, allow_null=True, allow_blank=True, default=None,
        help_text="5-field cron expression, UTC, e.g. \"0 3 * * 1\"; null: no scheduled drills.",
    )
    auto_approve = serializers.BooleanField(
        default=False,
        help_text="Scheduled drills pass their approval gates on their own; drills people start and "
        "recoveries still wait for a person.",
    )
    drill_instance_ttl_minutes = serializers.IntegerField(
        min_value=1, max_value=MAX_DRILL_INSTANCE_TTL_MINUTES, allow_null=True, default=None,
        help_text="A drill's instances are cleaned up this long after it ends; null: kept.",
    )
    drill_max_age_days = serializers.IntegerField(
        min_value=1, max_value=MAX_DRILL_AGE_DAYS, allow_null=True, default=None,
        help_text="The plan is OVERDUE when its last SUCCEEDED drill is older; null: no limit.",
    )
    waves = WaveSerializer(many=True, allow_empty=True)
    overdue = serializers.SerializerMethodField(
        help_text="The last SUCCEEDED drill is older than drill_max_age_days (a plan never drilled successfully: "
        "it has existed longer than that); false without a limit."
    )
    last_successful_drill_at = serializers.SerializerMethodField(
        help_text="When the plan's last SUCCEEDED drill finished (DRS's clock); null: never."
    )
    last_readiness_evaluation = serializers.SerializerMethodField(
        help_text="The readiness watch's newest evaluation of the plan; null before the first."
    )

    class Meta:
        model = RecoveryPlan
        fields = ["id", "name", "description", "rto_target_minutes", "rpo_target_minutes", "drill_schedule",
                  "auto_approve", "drill_instance_ttl_minutes", "drill_max_age_days", "owner", "waves", "created_at",
                  "updated_at", "overdue", "last_successful_drill_at", "last_readiness_evaluation"]
        read_only_fields = ["created_at", "updated_at"]
        # plan_save checks the name (unique, length) with the pages' message.
        extra_kwargs = {"name": {"validators": []}}

    def get_overdue(self, plan) -> bool:
        age = plan_drill_age(plan, now=timezone.now())
        return bool(age and age.overdue)

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_last_successful_drill_at(self, plan):
        moment = plan_last_successful_drill_at(plan)
        return serializers.DateTimeField().to_representation(moment) if moment else None

    @extend_schema_field(ReadinessEvaluationSerializer(allow_null=True))
    def get_last_readiness_evaluation(self, plan):
        evaluation = last_readiness_evaluation(plan)
        return ReadinessEvaluationSerializer(evaluation).data if evaluation else None

    def save_through_service(self, plan=None):
        """Create or replace the plan with plan_save; fields a PATCH leaves out keep their
        current values, and the waves stay as they are unless `waves` is given."""
        data = self.validated_data
        if "waves" in data:
            waves = [wave_spec(wave) for wave in data["waves"]]
            wave_action_secrets_keep(plan=plan, waves=waves)
        else:
            waves = plan_wave_specs(plan=plan) if plan else []
        request = self.context.get("request")
        return plan_save(
            plan=plan,
            name=data.get("name", plan.name if plan else ""),
            description=data.get("description", plan.description if plan else ""),
            rto_target_minutes=data.get("rto_target_minutes", plan.rto_target_minutes if plan else 60),
            rpo_target_minutes=data.get("rpo_target_minutes", plan.rpo_target_minutes if plan else 15),
            owner=request.user if request else None,
            waves=waves,
            **{name: data[name] if name in data else getattr(plan, name, None) for name in UNATTENDED_FIELDS},
        )

    def create(self, validated_data):
        return self.save_through_service()

    def update(self, instance, validated_data):
        return self.save_through_service(plan=instance)


class ReadinessCheckSerializer(serializers.Serializer):
    severity = serializers.ChoiceField(
        choices=["error", "warning", "info"],
        help_text="error: the plan cannot start. warning: a risk that blocks a start unless it is accepted "
        "(accept_risks). info: a note that blocks nothing.",
    )
    code = serializers.CharField(help_text="e.g. replication_unhealthy, lag_above_rpo, plan_running, "
                                 "server_in_other_execution.")
    message = serializers.CharField()
    source_server_id = serializers.CharField(allow_null=True)
    hostname = serializers.CharField(allow_null=True)
    execution = serializers.CharField(
        allow_null=True,
        help_text="The id of the drsorch execution the finding is about: the plan's running execution "
        "(plan_running) or the one holding the server (server_in_other_execution); null otherwise.",
    )


class ReadinessSerializer(serializers.Serializer):
    """Can the plan start now, and what should be fixed first."""

    plan = ObjectRefSerializer()
    ready = serializers.BooleanField(help_text="No errors: it can start (accepting the warnings, if any).")
    checked_at = serializers.DateTimeField(allow_null=True)
    server_count = serializers.IntegerField()
    checks = ReadinessCheckSerializer(many=True)


class ReadinessQuerySerializer(serializers.Serializer):
    """The query of GET plans/<id>/readiness/."""

    live = serializers.BooleanField(
        default=True,
        help_text="Also ask DRS (read only) for the active jobs holding the plan's servers (true), or use "
        "stored data only. The inventory is never refreshed by a GET: POST does that.",
    )
