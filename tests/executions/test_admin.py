"""The Django admin: executions read-only, actions through the services, by permission."""

import pytest
from django.urls import reverse

from executions.services import execution_start

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)


@pytest.fixture
def gated_execution(clock, drive, make_plan):
    plan = make_plan("Admin gate", [("Database", ["db-01"], {"approval_required": True})])
    return drive(
        execution_start(plan=plan, mode="DRILL", requested_by=None), until=lambda e: e.status == "WAITING_APPROVAL"
    )


def post_action(client, action, execution):
    return client.post(
        reverse("admin:executions_execution_changelist"),
        {"action": action, "_selected_action": [str(execution.pk)]},
        follow=True,
    )


def test_statuses_are_not_editable_in_the_admin(client, make_user, gated_execution):
    admin = make_user("root", superuser=True)
    client.force_login(admin)
    page = client.get(reverse("admin:executions_execution_change", args=[gated_execution.pk]))
    assert page.status_code == 200
    assert b'name="status"' not in page.content


def test_operator_approves_from_the_admin(client, make_user, gated_execution):
    operator = make_user("olga", role="Operator")
    operator.is_staff = True
    operator.save()
    client.force_login(operator)
    response = post_action(client, "approve", gated_execution)
    assert "gate approved" in response.content.decode()
    assert gated_execution.wave_runs.get().approved_by == operator


def test_viewer_is_offered_no_action_and_cannot_post_one(client, make_user, gated_execution):
    viewer = make_user("vera", role="Viewer")
    viewer.is_staff = True
    viewer.save()
    client.force_login(viewer)
    page = client.get(reverse("admin:executions_execution_changelist"))
    assert page.status_code == 200 and b'value="approve"' not in page.content
    post_action(client, "approve", gated_execution)
    assert gated_execution.wave_runs.get().approved_at is None


def test_refusal_is_reported_by_name(client, make_user, gated_execution):
    admin = make_user("root", superuser=True)
    client.force_login(admin)
    response = post_action(client, "retry", gated_execution)
    assert "only FAILED, PARTIAL or TIMED_OUT executions can be retried" in response.content.decode()


@pytest.mark.parametrize("model", ["execution", "executionevent", "waverun", "serverlaunch", "drsjob"])
def test_executions_and_their_audit_trail_cannot_be_deleted_or_edited_in_the_admin(client, make_user, model):
    """Executions, their events, waves, launches and jobs are evidence: neither the delete page,
    nor the bulk action, nor a change form exists for them, even for a superuser."""
    from executions.models import DrsJob, ExecutionEvent
    from tests.factories import ServerLaunchFactory

    launch = ServerLaunchFactory()
    execution = launch.execution
    objects = {
        "execution": execution,
        "executionevent": ExecutionEvent.objects.create(execution=execution, kind="note", message="evidence"),
        "waverun": launch.wave_run,
        "serverlaunch": launch,
        "drsjob": DrsJob.objects.create(execution=execution, target=launch.target, job_id="drsjob-0123456789abcdef0"),
    }
    obj = objects[model]
    client.force_login(make_user("root", superuser=True))
    assert client.get(reverse(f"admin:executions_{model}_delete", args=[obj.pk])).status_code == 403
    assert client.post(reverse(f"admin:executions_{model}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403
    changelist = reverse(f"admin:executions_{model}_changelist")
    assert b'value="delete_selected"' not in client.get(changelist).content
    client.post(changelist, {"action": "delete_selected", "_selected_action": [str(obj.pk)], "post": "yes"})
    assert type(obj).objects.filter(pk=obj.pk).exists()
    page = client.get(reverse(f"admin:executions_{model}_change", args=[obj.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content


def test_the_admin_refuses_to_cancel_a_recovery_without_a_comment_and_says_where_to(
    client, make_user, clock, make_plan
):
    """Issue 13: the admin's bulk actions take no comment, which a RECOVERY's cancellation
    needs: refused with the reason and the execution's page, never a 500."""
    plan = make_plan("Admin recovery", [("Database", ["db-01"], {})])
    recovery = execution_start(plan=plan, mode="RECOVERY", requested_by=None)
    client.force_login(make_user("root", superuser=True))

    response = post_action(client, "cancel", recovery)

    assert response.status_code == 200
    body = response.content.decode()
    assert "A comment is required to cancel a RECOVERY" in body and recovery.get_absolute_url() in body
    recovery.refresh_from_db()
    assert recovery.status == "PENDING"
