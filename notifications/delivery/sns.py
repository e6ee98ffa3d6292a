"""Publish a notification to an SNS topic through `drsorch.aws.client_for(target, "sns")`
(the sandbox answers it for a sandbox target). The message is the JSON payload."""

import json

from botocore.exceptions import BotoCoreError, ClientError

from drsorch.aws import client_for

from . import Sent
from .summary import summarize

SUBJECT_MAX = 99  # SNS: fewer than 100 printable ASCII characters


def subject_for(payload: dict) -> str:
    """A subject SNS accepts: printable ASCII, no line break, under 100 characters."""
    title = summarize(payload).title
    text = "".join(ch if " " <= ch <= "~" else "?" for ch in title).strip() or "drsorch notification"
    return text[:SUBJECT_MAX]


def publish(*, target, topic_arn: str, payload: dict) -> Sent:
    """Publish `payload` to `topic_arn` with `target`'s credentials; delivered once SNS accepted it."""
    if target is None:
        return Sent(ok=False, error="The channel has no target to publish with.")
    try:
        client = client_for(target, "sns")
        client.publish(TopicArn=topic_arn, Subject=subject_for(payload), Message=json.dumps(payload))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return Sent(ok=False, status_code=status, error=f"{error.get('Code')}: {error.get('Message')}"[:1000])
    except (BotoCoreError, ValueError) as exc:
        return Sent(ok=False, error=f"{type(exc).__name__}: {exc}"[:1000])
    return Sent(ok=True)
