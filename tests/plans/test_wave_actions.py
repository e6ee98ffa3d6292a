"""Wave actions (runbook steps) as a plan holds them: each kind's config checked, the field at
fault named, names unique in the plan, and the actions saved and read back with the waves."""

import pytest
from django.core.exceptions import ValidationError

from plans.actions import ActionSpec
from plans.models import WaveAction
from plans.services import WaveSpec, plan_save, plan_wave_specs
from tests.factories import ProtectionGroupFactory, SourceServerFactory, TargetFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_groups():
    target = TargetFactory()
    groups = []
    for name in ("db", "web"):
        group = ProtectionGroupFactory(target=target, name=f"{name} group")
        group.servers.add(SourceServerFactory(target=target, hostname=f"{name}-01"))
        groups.append(group)
    return groups


def save(groups, db_actions=(), web_actions=()):
    return plan_save(
        name="Runbook",
        waves=[
            WaveSpec(name="Database", protection_groups=[groups[0]], actions=list(db_actions)),
            WaveSpec(name="Web", protection_groups=[groups[1]], actions=list(web_actions)),
        ],
    )


def errors_of(groups, **kwargs):
    with pytest.raises(ValidationError) as caught:
        save(groups, **kwargs)
    return {key: " ".join(messages) for key, messages in caught.value.message_dict.items()}


EVERY_KIND = [
    ActionSpec(name="Notify the change board", kind="webhook", when="before",
               config={"url": "https://93.184.215.14/hooks/dr", "secret": "s"}),
    ActionSpec(name="DB health", kind="health_check", config={"ssm_ping": True}, timeout_minutes=15),
    ActionSpec(name="Restart app service", kind="ssm_command",
               config={"document": "AWS-RunShellScript", "parameters": {"commands": "systemctl restart app"}},
               on_failure="continue"),
    ActionSpec(name="Point DNS", kind="ssm_automation", config={"document": "Corp-SwitchDns"}),
    ActionSpec(name="Confirm the app", kind="manual", config={"instructions": "Log in and place a test order."}),
]


def test_every_kind_is_saved_with_its_config_tidied_and_read_back_in_order(two_groups):
    plan = save(two_groups, db_actions=EVERY_KIND[:2], web_actions=EVERY_KIND[2:])
    specs = plan_wave_specs(plan=plan)
    assert [a.name for a in specs[0].actions] == ["Notify the change board", "DB health"]
    assert [a.name for a in specs[1].actions] == ["Restart app service", "Point DNS", "Confirm the app"]
    health = specs[0].actions[1]
    assert health.config == {"ec2_status_checks": True, "ssm_ping": True} and health.timeout_minutes == 15
    command = specs[1].actions[0]
    assert command.config == {"document": "AWS-RunShellScript", "parameters": {"commands": ["systemctl restart app"]}}
    assert command.on_failure == "continue" and command.when == "after"
    assert specs[1].actions[1].config == {"document": "Corp-SwitchDns", "parameters": {}}
    # Saving the plan again (as an edit does) keeps them, and replaces them as a whole.
    plan = plan_save(plan=plan, name=plan.name, waves=specs)
    assert WaveAction.objects.filter(plan=plan).count() == 5
    specs[1].actions = []
    plan_save(plan=plan, name=plan.name, waves=specs)
    assert list(WaveAction.objects.filter(plan=plan).values_list("name", flat=True)) == [
        "Notify the change board", "DB health"]


@pytest.mark.parametrize(
    "action, field, message",
    [
        (ActionSpec(name="", kind="manual", config={"instructions": "x"}), "name", "needs a name"),
        (ActionSpec(name="a/b", kind="manual", config={"instructions": "x"}), "name", "no slash"),
        (ActionSpec(name="x", kind="script", config={}), "kind", "Unknown kind 'script'"),
        (ActionSpec(name="x", kind="manual", when="during", config={"instructions": "x"}), "when", "before or after"),
        (ActionSpec(name="x", kind="health_check", when="before"), "when", "runs after launch"),
        (ActionSpec(name="x", kind="ssm_command", when="before", config={"document": "AWS-RunShellScript"}), "when",
         "runs after launch"),
        (ActionSpec(name="x", kind="manual", config={"instructions": "x"}, timeout_minutes=0), "timeout_minutes",
         "from 1 to 1440"),
        (ActionSpec(name="x", kind="manual", config={"instructions": "x"}, timeout_minutes=1441), "timeout_minutes",
         "from 1 to 1440"),
        (ActionSpec(name="x", kind="manual", config={"instructions": "x"}, on_failure="ignore"), "on_failure",
         "fail or continue"),
        (ActionSpec(name="x", kind="ssm_automation", config={}), "config.document", "Name the SSM document"),
        (ActionSpec(name="x", kind="ssm_automation", config={"document": "ab"}), "config.document", "3 to 128"),
        (ActionSpec(name="x", kind="ssm_command", config={"document": "AWS-RunShellScript", "parameters": [1]}),
         "config.parameters", "object of names"),
        (ActionSpec(name="x", kind="ssm_command",
                    config={"document": "AWS-RunShellScript", "parameters": {"commands": [1]}}),
         "config.parameters", "list of strings"),
        (ActionSpec(name="x", kind="ssm_automation",
                    config={"document": "AWS-RestartEC2Instance", "parameters": {"InstanceId": ["i-1"]}}),
         "config.parameters", "Leave out InstanceId"),
        (ActionSpec(name="x", kind="webhook", config={}), "config.url", "Give the webhook's URL"),
        (ActionSpec(name="x", kind="webhook", config={"url": "ftp://example.com/"}), "config.url", "http and https"),
        (ActionSpec(name="x", kind="webhook", config={"url": "http://127.0.0.1/hook"}), "config.url",
         "DRSORCH_WEBHOOK_ALLOW_PRIVATE"),
        (ActionSpec(name="x", kind="manual", config={}), "config.instructions", "Say what the Operator must do"),
        (ActionSpec(name="x", kind="manual", config={"instructions": "x", "script": "rm"}), "config",
         "Unknown config key(s) for manual: script"),
        (ActionSpec(name="x", kind="health_check", config={"ec2_status_checks": False}), "config",
         "needs ec2_status_checks or ssm_ping"),
        (ActionSpec(name="x", kind="health_check", config={"ssm_ping": "yes"}), "config.ssm_ping", "true or false"),
        (ActionSpec(name="x", kind="manual", config=["instructions"]), "config", "The config is an object"),
    ],
)
def test_a_bad_action_is_refused_naming_its_field_and_nothing_is_saved(two_groups, action, field, message):
    errors = errors_of(two_groups, web_actions=[action])
    assert set(errors) == {f"waves.1.actions.0.{field}"}, errors
    assert message in errors[f"waves.1.actions.0.{field}"]
    assert not WaveAction.objects.exists()


def test_action_names_are_unique_within_the_plan(two_groups):
    same = ActionSpec(name="Check", kind="manual", config={"instructions": "Look."})
    errors = errors_of(two_groups, db_actions=[same], web_actions=[same])
    assert errors == {
        "waves.1.actions.0.name": "Two actions are named 'Check'; action names must be unique within a plan."
    }


def test_a_nul_character_anywhere_in_a_config_is_refused(two_groups):
    action = ActionSpec(name="Run", kind="ssm_command",
                        config={"document": "AWS-RunShellScript", "parameters": {"commands": ["a\x00b"]}})
    errors = errors_of(two_groups, web_actions=[action])
    assert "NUL" in errors["waves.1.actions.0.config"]
