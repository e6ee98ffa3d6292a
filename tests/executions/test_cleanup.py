"""Clean-up of drills by the worker: under throttling, without instance ids from DRS, and after a
later launch replaced some of the drill's instances."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from drsorch.sandbox.drs.instances import instance_state
from drsorch.sandbox.models import SandboxJob, SandboxRecoveryInstance
from drsorch.sandbox.services import sandbox_configure
from executions.models import ExecutionEvent, ServerLaunch
from executions.services import execution_cleanup, execution_start

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def running_instances():
    """The ids of the simulated recovery instances that are not terminated."""
    now = timezone.now()
    return {
        i.instance_id
        for i in SandboxRecoveryInstance.objects.filter(launched_at__lte=now)
        if instance_state(i, now) != "TERMINATED"
    }


def cleaned(drive, execution):
    return drive(execution, until=lambda e: e.cleaned_up_at is not None)


def test_cleanup_under_throttling_answers_202_and_the_worker_terminates_every_instance(
    clock, drive, make_plan, make_user, client
):
    sandbox_configure(throttle_rate=0.5)
    plan = make_plan("Throttled", [("Database", ["db-01", "db-02"], {}), ("Web", ["web-01", "web-02"], {})])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None), step=3)
    assert execution.status == "SUCCEEDED"
    instances = set(execution.server_launches.values_list("recovery_instance_id", flat=True))
    assert len(instances) == 4 and instances <= running_instances()

    api = APIClient()
    operator = make_user(username="operator", role="Operator")
    api.force_authenticate(operator)
    response = api.post(f"/api/v1/executions/{execution.pk}/cleanup/")
    assert response.status_code == 202, response.json()
    assert {s["launch_status"] for w in response.json()["waves"] for s in w["servers"]} == {"LAUNCHED"}

    # The page shows the clean-up and keeps polling while it runs.
    client.force_login(operator)
    live = client.get(f"/executions/{execution.pk}/live/").content.decode()
    assert 'hx-trigger="every 2s"' in live and "Clean-up in progress: 0/4 terminated" in live

    execution = cleaned(drive, execution)

    assert set(execution.server_launches.values_list("status", flat=True)) == {"TERMINATED"}
    assert not running_instances()
    live = client.get(f"/executions/{execution.pk}/live/").content.decode()
    assert 'hx-trigger="every' not in live and "Drill instances cleaned up" in live


def test_cleanup_finds_the_instances_drs_did_not_name(clock, drive, make_plan):
    sandbox_configure(omit_instance_ids=True)
    plan = make_plan("Omitted", [("Database", ["db-01", "db-02", "db-03"], {})])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    # Nothing stored either: the job log and DescribeRecoveryInstances must tell.
    ServerLaunch.objects.filter(hostname="db-02").update(recovery_instance_id="")
    assert len(running_instances()) == 3

    execution_cleanup(execution=execution, user=None)
    execution = cleaned(drive, execution)

    assert set(execution.server_launches.values_list("status", flat=True)) == {"TERMINATED"}
    assert not running_instances()


def test_cleanup_falls_back_to_describe_recovery_instances(clock, drive, make_plan, monkeypatch):
    sandbox_configure(omit_instance_ids=True)
    plan = make_plan("Omitted", [("Database", ["db-01"], {})])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    ServerLaunch.objects.update(recovery_instance_id="")
    from drsorch.drs import gateway

    monkeypatch.setattr(gateway, "job_log_items", lambda **_: [])  # an old job's log told nothing

    execution_cleanup(execution=execution, user=None)
    execution = cleaned(drive, execution)

    assert execution.server_launches.get().recovery_instance_id.startswith("i-")
    assert not running_instances()


def test_cleanup_of_an_older_drill_skips_the_instances_a_later_drill_replaced(clock, drive, shared):
    first_plan, second_plan = shared
    first = drive(execution_start(plan=first_plan, mode="DRILL", requested_by=None))
    old = dict(first.server_launches.values_list("hostname", "recovery_instance_id"))
    second = drive(execution_start(plan=second_plan, mode="DRILL", requested_by=None))
    newer = dict(second.server_launches.values_list("hostname", "recovery_instance_id"))
    assert newer["db-01"] != old["db-01"]  # DRS replaced the first drill's db-01 instance

    execution_cleanup(execution=first, user=None)
    first = cleaned(drive, first)

    assert set(first.server_launches.values_list("status", flat=True)) == {"TERMINATED"}
    assert running_instances() == set(newer.values())  # the later drill's instances are untouched
    assert ExecutionEvent.objects.filter(
        execution=first,
        message__contains=f"{old['db-01']} already gone (replaced by a later launch / not found)",
    ).exists()
    assert set(second.server_launches.values_list("status", flat=True)) == {"LAUNCHED"}


def test_cleanup_proof_is_when_drs_terminated_not_when_a_5s_poll_noticed(clock, drive, make_plan):
    plan = make_plan("Proof", [("Database", ["db-01", "db-02"], {})])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    execution_cleanup(execution=execution, user=None)
    execution = drive(execution, step=5, until=lambda e: e.cleaned_up_at is not None)

    # DRS confirms a termination when it ends the TERMINATE job (its endDateTime, to the second).
    drs_ended = {job.job_id: job.ends_at for job in SandboxJob.objects.filter(type="TERMINATE")}
    for launch in execution.server_launches.select_related("cleanup_job"):
        assert launch.status == "TERMINATED" and launch.cleanup_job is not None
        assert launch.terminated_at == launch.cleanup_job.drs_ended_at
        assert abs((launch.terminated_at - drs_ended[launch.cleanup_job.job_id]).total_seconds()) < 1


def test_a_clean_up_still_holding_servers_is_named_by_readiness_and_by_the_held_launch(clock, drive, make_plan):
    """Issue 13: DRS's TERMINATE job carries no tags, but drsorch recorded it: the busy-server
    finding and the HELD launch name the drill whose clean-up holds the servers."""
    from executions.choices import JobType, LaunchPhase
    from executions.models import DrsJob
    from executions.readiness import plan_readiness

    plan = make_plan("Held by a clean-up", [("Database", ["db-01"], {})])
    drill = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    execution_cleanup(execution=drill, user=None)
    drive(
        drill, until=lambda e: DrsJob.objects.filter(execution=e, type=JobType.TERMINATE, job_id__isnull=False).exists()
    )
    terminate = DrsJob.objects.get(execution=drill, type=JobType.TERMINATE, job_id__isnull=False)
    assert SandboxJob.objects.get(job_id=terminate.job_id).ends_at > timezone.now()  # still active in DRS

    [held] = [c for c in plan_readiness(plan=plan).warnings if c.code == "server_in_active_job"]
    assert held.execution == drill
    assert f"DRS job {terminate.job_id} of drsorch execution {drill.pk} (plan 'Held by a clean-up'" in held.message
    assert held.as_json()["execution"] == str(drill.pk)

    again = execution_start(plan=plan, mode="DRILL", requested_by=None, accept_risks=True)
    drive(again, until=lambda e: e.server_launches.filter(phase=LaunchPhase.HELD).exists(), max_ticks=3)
    launch = again.server_launches.get()
    assert launch.error == (
        f"Waiting for DRS job {terminate.job_id} (the clean-up of drsorch execution {drill.pk}, drill of "
        "'Held by a clean-up'), which holds this server; it is launched once that job ends."
    )
