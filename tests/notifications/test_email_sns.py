"""Email (Django's mail: text and HTML parts, the link and the verdict) and SNS (published
through client_for and answered by the sandbox, as real SNS would)."""

import json

import pytest
from django.core import mail

from drsorch.sandbox.models import SandboxSnsMessage
from drsorch.sandbox.services import sandbox_configure, sandbox_status
from executions.notable import NotableEvent, notable_events_send
from executions.services import execution_start
from notifications.models import Notification
from notifications.tasks import deliver_notifications

from .conftest import TOPIC_ARN

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def test_an_email_has_text_and_html_parts_with_the_link_and_the_verdict(clock, drive, make_plan, make_channel):
    make_channel("Mail", kind="email", address="oncall@example.com", events=["execution.finished"])
    plan = make_plan("Billing", [("Database", ["db-01"], {})])
    execution = drive(execution_start(plan=plan, mode="DRILL", requested_by=None))
    deliver_notifications()
    (message,) = mail.outbox
    link = f"http://127.0.0.1:8000/executions/{execution.pk}/"
    assert message.to == ["oncall@example.com"]
    assert message.subject == "[drsorch] DRILL of Billing ended SUCCEEDED: RTO met"
    assert "Verdict: RTO met" in message.body and link in message.body
    ((html, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    assert f'<a href="{link}">' in html and "RTO met" in html
    assert Notification.objects.get().status == "delivered"


def test_an_email_channel_needs_a_valid_address(api):
    response = api("Planner").post("/api/v1/notification-channels/", {
        "name": "Mail", "kind": "email", "address": "not an address", "events": ["execution.finished"],
    }, format="json")
    assert response.status_code == 400 and list(response.json()) == ["address"]


@pytest.fixture
def topic(sandbox_target, make_channel):
    return make_channel("Topic", kind="sns", topic_arn=TOPIC_ARN, target=sandbox_target, events=["drill.overdue"])


def test_sns_publishes_through_the_sandbox(clock, topic, make_plan):
    plan = make_plan("Billing", [("Database", ["db-01"], {})])
    notable_events_send([NotableEvent(event="drill.overdue", plan_id=plan.pk, details={"days": 3})])
    deliver_notifications()
    row = Notification.objects.get()
    assert row.status == "delivered"
    (published,) = SandboxSnsMessage.objects.all()
    assert published.topic_arn == TOPIC_ARN
    assert json.loads(published.message)["event"] == "drill.overdue"
    assert published.subject == "Plan Billing: a drill is overdue"
    assert json.loads(published.message)["plan"] == {
        "id": plan.pk, "name": "Billing", "url": f"http://127.0.0.1:8000/plans/{plan.pk}/", "days": 3,
    }
    assert sandbox_status()["sns_messages"][0]["message_id"] == published.message_id


def test_a_topic_of_another_account_is_a_recorded_failed_attempt(clock, sandbox_target, make_channel):
    make_channel("Elsewhere", kind="sns", topic_arn="arn:aws:sns:us-east-1:210987654321:alerts",
                 target=sandbox_target, events=["drill.overdue"])
    notable_events_send([NotableEvent(event="drill.overdue")])
    deliver_notifications()
    row = Notification.objects.get()
    (attempt,) = row.delivery_attempts.all()
    assert not attempt.ok and attempt.status_code == 404
    assert attempt.error == "NotFound: Topic does not exist"
    assert row.status == "pending" and row.last_error == attempt.error
    assert not SandboxSnsMessage.objects.exists()


def test_a_denied_publish_is_an_authorization_error(clock, topic):
    sandbox_configure(deny=["Publish"])
    notable_events_send([NotableEvent(event="drill.overdue")])
    deliver_notifications()
    (attempt,) = Notification.objects.get().delivery_attempts.all()
    assert attempt.status_code == 403 and attempt.error.startswith("AuthorizationError: User: arn:aws:sts::")


def test_the_sandbox_refuses_what_sns_refuses(sandbox_target):
    from botocore.exceptions import ClientError

    from drsorch.aws import client_for

    client = client_for(sandbox_target, "sns")
    cases = [
        ({"TopicArn": "arn:aws:sns:us-east-1:123456789012", "Message": "x"}, "InvalidParameter"),
        ({"TopicArn": "not-an-arn", "Message": "x"}, "InvalidParameter"),
        ({"TopicArn": TOPIC_ARN, "Message": ""}, "InvalidParameter"),
        ({"TopicArn": TOPIC_ARN, "Message": "x" * (256 * 1024 + 1)}, "InvalidParameter"),
        ({"TopicArn": TOPIC_ARN, "Message": "x", "Subject": "line\nbreak"}, "InvalidParameter"),
        ({"TopicArn": TOPIC_ARN, "Message": "x", "Subject": "s" * 100}, "InvalidParameter"),
        ({"TopicArn": TOPIC_ARN + ".fifo", "Message": "x"}, "InvalidParameter"),
        ({"TopicArn": "arn:aws:sns:eu-west-1:123456789012:alerts", "Message": "x"}, "NotFound"),
    ]
    for params, code in cases:
        with pytest.raises(ClientError) as caught:
            client.publish(**params)
        assert caught.value.response["Error"]["Code"] == code, params
    assert client.publish(TopicArn=TOPIC_ARN, Message="x" * (256 * 1024))["MessageId"]
    assert SandboxSnsMessage.objects.count() == 1


def test_sns_throttling_is_answered_like_sns(sandbox_target):
    from botocore.exceptions import ClientError

    from drsorch.aws import client_for

    sandbox_configure(throttle_rate=1.0)
    with pytest.raises(ClientError) as caught:
        client_for(sandbox_target, "sns").publish(TopicArn=TOPIC_ARN, Message="x")
    assert caught.value.response["Error"]["Code"] == "Throttling"


def test_an_sns_channel_needs_a_valid_topic_and_a_target(api, sandbox_target):
    planner = api("Planner")
    response = planner.post("/api/v1/notification-channels/", {
        "name": "Topic", "kind": "sns", "topic_arn": "arn:aws:sqs:us-east-1:123456789012:q",
        "events": ["drill.overdue"],
    }, format="json")
    assert response.status_code == 400 and set(response.json()) == {"topic_arn", "target"}
    response = planner.post("/api/v1/notification-channels/", {
        "name": "Topic", "kind": "sns", "topic_arn": TOPIC_ARN, "target": sandbox_target.pk,
        "events": ["drill.overdue"],
    }, format="json")
    assert response.status_code == 201


def test_an_sns_topic_of_another_region_than_its_target_is_refused_naming_both(api, sandbox_target):
    response = api("Planner").post("/api/v1/notification-channels/", {
        "name": "Topic", "kind": "sns", "topic_arn": "arn:aws:sns:eu-west-1:123456789012:alerts",
        "target": sandbox_target.pk, "events": ["drill.overdue"],
    }, format="json")
    assert response.status_code == 400 and list(response.json()) == ["topic_arn"]
    message = response.json()["topic_arn"][0]
    assert "eu-west-1" in message and sandbox_target.region in message
    # Another account's topic in the target's region is allowed: the topic's policy decides.
    response = api("Planner").post("/api/v1/notification-channels/", {
        "name": "Shared", "kind": "sns", "topic_arn": f"arn:aws:sns:{sandbox_target.region}:210987654321:alerts",
        "target": sandbox_target.pk, "events": ["drill.overdue"],
    }, format="json")
    assert response.status_code == 201, response.json()
