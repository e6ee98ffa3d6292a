"""Issue 13's action pages: a start's comment, confirmed approvals and cancellations (a comment
required for a RECOVERY), and a running plan shown as running with its Start buttons disabled."""

import re

import pytest
from django.urls import reverse

from executions.choices import ExecutionMode, ExecutionStatus, WaveStatus
from executions.models import Execution, ExecutionEvent, WaveRun
from executions.services import execution_start
from plans.services import WaveSpec, plan_save
from tests.factories import build_execution

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def start(client, plan, mode="DRILL", follow=False, **extra):
    return client.post(reverse("plans:plan_start", args=[plan.pk]), {"mode": mode, **extra}, follow=follow)


# --- A. the start's comment ----------------------------------------------------------------------


def test_the_start_forms_take_a_comment_shown_on_the_execution_and_its_report(login, demo):
    client = login("Commander")
    page = client.get(demo["plan"].get_absolute_url()).content.decode()
    assert 'id="id_comment_drill"' in page and 'id="id_comment_recovery"' in page

    response = start(client, demo["plan"], comment="Game day: region eu-west-1 lost")
    execution = Execution.objects.get()
    assert response.status_code == 302 and execution.comment == "Game day: region eu-west-1 lost"
    detail = client.get(execution.get_absolute_url()).content.decode()
    assert 'id="start-comment"' in detail and "Game day: region eu-west-1 lost" in detail
    report = client.get(reverse("executions:report", args=[execution.pk])).content.decode()
    assert re.search(r'id="start-comment">Game day: region eu-west-1 lost<', report)
    event = ExecutionEvent.objects.get(execution=execution, kind="ACTION")
    assert event.actor == client.user and "Game day: region eu-west-1 lost" in event.message


def test_a_too_long_start_comment_is_a_form_error_and_starts_nothing(login, demo):
    response = start(login("Operator"), demo["plan"], comment="z" * 1001)

    assert response.status_code == 400
    assert "Ensure this value has at most 1000 characters (it has 1001)." in response.content.decode()
    assert not Execution.objects.exists()


# --- 3. approve and cancel: confirmed, with a comment ---------------------------------------------


def waiting(mode):
    execution = build_execution(servers=4, waves=2, status=ExecutionStatus.WAITING_APPROVAL)
    Execution.objects.filter(pk=execution.pk).update(mode=mode)
    execution.refresh_from_db()
    WaveRun.objects.filter(execution=execution, index=1).update(
        status=WaveStatus.WAITING_APPROVAL, approval_required=True, started_at=None
    )
    return execution


def test_approve_and_cancel_lead_to_a_confirmation_page_not_a_post(login):
    execution = waiting(ExecutionMode.RECOVERY)
    client = login("Commander")
    body = client.get(execution.get_absolute_url()).content.decode()
    approve_url = reverse("executions:approve", args=[execution.pk])
    cancel_url = reverse("executions:cancel", args=[execution.pk])
    assert f'href="{approve_url}?wave_index=1"' in body and f'href="{cancel_url}"' in body
    assert f'action="{approve_url}"' not in body and f'action="{cancel_url}"' not in body

    confirm = client.get(f"{approve_url}?wave_index=1").content.decode()
    assert "Approve wave 2: Wave 2?" in confirm and "This is a RECOVERY" in confirm
    assert "(required for a recovery)" in confirm and "required" in re.search(r"<textarea[^>]*>", confirm).group()
    assert 'name="wave_index" value="1"' in confirm
    cancel = client.get(cancel_url).content.decode()
    assert "Cancel this recovery?" in cancel and "Back, do nothing" in cancel
    assert WaveRun.objects.get(execution=execution, index=1).status == WaveStatus.WAITING_APPROVAL


def test_approving_a_recovery_gate_without_a_comment_is_refused_on_the_page(login):
    execution = waiting(ExecutionMode.RECOVERY)
    client = login("Operator")
    url = reverse("executions:approve", args=[execution.pk])

    refused = client.post(url, {"wave_index": 1, "comment": "  "})
    assert refused.status_code == 400
    assert "A comment is required to approve a gate of a RECOVERY" in refused.content.decode()
    assert WaveRun.objects.get(execution=execution, index=1).status == WaveStatus.WAITING_APPROVAL

    response = client.post(url, {"wave_index": 1, "comment": "DB checked by Ana"}, follow=True)
    assert WaveRun.objects.get(execution=execution, index=1).status == WaveStatus.LAUNCHING
    event = ExecutionEvent.objects.get(execution=execution, kind="ACTION")
    assert event.actor == client.user and event.wave_index == 1
    body = response.content.decode()
    assert "Approved." in body
    assert "<strong>operator</strong></span>" in body
    message = "Approved wave 2 &#x27;Wave 2&#x27;. Comment: \u201cDB checked by Ana\u201d"
    assert f'<span class="message">{message}</span>' in body


def test_a_drill_is_approved_and_cancelled_without_a_comment(login):
    execution = waiting(ExecutionMode.DRILL)
    client = login("Operator")
    confirm = client.get(reverse("executions:approve", args=[execution.pk])).content.decode()
    assert "(optional)" in confirm

    client.post(reverse("executions:approve", args=[execution.pk]), {"wave_index": 1, "comment": ""})
    assert WaveRun.objects.get(execution=execution, index=1).status == WaveStatus.LAUNCHING
    client.post(reverse("executions:cancel", args=[execution.pk]), {"comment": ""})
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.CANCELLING


def test_cancelling_a_recovery_needs_a_comment_on_the_page(login):
    execution = build_execution(servers=2)
    Execution.objects.filter(pk=execution.pk).update(mode=ExecutionMode.RECOVERY)
    client = login("Commander")
    url = reverse("executions:cancel", args=[execution.pk])

    refused = client.post(url, {})
    assert refused.status_code == 400 and "A comment is required to cancel a RECOVERY" in refused.content.decode()
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.RUNNING

    client.post(url, {"comment": "Customer asked to stop"})
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.CANCELLING
    event = ExecutionEvent.objects.get(execution=execution, kind="ACTION")
    assert event.actor_name == "commander" and event.data == {"comment": "Customer asked to stop"}


@pytest.mark.parametrize("action", ["approve", "cancel"])
def test_the_confirmation_pages_keep_the_permissions(login, action):
    execution = waiting(ExecutionMode.DRILL)
    url = reverse(f"executions:{action}", args=[execution.pk])
    assert login("Viewer").get(url).status_code == 403
    assert login("Planner").post(url, {"comment": "x"}).status_code == 403


def test_retry_and_cleanup_have_no_confirmation_page(login):
    execution = build_execution(servers=2)
    assert login("Operator").get(reverse("executions:retry", args=[execution.pk])).status_code == 405


def test_a_bad_wave_index_on_the_confirmation_is_a_400_not_a_500(login):
    execution = waiting(ExecutionMode.DRILL)
    client = login("Operator")
    url = reverse("executions:approve", args=[execution.pk])
    assert client.get(f"{url}?wave_index=%D9%A2").status_code == 200
    assert client.post(url, {"wave_index": "99999999999999999999"}).status_code == 400
    assert WaveRun.objects.get(execution=execution, index=1).status == WaveStatus.WAITING_APPROVAL


# --- 4. a running plan ------------------------------------------------------------------------------


def test_a_running_plan_shows_running_with_its_link_and_disabled_start_buttons(login, demo):
    running = execution_start(plan=demo["plan"], mode="DRILL", requested_by=None)
    body = login("Commander").get(demo["plan"].get_absolute_url()).content.decode()

    readiness = body[body.index('id="readiness"') :]
    assert '<span class="badge tone-run">running</span>' in readiness
    assert "tone-bad" not in readiness.split("</h2>")[0]
    assert re.search(rf'id="readiness-running">.*<a href="{running.get_absolute_url()}">', readiness)
    assert "already running as execution" not in readiness
    assert re.search(r'<button class="primary" type="submit" disabled[^>]*>Start drill</button>', body)
    assert re.search(r'<button class="danger" type="submit" disabled[^>]*>Start recovery</button>', body)
    assert body.count(f'the plan is <a href="{running.get_absolute_url()}">running</a>') == 2


def test_an_idle_plan_keeps_its_start_buttons_enabled(login, demo):
    body = login("Commander").get(demo["plan"].get_absolute_url()).content.decode()
    assert '<button class="primary" type="submit">Start drill</button>' in body
    assert '<span class="badge tone-ok">ready</span>' in body


def test_the_server_still_refuses_a_start_of_a_running_plan(login, demo):
    execution_start(plan=demo["plan"], mode="DRILL", requested_by=None)
    response = start(login("Operator"), demo["plan"], idempotency_key="forced")
    assert response.status_code == 302 and Execution.objects.count() == 1


def test_a_server_held_by_another_execution_links_that_execution(login, demo):
    holder = execution_start(plan=demo["plan"], mode="DRILL", requested_by=None)
    other = plan_save(name="Databases only", waves=[WaveSpec(name="DB", protection_groups=[demo["groups"][0]])])
    client = login("Operator")

    page = client.get(other.get_absolute_url()).content.decode()
    link = f'<a href="{holder.get_absolute_url()}">Open execution {str(holder.pk)[:8]}</a>'
    assert "is held by running execution" in page and link in page

    refused = start(client, other, follow=True).content.decode()
    assert f"held by running execution {holder.pk}" in refused
    assert f'<a href="{holder.get_absolute_url()}">Open the execution that holds the server</a>' in refused
    assert Execution.objects.filter(plan=other).count() == 0
