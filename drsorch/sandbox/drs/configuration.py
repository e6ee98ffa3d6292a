"""GetLaunchConfiguration (the launch settings of one source server) and ListLaunchActions
(its post-launch actions)."""

import re

from ..protocol import SandboxError, paged, validation_error, with_token
from ..simulation import derived_hex
from .common import _one_server

LAUNCH_ACTION_RESOURCE_RE = re.compile(r"^(s-[0-9a-zA-Z]{17}|lct-[0-9a-zA-Z]{17})$")


def get_launch_configuration(scope, body):
    """GetLaunchConfiguration of one source server."""
    server = _one_server(scope, body)
    return 200, {
        "sourceServerID": server.source_server_id,
        "name": server.hostname[:128],
        "ec2LaunchTemplateID": "lt-" + derived_hex(17, server.source_server_id, "template"),
        "launchDisposition": "STARTED",
        "targetInstanceTypeRightSizingMethod": "BASIC",
        "copyPrivateIp": False,
        "copyTags": True,
        "licensing": {"osByol": False},
        "postLaunchEnabled": bool(server.post_launch_actions),
    }


def _launch_action_item(action):
    item = {key: action[key] for key in ("actionId", "actionCode", "type", "name", "active", "order",
                                         "actionVersion", "optional", "category", "description") if key in action}
    item["parameters"] = dict(action.get("parameters") or {})
    return item


def list_launch_actions(scope, body):
    """ListLaunchActions of a source server: its post-launch actions, the records whose runs
    DescribeJobs shows in launchActionsStatus (same actionId, name and actionCode), by order."""
    resource_id = body.get("resourceId")
    if not isinstance(resource_id, str) or not LAUNCH_ACTION_RESOURCE_RE.match(resource_id):
        raise validation_error("resourceId must be a source server ID (s-...) or a launch configuration template "
                               "ID (lct-...).", field="resourceId")
    if resource_id.startswith("lct-"):  # the sandbox has no launch configuration templates
        raise SandboxError("ResourceNotFoundException", f"Launch configuration template {resource_id} not found.",
                           resourceId=resource_id, resourceType="LAUNCH_CONFIGURATION_TEMPLATE")
    server = _one_server(scope, {"sourceServerID": resource_id})
    filters = body.get("filters") or {}
    if not isinstance(filters, dict):
        raise validation_error("filters must be an object.", field="filters")
    action_ids = filters.get("actionIds")
    if action_ids is not None and (not isinstance(action_ids, list) or len(action_ids) > 100):
        raise validation_error("filters.actionIds must be a list of at most 100 action IDs.", field="actionIds")
    size = body.get("maxResults")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 1000):
        raise validation_error("maxResults must be between 1 and 1000.", field="maxResults")
    actions = sorted(server.post_launch_actions, key=lambda a: (a.get("order", 0), a.get("actionId", "")))
    if action_ids:
        actions = [a for a in actions if a.get("actionId") in action_ids]
    page, token = paged([_launch_action_item(a) for a in actions], body, default_size=1000)
    return 200, with_token({"items": page}, token)
