"""Drill instance time-to-live: the worker warns, then cleans up a drill's recovery instances
`drill_instance_ttl_minutes` after the drill ended; never a RECOVERY's."""

import datetime as dt

import pytest
from django.utils import timezone

from drsorch.sandbox.drs.instances import instance_state
from drsorch.sandbox.models import SandboxRecoveryInstance
from drsorch.sandbox.services import sandbox_configure
from executions.models import Execution, ExecutionEvent
from executions.services import execution_start
from executions.signals import notable_events
from executions.tasks import run_unattended
from executions.unattended import instance_ttl
from executions.unattended.instance_ttl import drill_instances_expire, warning_lead

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


@pytest.fixture
def expiring():
    """The drill_instances.expiring events sent while the test runs."""
    sent = []

    def receiver(sender, *, events, **kwargs):
        sent.extend(e for e in events if e.event == "drill_instances.expiring")

    notable_events.connect(receiver, weak=False, dispatch_uid="test-expiring")
    yield sent
    notable_events.disconnect(dispatch_uid="test-expiring")


def running_instances():
    now = timezone.now()
    return {
        i.instance_id
        for i in SandboxRecoveryInstance.objects.filter(launched_at__lte=now)
        if instance_state(i, now) != "TERMINATED"
    }


def test_warning_lead():
    assert warning_lead(1) == dt.timedelta(seconds=30)
    assert warning_lead(60) == dt.timedelta(minutes=10)


def test_a_one_minute_ttl_cleans_the_drill_instances(clock, drive, make_plan, expiring, client, make_user):
    plan = make_plan("Short-lived", [("Database", ["db-01", "db-02"], {})], drill_instance_ttl_minutes=1)
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    assert execution.status == "SUCCEEDED"
    instances = set(execution.server_launches.values_list("recovery_instance_id", flat=True))
    assert len(instances) == 2 and instances <= running_instances()
    ended = execution.finished_at
    expires_at = ended + dt.timedelta(minutes=1)

    # The execution page says when, before the warning.
    user = make_user("viewer", role="Viewer")
    client.force_login(user)
    page = client.get(execution.get_absolute_url()).content.decode()
    assert f"cleaned up at {expires_at:%H:%M} UTC by the time-to-live" in page

    run_unattended()  # too early: nothing
    assert expiring == [] and not ExecutionEvent.objects.filter(dedupe_key="drill_instances.expiring").exists()

    clock.move_to(ended + dt.timedelta(seconds=35))  # within the 30 s before the expiry
    run_unattended()
    run_unattended()
    assert len(expiring) == 1
    event = expiring[0]
    assert event.execution_id == execution.pk and event.plan_id == plan.pk
    assert event.dedupe_key == f"drill_instances.expiring:{execution.pk}"
    assert event.details == {
        "execution_id": str(execution.pk),
        "expires_at": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "instance_count": 2,
        "ttl_minutes": 1,
    }
    logged = ExecutionEvent.objects.get(execution=execution, dedupe_key="drill_instances.expiring")
    assert logged.message.startswith(f"Instances will be cleaned up at {expires_at:%H:%M} UTC by the time-to-live")
    execution.refresh_from_db()
    assert execution.cleaned_up_at is None and instances <= running_instances()

    clock.move_to(expires_at)
    run_unattended()
    assert len(expiring) == 1  # warned once
    asked = execution.events.get(kind="ACTION", actor_name="ttl")
    assert asked.message.startswith(
        "Started clean-up of 2 recovery instance(s): the plan's drill instance time-to-live"
    )

    execution = drive(execution, until=lambda e: e.cleaned_up_at is not None)
    assert set(execution.server_launches.values_list("status", flat=True)) == {"TERMINATED"}
    assert not running_instances()
    # Nothing more to do for it.
    run_unattended()
    assert execution.events.filter(kind="ACTION", actor_name="ttl").count() == 1


def test_a_worker_back_after_the_expiry_warns_then_cleans_in_the_same_minute(clock, drive, make_plan, expiring):
    plan = make_plan("Late", [("Database", ["db-01"], {})], drill_instance_ttl_minutes=5)
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    clock.shift(3600)

    result = drill_instances_expire(now=timezone.now())

    assert result.warned == result.cleaned == [str(execution.pk)]
    assert len(expiring) == 1
    assert drive(execution, until=lambda e: e.cleaned_up_at is not None).cleaned_up_at


def test_a_recovery_is_never_cleaned(clock, drive, make_plan, make_user, expiring):
    plan = make_plan("Production", [("Database", ["db-01"], {})], drill_instance_ttl_minutes=1)
    commander = make_user("commander", role="Commander")
    recovery = drive(execution_start(plan=plan, mode="RECOVERY", requested_by=commander))
    assert recovery.status == "SUCCEEDED"
    instances = set(recovery.server_launches.values_list("recovery_instance_id", flat=True))
    clock.shift(24 * 3600)

    run_unattended()
    run_unattended()

    recovery.refresh_from_db()
    assert recovery.cleaned_up_at is None and not recovery.jobs.filter(type="TERMINATE").exists()
    assert instances <= running_instances()
    assert expiring == [] and not recovery.events.filter(actor_name="ttl").exists()
    # And the clean-up step refuses one outright, whoever calls it.
    with pytest.raises(RuntimeError, match="never cleans up a RECOVERY"):
        instance_ttl._clean_up(recovery)


def test_a_plan_without_ttl_keeps_its_drill_instances(clock, drive, make_plan, expiring):
    plan = make_plan("Kept", [("Database", ["db-01"], {})])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    clock.shift(24 * 3600)
    run_unattended()
    execution.refresh_from_db()
    assert execution.cleaned_up_at is None and expiring == []
    assert running_instances()


def test_a_refused_ttl_clean_up_is_not_retried_every_minute(clock, drive, make_plan):
    plan = make_plan("Denied", [("Database", ["db-01"], {})], drill_instance_ttl_minutes=1)
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    sandbox_configure(deny=["TerminateRecoveryInstances"])
    clock.shift(120)
    run_unattended()
    open_jobs = {"type": "TERMINATE", "state__in": ["INTENDED", "ACTIVE"]}
    execution = drive(execution, until=lambda e: not e.jobs.filter(**open_jobs).exists())
    assert execution.cleaned_up_at is None
    assert execution.events.filter(kind="ERROR", message__contains="clean-up failed").exists()

    clock.shift(60)
    run_unattended()
    assert execution.events.filter(kind="ACTION", actor_name="ttl").count() == 1
    assert Execution.objects.get(pk=execution.pk).jobs.filter(type="TERMINATE").count() == 1


def test_the_dashboard_shows_when_the_ttl_cleans_a_drill_left_running(clock, drive, make_plan, client, make_user):
    plan = make_plan("Dash", [("Database", ["db-01"], {})], drill_instance_ttl_minutes=90)
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    expires_at = execution.finished_at + dt.timedelta(minutes=90)
    client.force_login(make_user("viewer", role="Viewer"))
    page = client.get("/").content.decode()
    assert f"cleaned up at {expires_at:%H:%M} UTC by the time-to-live" in page
