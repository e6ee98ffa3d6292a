"""GetLaunchConfiguration: the launch settings of one source server."""

from ..simulation import derived_hex
from .common import _one_server


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
