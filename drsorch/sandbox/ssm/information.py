"""The managed-instance list: DescribeInstanceInformation."""


from django.utils import timezone

from ..drs.instances import instance_state, visible_instances
from ..ec2 import private_ip
from ..protocol import INSTANCE_ID_RE, seconds
from .common import (
    AGENT_VERSION,
    INFORMATION_FILTER_KEYS,
    PING_SECONDS,
    SSM_AGENT_SECONDS,
    _epoch,
    _page,
    _paged_answer,
    agent_registered,
    ssm_error,
)


def _information_filters(body):
    """[(key, values)] of InstanceInformationFilterList and Filters."""
    checked = []
    for item in body.get("InstanceInformationFilterList") or []:
        key, values = (item or {}).get("key"), (item or {}).get("valueSet") or []
        if key not in INFORMATION_FILTER_KEYS:
            raise ssm_error("InvalidFilterKey")
        if not values:
            raise ssm_error("InvalidInstanceInformationFilterValue", f"The filter value of {key} is not valid.")
        checked.append((key, values))
    for item in body.get("Filters") or []:
        key, values = (item or {}).get("Key"), (item or {}).get("Values") or []
        if not (key in INFORMATION_FILTER_KEYS or (isinstance(key, str) and key.startswith("tag:"))):
            raise ssm_error("InvalidFilterKey")
        checked.append((key, values))
    for key, values in checked:
        if key == "InstanceIds":
            bad = [v for v in values if not isinstance(v, str) or not INSTANCE_ID_RE.match(v)]
            if bad:
                raise ssm_error("InvalidInstanceId", f"Instance id {bad[0]} is not valid.")
    return checked


def _platform(instance):
    return "Windows" if "windows" in instance.source_server.os_name.lower() else "Linux"


def _information(instance, now):
    registered = instance.launched_at + seconds(SSM_AGENT_SECONDS)
    state = instance_state(instance, now)
    if state == "RUNNING":
        ping_status = "Online"
        last_ping = registered + seconds(((now - registered).total_seconds() // PING_SECONDS) * PING_SECONDS)
    else:  # shutting down: the agent stopped pinging
        ping_status, last_ping = "ConnectionLost", max(registered, instance.terminating_at)
    server = instance.source_server
    return {
        "InstanceId": instance.instance_id, "PingStatus": ping_status, "LastPingDateTime": _epoch(last_ping),
        "AgentVersion": AGENT_VERSION, "IsLatestVersion": False, "PlatformType": _platform(instance),
        "PlatformName": server.os_name.split(" ")[0], "PlatformVersion": "".join(
            c for c in server.os_name.split(" ")[1] if c.isdigit() or c == ".") if " " in server.os_name else "",
        "ResourceType": "EC2Instance", "IPAddress": private_ip(instance.instance_id),
        "ComputerName": server.fqdn or server.hostname, "SourceId": instance.instance_id,
        "SourceType": "AWS::EC2::Instance",
    }


def _information_matches(record, instance, key, values):
    if key == "InstanceIds":
        return record["InstanceId"] in values
    if key == "PingStatus":
        return record["PingStatus"] in values
    if key == "PlatformTypes":
        return record["PlatformType"] in values
    if key == "AgentVersion":
        return record["AgentVersion"] in values
    if key == "ResourceType":
        return record["ResourceType"] in values
    if key.startswith("tag:"):
        return instance.tags.get(key[4:]) in values
    return False


def describe_instance_information(scope, body):
    """DescribeInstanceInformation: instances whose SSM Agent has registered (SSM_AGENT_SECONDS
    after launch) and that are not terminated; paginated (MaxResults 5..50, default 10)."""
    filters = _information_filters(body)
    now = timezone.now()
    records = []
    for instance in visible_instances(scope, now).order_by("launched_at", "id"):
        if not agent_registered(instance, now) or instance_state(instance, now) == "TERMINATED":
            continue
        record = _information(instance, now)
        if all(_information_matches(record, instance, key, values) for key, values in filters):
            records.append(record)
    page, token = _page(records, body, default=10, maximum=50, minimum=5)
    return 200, _paged_answer("InstanceInformationList", page, token)
