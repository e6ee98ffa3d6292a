"""The simulated SNS subset: Publish to a topic, as botocore's `sns` model (2010-03-31) shapes it.

SNS speaks the `query` protocol: a form-encoded request (Action=Publish&TopicArn=...) and an
XML answer in the SNS namespace; errors are `<ErrorResponse><Error>` documents with the
modeled codes (InvalidParameter, NotFound, AuthorizationError, Throttling). Any well-formed
topic of the caller's own account and region exists; a topic elsewhere answers NotFound.
Accepted messages are recorded (SandboxSnsMessage).
"""

import re
import uuid
from xml.etree import ElementTree

from django.utils import timezone

from .models import SandboxSnsMessage
from .protocol import SandboxError

SNS_NAMESPACE = "http://sns.amazonaws.com/doc/2010-03-31/"
TOPIC_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:sns:(?P<region>[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}):(?P<account>[0-9]{12}):"
    r"(?P<name>[A-Za-z0-9_-]{1,256}(\.fifo)?)$"
)
# 256 KB: the largest message SNS accepts (UTF-8 bytes).
MAX_MESSAGE_BYTES = 262144
SUBJECT_RE = re.compile(r"^[!-~][ -~]{0,98}$")  # printable ASCII, not starting with a space, < 100


def invalid_parameter(message):
    return SandboxError("InvalidParameter", f"Invalid parameter: {message}", status=400)


def publish(scope, params):
    """Publish: check the request as SNS does, record the message, answer its MessageId."""
    if params.get("TargetArn") or params.get("PhoneNumber"):
        raise invalid_parameter("The drsorch sandbox simulates publishing to topics only (TopicArn).")
    topic_arn = params.get("TopicArn", "")
    if not topic_arn:
        raise invalid_parameter("TopicArn or TargetArn Reason: no value for required parameter")
    match = TOPIC_ARN_RE.match(topic_arn)
    if not match:
        raise invalid_parameter("TopicArn")
    if match["account"] != scope.account_id or match["region"] != scope.region:
        raise SandboxError("NotFound", "Topic does not exist", status=404)
    message = params.get("Message")
    if message is None or message == "":
        raise invalid_parameter("Empty message")
    if len(message.encode()) > MAX_MESSAGE_BYTES:
        raise invalid_parameter("Message too long")
    subject = params.get("Subject")
    if subject is not None and not SUBJECT_RE.match(subject):
        raise invalid_parameter("Subject")
    if match["name"].endswith(".fifo") and not params.get("MessageGroupId"):
        raise invalid_parameter("The MessageGroupId parameter is required for FIFO topics")
    record = SandboxSnsMessage.objects.create(
        message_id=str(uuid.uuid4()), account_id=scope.account_id, region=scope.region, topic_arn=topic_arn,
        subject=subject or "", message=message, published_at=timezone.now(),
    )
    root = ElementTree.Element("PublishResponse", {"xmlns": SNS_NAMESPACE})
    result = ElementTree.SubElement(root, "PublishResult")
    ElementTree.SubElement(result, "MessageId").text = record.message_id
    metadata = ElementTree.SubElement(root, "ResponseMetadata")
    ElementTree.SubElement(metadata, "RequestId").text = str(uuid.uuid4())
    return 200, root


def error_document(code, message, *, sender=True):
    """An SNS error answer."""
    root = ElementTree.Element("ErrorResponse", {"xmlns": SNS_NAMESPACE})
    error = ElementTree.SubElement(root, "Error")
    ElementTree.SubElement(error, "Type").text = "Sender" if sender else "Receiver"
    ElementTree.SubElement(error, "Code").text = code
    ElementTree.SubElement(error, "Message").text = message
    ElementTree.SubElement(root, "RequestId").text = str(uuid.uuid4())
    return root


def authorization_error(scope, operation, resource):
    """AuthorizationError as SNS words an IAM denial (`sandbox configure --deny Publish`)."""
    return SandboxError(
        "AuthorizationError",
        f"User: arn:aws:sts::{scope.account_id}:assumed-role/drsorch/drsorch is not authorized to perform: "
        f"SNS:{operation} on resource: {resource} because no identity-based policy allows the SNS:{operation} action",
        status=403,
    )


OPERATIONS = {"Publish": publish}
