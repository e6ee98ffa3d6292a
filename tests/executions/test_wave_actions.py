"""Wave actions in the engine, through the sandbox, the real boto3 client and a real local
HTTP server: manual, webhook and health_check, ordering, on_failure, timeouts, cancel,
crashes between a call and its record, completion by API, CLI and page, the execution JSON,
and no extra query for waves without actions."""

import hashlib
import hmac
import http.server
import json
import threading
from dataclasses import dataclass, field
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from executions import engine
from executions.choices import ActionStatus, EventKind, WaveStatus
from executions.engine import actions as engine_actions
from executions.engine.actions import records as action_records
from executions.engine.actions import webhook as action_webhook
from executions.exceptions import ExecutionConflict
from executions.models import ActionRun, ExecutionEvent
from executions.services import execution_action_complete, execution_cancel, execution_retry, execution_start
from executions.tasks import launch_budget_seconds
from plans.actions import ActionSpec

from .conftest import launch_counts

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)


# --- a real webhook receiver -------------------------------------------------------------------


@dataclass
class Received:
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    default_status: int = 200
    # When set, each POST is received and then held until the event is set: a slow receiver.
    gate: threading.Event | None = None


@pytest.fixture
def receiver(settings):
    """A real HTTP server on 127.0.0.1 (private addresses allowed for the test)."""
    settings.DRSORCH_WEBHOOK_ALLOW_PRIVATE = True
    holder = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state = holder["state"]
            state.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
            if state.gate is not None:
                state.gate.wait(timeout=30)
            status = state.statuses.pop(0) if state.statuses else state.default_status
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["state"] = Receiver(url=f"http://127.0.0.1:{httpd.server_address[1]}/hook")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield holder["state"]
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


# --- helpers -----------------------------------------------------------------------------------


def tick(execution):
    engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
    execution.refresh_from_db()
    return execution


def action(execution, name):
    return ActionRun.objects.get(execution=execution, name=name)


def waves(execution):
    return {w.name: w.status for w in execution.wave_runs.all()}


def two_waves(make_plan, first_actions, *, second_actions=()):
    return make_plan(
        "Actions",
        [
            ("Database", ["db-01"], {"actions": list(first_actions)}),
            ("Application", ["app-01"], {"actions": list(second_actions)}),
        ],
    )


def manual(name="Check the database", **options):
    return ActionSpec(name=name, kind="manual", config={"instructions": "Log in and check replication."}, **options)


def webhook(url, name="Tell the change board", **options):
    return ActionSpec(name=name, kind="webhook", config={"url": url, "secret": "s3cret"}, **options)


class Crash(BaseException):
    """The process dies (not an Exception: nothing may catch it on the way)."""


# --- manual ------------------------------------------------------------------------------------


def test_manual_after_action_holds_the_next_wave_until_an_operator_completes_it(clock, drive, make_plan, make_user):
    plan = two_waves(make_plan, [manual()])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    execution = drive(execution, until=lambda e: action(e, "Check the database").status == ActionStatus.WAITING)
    assert waves(execution) == {"Database": WaveStatus.AFTER_ACTIONS, "Application": WaveStatus.PENDING}
    assert execution.status == "RUNNING"
    for _ in range(5):  # it holds however long it waits
        clock.shift(30)
        execution = tick(execution)
    assert waves(execution)["Application"] == WaveStatus.PENDING
    assert launch_counts()["app-01"] == 0

    operator = make_user(username="olga", role="Operator")
    done = execution_action_complete(
        execution=execution, name="Check the database", user=operator, comment="Replication checked."
    )
    assert (done.status, done.completed_by_username, done.comment) == ("SUCCEEDED", "olga", "Replication checked.")
    execution = drive(execution)
    assert execution.status == "SUCCEEDED"
    assert waves(execution) == {"Database": "SUCCEEDED", "Application": "SUCCEEDED"}
    app = execution.wave_runs.get(name="Application")
    assert app.started_at >= action(execution, "Check the database").finished_at
    assert ExecutionEvent.objects.filter(
        execution=execution, kind=EventKind.ACTION, actor_name="olga", message__contains="Check the database"
    ).exists()
    # Two clicks complete it once.
    with pytest.raises(ExecutionConflict):
        execution_action_complete(execution=execution, name="Check the database", user=operator, comment="Again.")


def test_manual_action_that_times_out_fails_its_wave_and_skips_dependents(clock, drive, make_plan):
    plan = two_waves(make_plan, [manual(timeout_minutes=2)])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None), step=30)
    assert execution.status == "FAILED"
    assert waves(execution) == {"Database": "FAILED", "Application": "SKIPPED"}
    run = action(execution, "Check the database")
    assert run.status == ActionStatus.TIMED_OUT
    assert "Timed out after 2 min" in run.error
    assert launch_counts()["app-01"] == 0


def test_cancel_cancels_a_waiting_manual_action(clock, drive, make_plan):
    plan = two_waves(make_plan, [manual()])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    execution = drive(execution, until=lambda e: action(e, "Check the database").status == ActionStatus.WAITING)
    execution_cancel(execution=execution, user=None)
    execution = drive(execution)
    assert execution.status == "CANCELLED"
    assert action(execution, "Check the database").status == ActionStatus.CANCELLED
    assert waves(execution) == {"Database": "CANCELLED", "Application": "CANCELLED"}


# --- webhook -----------------------------------------------------------------------------------


def test_before_webhook_posts_the_signed_execution_json_before_the_launch(clock, drive, make_plan, receiver):
    plan = two_waves(make_plan, [webhook(receiver.url, when="before")])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    assert execution.status == "SUCCEEDED"
    assert len(receiver.received) == 1
    got = receiver.received[0]
    expected = "sha256=" + hmac.new(b"s3cret", got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-drsorch-signature"] == expected
    run = action(execution, "Tell the change board")
    assert got.headers["x-drsorch-delivery"] == run.external["delivery_id"]
    body = got.json()
    assert body["id"] == str(execution.pk)
    # Sent while the wave ran its before actions, before any of its servers launched.
    assert body["waves"][0]["status"] == WaveStatus.BEFORE_ACTIONS
    assert body["waves"][0]["servers"][0]["launch_status"] == "NOT_STARTED"
    assert body["waves"][0]["actions"][0]["name"] == "Tell the change board"
    assert run.status == ActionStatus.SUCCEEDED and run.external["attempts"] == 1
    assert run.intent_at is not None


def test_webhook_is_retried_with_backoff_until_a_2xx_with_the_same_delivery_id(clock, drive, make_plan, receiver):
    receiver.statuses = [500, 503]
    plan = two_waves(make_plan, [webhook(receiver.url)])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    assert execution.status == "SUCCEEDED"
    assert len(receiver.received) == 3
    assert len({r.headers["x-drsorch-delivery"] for r in receiver.received}) == 1
    run = action(execution, "Tell the change board")
    assert run.status == ActionStatus.SUCCEEDED
    assert "after 3 attempt(s)" in run.output


def test_failing_before_webhook_fails_the_wave_unlaunched_and_skips_dependents(clock, drive, make_plan, receiver):
    receiver.default_status = 500
    plan = two_waves(
        make_plan, [webhook(receiver.url, when="before", timeout_minutes=1)], second_actions=[manual(name="Later")]
    )
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None), step=10)
    assert execution.status == "FAILED"
    assert waves(execution) == {"Database": "FAILED", "Application": "SKIPPED"}
    assert action(execution, "Later").status == ActionStatus.SKIPPED
    run = action(execution, "Tell the change board")
    assert run.status == ActionStatus.TIMED_OUT
    assert "HTTP 500" in run.error
    assert launch_counts() == {"db-01": 0, "app-01": 0}
    # Retried with a doubling backoff inside its minute: 0, 10, 30 s (then 70 s is past it).
    assert len(receiver.received) == 3


def test_continue_records_the_failure_and_goes_on(clock, drive, make_plan, receiver):
    receiver.default_status = 404
    plan = two_waves(
        make_plan,
        [
            webhook(receiver.url, timeout_minutes=1, on_failure="continue"),
            manual(name="Never skipped", timeout_minutes=60),
        ],
    )
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    execution = drive(execution, step=10, until=lambda e: action(e, "Never skipped").status == ActionStatus.WAITING)
    run = action(execution, "Tell the change board")
    assert run.status == ActionStatus.TIMED_OUT and "HTTP 404" in run.error
    assert ExecutionEvent.objects.filter(
        execution=execution, kind=EventKind.ERROR, message__contains="on_failure: continue"
    ).exists()
    execution_action_complete(execution=execution, name="Never skipped", user=None, comment="ok")
    execution = drive(execution)
    assert execution.status == "SUCCEEDED"
    assert waves(execution) == {"Database": "SUCCEEDED", "Application": "SUCCEEDED"}


def test_a_crash_between_the_post_and_its_record_resends_with_the_same_delivery_id(
    clock, make_plan, receiver, monkeypatch
):
    """At least once, never a new delivery: the receiver deduplicates by X-Drsorch-Delivery."""
    plan = two_waves(make_plan, [webhook(receiver.url, when="before")])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    real = action_records._recorded
    crashed = []

    def crash_once(*args, **kwargs):
        if not crashed:
            crashed.append(True)
            raise Crash()
        return real(*args, **kwargs)

    monkeypatch.setattr(action_records, "_recorded", crash_once)
    with pytest.raises(Crash):
        tick(execution)
    run = action(execution, "Tell the change board")
    assert (run.status, run.intent_at is not None, run.external.get("attempts")) == ("RUNNING", True, None)
    assert len(receiver.received) == 1
    clock.shift(5)
    tick(execution)
    run.refresh_from_db()
    assert run.status == ActionStatus.SUCCEEDED
    assert len(receiver.received) == 2
    assert receiver.received[0].headers["x-drsorch-delivery"] == receiver.received[1].headers["x-drsorch-delivery"]


def test_a_refused_address_fails_at_once(clock, drive, make_plan, receiver, settings):
    plan = two_waves(make_plan, [webhook(receiver.url, on_failure="continue")])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    settings.DRSORCH_WEBHOOK_ALLOW_PRIVATE = False  # the address became private since the start
    execution = drive(execution)
    run = action(execution, "Tell the change board")
    assert run.status == ActionStatus.FAILED and run.error.startswith("Refused:")
    assert execution.status == "SUCCEEDED"
    assert receiver.received == []


# --- health check ------------------------------------------------------------------------------


def test_health_check_waits_for_the_ec2_status_checks_of_every_instance(clock, drive, make_plan):
    check = ActionSpec(name="Healthy", kind="health_check", config={"ec2_status_checks": True})
    plan = make_plan("Health", [("Database", ["db-01", "db-02"], {"actions": [check]}), ("Web", ["web-01"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    execution = drive(execution, step=1, until=lambda e: action(e, "Healthy").status == ActionStatus.RUNNING)
    run = action(execution, "Healthy")
    assert "initializing" in run.output
    assert waves(execution)["Web"] == WaveStatus.PENDING
    execution = drive(execution, step=1)
    assert execution.status == "SUCCEEDED"
    run = action(execution, "Healthy")
    assert run.status == ActionStatus.SUCCEEDED
    assert run.output == "All 2 instance(s) passed."
    assert sorted(run.external["instances"]) == sorted(
        execution.server_launches.filter(wave_run__name="Database").values_list("recovery_instance_id", flat=True)
    )


def test_action_on_a_wave_whose_servers_all_failed_is_not_run(clock, drive, make_plan):
    from drsorch.sandbox.services import sandbox_configure

    check = ActionSpec(name="Healthy", kind="health_check", config={"ec2_status_checks": True})
    plan = make_plan("Health", [("Database", ["db-01"], {"actions": [check]})])
    sandbox_configure(fail_launch=["db-01"])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    assert execution.status == "FAILED"
    # The wave FAILED by its launch: its after actions never ran.
    run = action(execution, "Healthy")
    assert run.status == ActionStatus.SKIPPED and run.error == "Not run: the wave ended FAILED."


# --- retry -------------------------------------------------------------------------------------


def test_retry_runs_a_failed_action_again_as_a_new_attempt(clock, drive, make_plan, receiver):
    receiver.default_status = 500
    plan = two_waves(make_plan, [webhook(receiver.url, timeout_minutes=1)])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None), step=10)
    assert execution.status == "FAILED"
    first = action(execution, "Tell the change board")
    receiver.default_status = 200
    execution_retry(execution=execution, user=None)
    execution = drive(execution)
    assert execution.status == "SUCCEEDED"
    run = action(execution, "Tell the change board")
    assert (run.status, run.attempt) == (ActionStatus.SUCCEEDED, 2)
    assert run.external["delivery_id"] != first.external["delivery_id"]
    assert launch_counts() == {"db-01": 1, "app-01": 1}


# --- completing by API, CLI and page -----------------------------------------------------------


def api_as(make_user, role):
    user = make_user(username=role.lower(), role=role)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def waiting_manual(drive, make_plan):
    plan = two_waves(make_plan, [manual()])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    return drive(execution, until=lambda e: action(e, "Check the database").status == ActionStatus.WAITING)


def test_complete_through_the_api(clock, drive, make_plan, make_user):
    execution = waiting_manual(drive, make_plan)
    url = f"/api/v1/executions/{execution.pk}/actions/Check%20the%20database/complete/"
    viewer, operator = api_as(make_user, "Viewer"), api_as(make_user, "Operator")
    assert viewer.post(url, {"comment": "x"}, format="json").status_code == 403
    answer = operator.post(url, {}, format="json")
    assert answer.status_code == 400 and "comment" in answer.json()
    missing = f"/api/v1/executions/{execution.pk}/actions/Nope/complete/"
    assert operator.post(missing, {"comment": "x"}, format="json").status_code == 404
    answer = operator.post(url, {"comment": "Checked by hand."}, format="json")
    assert answer.status_code == 200, answer.content
    wave = answer.json()["waves"][0]
    assert wave["actions"] == [
        {
            "name": "Check the database",
            "kind": "manual",
            "when": "after",
            "status": "SUCCEEDED",
            "on_failure": "fail",
            "attempt": 1,
            "started_at": wave["actions"][0]["started_at"],
            "finished_at": wave["actions"][0]["finished_at"],
            "output": "Completed by operator: Checked by hand.",
            "error": None,
            "completed_by": "operator",
            "comment": "Checked by hand.",
        }
    ]
    assert operator.post(url, {"comment": "Again."}, format="json").status_code == 409
    assert ExecutionEvent.objects.filter(execution=execution, kind=EventKind.ACTION, actor_name="operator").exists()


def test_complete_through_the_cli(clock, drive, make_plan):
    execution = waiting_manual(drive, make_plan)
    with pytest.raises(CommandError, match="--comment") as exc:
        call_command("execution", "complete", str(execution.pk), "Check the database", stdout=StringIO())
    assert exc.value.returncode == 2  # no comment
    with pytest.raises(CommandError, match="no action named 'Nope'") as exc:
        call_command("execution", "complete", str(execution.pk), "Nope", "--comment", "x", stdout=StringIO())
    assert exc.value.returncode == 2
    out = StringIO()
    call_command("execution", "complete", str(execution.pk), "Check the database", "--comment", "Done.", stdout=out)
    assert "Completed manual action 'Check the database'" in out.getvalue()
    run = action(execution, "Check the database")
    assert (run.status, run.completed_by_username, run.comment) == ("SUCCEEDED", "cli", "Done.")


def test_complete_through_the_page(clock, drive, make_plan, make_user):
    execution = waiting_manual(drive, make_plan)
    viewer, operator = Client(), Client()
    viewer.force_login(make_user(username="vera", role="Viewer"))
    operator.force_login(make_user(username="otto", role="Operator"))
    page = operator.get(f"/executions/{execution.pk}/")
    assert "Check the database" in page.content.decode()
    assert 'class="bar action tone-run"' in page.content.decode()  # on the timeline, live
    assert "Log in and check replication." in page.content.decode()
    url = f"/executions/{execution.pk}/actions/Check%20the%20database/complete/"
    assert url in page.content.decode()
    assert url not in viewer.get(f"/executions/{execution.pk}/").content.decode()
    assert viewer.post(url, {"comment": "x"}).status_code == 403
    confirm = operator.get(url)
    assert confirm.status_code == 200 and "comment" in confirm.content.decode()
    answer = operator.post(url, {"comment": ""})
    assert answer.status_code == 400 and action(execution, "Check the database").status == ActionStatus.WAITING
    answer = operator.post(url, {"comment": "All good."})
    assert answer.status_code == 302
    assert action(execution, "Check the database").completed_by_username == "otto"


# --- no cost without actions -------------------------------------------------------------------


def test_waves_without_actions_read_no_action_rows(clock, make_plan):
    plan = make_plan("Plain", [("Database", ["db-01"], {}), ("Web", ["web-01"], {})])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    with CaptureQueriesContext(connection) as queries:
        for _ in range(40):
            tick(execution)
            if execution.is_terminal:
                break
            clock.shift(5)
    assert execution.status == "SUCCEEDED"
    assert not [q["sql"] for q in queries.captured_queries if "executions_actionrun" in q["sql"]]


# --- the report and the frozen plan ------------------------------------------------------------


def test_the_report_lists_the_actions_and_the_frozen_plan_keeps_no_secret(clock, drive, make_plan, receiver,
                                                                          make_user):
    plan = two_waves(make_plan, [webhook(receiver.url, when="before"), manual()])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    execution = drive(execution, until=lambda e: action(e, "Check the database").status == ActionStatus.WAITING)
    execution_action_complete(execution=execution, name="Check the database", user=None, comment="Looked fine.")
    execution = drive(execution)
    frozen = execution.plan_snapshot["waves"][0]["actions"]
    assert [a["name"] for a in frozen] == ["Tell the change board", "Check the database"]
    assert frozen[0]["config"] == {"url": receiver.url}
    client = Client()
    client.force_login(make_user(username="vic", role="Viewer"))
    html = client.get(f"/executions/{execution.pk}/report/").content.decode()
    assert 'id="actions"' in html
    assert "Tell the change board" in html and "completed by cli: Looked fine." in html
    assert "s3cret" not in html
    pdf = client.get(f"/executions/{execution.pk}/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_an_approved_gate_runs_the_before_actions_before_the_launch(clock, drive, make_plan):
    from executions.services import execution_approve

    gated = {"approval_required": True, "actions": [manual(name="Freeze writes", when="before")]}
    plan = make_plan("Gated", [("Database", ["db-01"], gated)])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    execution = drive(execution, until=lambda e: e.status == "WAITING_APPROVAL")
    execution_approve(execution=execution, user=None)
    assert waves(execution) == {"Database": WaveStatus.BEFORE_ACTIONS}
    execution = drive(execution, until=lambda e: action(e, "Freeze writes").status == ActionStatus.WAITING)
    assert launch_counts() == {"db-01": 0}
    execution_action_complete(execution=execution, name="Freeze writes", user=None, comment="Frozen.")
    execution = drive(execution)
    assert execution.status == "SUCCEEDED"
    assert launch_counts() == {"db-01": 1}
    wave = execution.wave_runs.get()
    assert wave.deadline_at >= action(execution, "Freeze writes").finished_at


def test_the_admin_shows_the_actions_without_their_secret(clock, make_plan, receiver, make_user):
    plan = two_waves(make_plan, [webhook(receiver.url)])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    client = Client()
    client.force_login(make_user(username="root", superuser=True))
    page = client.get(f"/admin/executions/execution/{execution.pk}/change/").content.decode()
    assert "Tell the change board" in page and "s3cret" not in page


def test_watch_hints_how_to_complete_and_show_lists_the_actions(clock, drive, make_plan):
    from executions.cli import ProgressRenderer

    execution = waiting_manual(drive, make_plan)
    out = StringIO()
    renderer = ProgressRenderer(out, tty=False)
    renderer.update(execution)
    renderer.update(execution)
    text = out.getvalue()
    assert text.count("waits for the manual action 'Check the database'") == 1
    assert f'manage.py execution complete {execution.pk} "Check the database" --comment' in text
    shown = StringIO()
    call_command("execution", "show", str(execution.pk), stdout=shown)
    assert "after action 'Check the database'" in shown.getvalue() and "WAITING" in shown.getvalue()


def test_a_slow_webhook_receiver_holds_no_tick_and_its_answer_is_recorded_by_a_later_one(
    clock, drive, make_plan, receiver, monkeypatch
):
    monkeypatch.setattr(action_webhook, "WEBHOOK_WAIT_IN_TICK_SECONDS", 0.05)
    receiver.gate = threading.Event()
    plan = two_waves(make_plan, [webhook(receiver.url)])
    execution = execution_start(plan=plan, mode="DRILL", requested_by=None)
    execution = drive(execution, until=lambda e: action(e, "Tell the change board").status == ActionStatus.RUNNING)
    run = action(execution, "Tell the change board")
    in_flight = engine_actions.webhooks_in_flight.get((run.pk, run.attempt, 1))
    # The tick came back while the receiver still held the POST (had it waited, it would
    # have waited for the receiver, which answers only once the gate opens below).
    assert in_flight is not None and not in_flight.done()
    execution = tick(execution)
    assert len(receiver.received) == 1  # still in flight: not sent again
    assert action(execution, "Tell the change board").external.get("attempts", 0) == 0

    receiver.gate.set()
    in_flight.result(timeout=10)  # the receiver's answer has reached the POST's thread
    execution = tick(execution)
    run = action(execution, "Tell the change board")
    assert run.status == ActionStatus.SUCCEEDED and run.external["attempts"] == 1
    assert engine_actions.webhooks_in_flight.get((run.pk, run.attempt, 1)) is None
    execution = drive(execution)
    assert execution.status == "SUCCEEDED" and len(receiver.received) == 1
