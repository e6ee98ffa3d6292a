"""The simulated EC2 subset: DescribeInstances and DescribeInstanceStatus of recovery instances.

EC2 speaks the `ec2` query protocol: a form-encoded request (Action=...&InstanceId.1=...)
and an XML answer in the EC2 namespace. Errors are `<Response><Errors><Error>` documents.
"""

import re
import uuid
from urllib.parse import parse_qs
from xml.etree import ElementTree

from django.utils import timezone

from .drs.instances import instance_state, visible_instances
from .protocol import SandboxError, iso, paged
from .simulation import derived_hex

EC2_NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"
STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48}
EC2_STATE = {"RUNNING": "running", "SHUTTING-DOWN": "shutting-down", "TERMINATED": "terminated"}
INSTANCE_ID_RE = re.compile(r"^i-[0-9a-f]{8,17}$")
STATUS_CHECK_SHARE = 0.25  # status checks initialize for this share of the launch duration


def parse_form(body):
    """The flat parameters of a query-protocol request."""
    text = body.decode() if isinstance(body, bytes) else (body or "")
    return {key: values[-1] for key, values in parse_qs(text, keep_blank_values=True).items()}


def _numbered(params, prefix):
    """Values of prefix.1, prefix.2, ... in order."""
    found = []
    for key, value in params.items():
        match = re.fullmatch(re.escape(prefix) + r"\.(\d+)", key)
        if match:
            found.append((int(match.group(1)), value))
    return [value for _, value in sorted(found)]


def _filters(params):
    filters = {}
    for key, name in params.items():
        match = re.fullmatch(r"Filter\.(\d+)\.Name", key)
        if match:
            filters[name] = _numbered(params, f"Filter.{match.group(1)}.Value")
    return filters


def _selected_instances(scope, params, now):
    ids = _numbered(params, "InstanceId")
    for instance_id in ids:
        if not INSTANCE_ID_RE.match(instance_id):
            raise SandboxError("InvalidInstanceID.Malformed", f'Invalid id: "{instance_id}"', status=400)
    instances = visible_instances(scope, now).order_by("launched_at", "id")
    if ids:
        instances = instances.filter(instance_id__in=ids)
        missing = sorted(set(ids) - set(instances.values_list("instance_id", flat=True)))
        if missing:
            raise SandboxError("InvalidInstanceID.NotFound",
                               f"The instance IDs '{', '.join(missing)}' do not exist", status=400)
    selected = list(instances)
    for name, values in _filters(params).items():
        selected = [i for i in selected if _matches(i, name, values, now)]
    return selected


def _matches(instance, name, values, now):
    if name == "instance-id":
        return instance.instance_id in values
    if name == "instance-state-name":
        return EC2_STATE[instance_state(instance, now)] in values
    if name.startswith("tag:"):
        return instance.tags.get(name[4:]) in values
    raise SandboxError("InvalidParameterValue", f"The filter '{name}' is invalid", status=400)


def _page(params, items):
    body = {}
    if params.get("MaxResults"):
        if not params["MaxResults"].isdigit():
            raise SandboxError("InvalidParameterValue", "MaxResults must be a number.", status=400)
        body["maxResults"] = int(params["MaxResults"])
    if params.get("NextToken"):
        body["nextToken"] = params["NextToken"]
    try:
        return paged(items, body)
    except SandboxError as error:
        raise SandboxError("InvalidParameterValue", error.message, status=400)


def _sub(parent, tag, text=None):
    element = ElementTree.SubElement(parent, tag)
    if text is not None:
        element.text = str(text)
    return element


def _state(parent, tag, state):
    element = _sub(parent, tag)
    _sub(element, "code", STATE_CODES[state])
    _sub(element, "name", state)


def private_ip(instance_id):
    """The private IP address of an instance (derived from its ID; SSM shows it too)."""
    digits = int(derived_hex(4, instance_id, "ip"), 16)
    return f"10.0.{digits // 256 % 256}.{digits % 254 + 1}"


def _instance_item(parent, instance, now):
    item = _sub(parent, "item")
    state = EC2_STATE[instance_state(instance, now)]
    ip = private_ip(instance.instance_id)
    _sub(item, "instanceId", instance.instance_id)
    _sub(item, "imageId", "ami-" + derived_hex(17, instance.instance_id, "ami"))
    _state(item, "instanceState", state)
    _sub(item, "privateDnsName", f"ip-{ip.replace('.', '-')}.ec2.internal")
    _sub(item, "amiLaunchIndex", 0)
    _sub(item, "instanceType", instance.instance_type)
    _sub(item, "launchTime", iso(instance.launched_at))
    placement = _sub(item, "placement")
    _sub(placement, "availabilityZone", f"{instance.region}a")
    _sub(placement, "tenancy", "default")
    _sub(_sub(item, "monitoring"), "state", "disabled")
    if state != "terminated":
        _sub(item, "subnetId", "subnet-" + derived_hex(17, instance.account_id, instance.region, "subnet"))
        _sub(item, "vpcId", "vpc-" + derived_hex(17, instance.account_id, instance.region, "vpc"))
        _sub(item, "privateIpAddress", ip)
    _sub(item, "architecture", "x86_64")
    _sub(item, "rootDeviceType", "ebs")
    _sub(item, "rootDeviceName", "/dev/xvda")
    _sub(item, "virtualizationType", "hvm")
    _sub(item, "hypervisor", "xen")
    tags = _sub(item, "tagSet")
    for key, value in sorted(instance.tags.items()):
        tag = _sub(tags, "item")
        _sub(tag, "key", key)
        _sub(tag, "value", value)


def _document(action):
    root = ElementTree.Element(f"{action}Response", {"xmlns": EC2_NAMESPACE})
    _sub(root, "requestId", uuid.uuid4())
    return root


def describe_instances(scope, params):
    """DescribeInstances: recovery instances as EC2 shows them, one reservation each."""
    now = timezone.now()
    page, token = _page(params, _selected_instances(scope, params, now))
    root = _document("DescribeInstances")
    reservations = _sub(root, "reservationSet")
    for instance in page:
        reservation = _sub(reservations, "item")
        _sub(reservation, "reservationId", "r-" + derived_hex(17, instance.instance_id, "reservation"))
        _sub(reservation, "ownerId", instance.account_id)
        _instance_item(_sub(reservation, "instancesSet"), instance, now)
    if token:
        _sub(root, "nextToken", token)
    return 200, root


def _status_checks(instance, state, now):
    if state != "running":
        return "not-applicable", None
    launch_duration = instance.launched_at - instance.job.created_at
    if now < instance.launched_at + launch_duration * STATUS_CHECK_SHARE:
        return "initializing", "initializing"
    return "ok", "passed"


def describe_instance_status(scope, params):
    """DescribeInstanceStatus: status checks initialize for a while after launch, then pass."""
    now = timezone.now()
    include_all = params.get("IncludeAllInstances", "false").lower() == "true"
    instances = [
        i for i in _selected_instances(scope, params, now)
        if include_all or instance_state(i, now) == "RUNNING"
    ]
    page, token = _page(params, instances)
    root = _document("DescribeInstanceStatus")
    statuses = _sub(root, "instanceStatusSet")
    for instance in page:
        state = EC2_STATE[instance_state(instance, now)]
        summary, detail = _status_checks(instance, state, now)
        item = _sub(statuses, "item")
        _sub(item, "instanceId", instance.instance_id)
        _sub(item, "availabilityZone", f"{instance.region}a")
        _state(item, "instanceState", state)
        for check in ("systemStatus", "instanceStatus"):
            element = _sub(item, check)
            _sub(element, "status", summary)
            if detail:
                detail_item = _sub(_sub(element, "details"), "item")
                _sub(detail_item, "name", "reachability")
                _sub(detail_item, "status", detail)
    if token:
        _sub(root, "nextToken", token)
    return 200, root


def error_document(code, message):
    """An EC2 error answer."""
    root = ElementTree.Element("Response")
    error = _sub(_sub(root, "Errors"), "Error")
    _sub(error, "Code", code)
    _sub(error, "Message", message)
    _sub(root, "RequestID", uuid.uuid4())
    return root


def to_bytes(root):
    """Serialize an answer document."""
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


OPERATIONS = {
    "DescribeInstances": describe_instances,
    "DescribeInstanceStatus": describe_instance_status,
}

