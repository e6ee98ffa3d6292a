"""health_check: EC2 status checks and, when asked, SSM's ping, until every launched instance passes."""

from __future__ import annotations

import logging
from typing import Any

from executions.models import ActionRun, Execution, WaveRun

from ..rows import TickRows
from .records import (
    _by_target,
    _client,
    _describe,
    _finish,
    _set_output,
)

logger = logging.getLogger(__name__)

STATUS_MAX_INSTANCES = 100


def _instance_information(client, ids: list[str]) -> list[dict]:
    kwargs: dict[str, Any] = {"Filters": [{"Key": "InstanceIds", "Values": ids}], "MaxResults": 50}
    found = []
    while True:
        answer = client.describe_instance_information(**kwargs)
        found.extend(answer.get("InstanceInformationList", []))
        if not answer.get("NextToken"):
            return found
        kwargs["NextToken"] = answer["NextToken"]


def _follow_health(rows: TickRows, execution: Execution, wave: WaveRun, action: ActionRun, *, fresh: bool) -> bool:
    instances = action.external.get("instances", {})
    waiting: dict[str, str] = {}
    errors = []
    groups = [
        (target_id, ids[first : first + STATUS_MAX_INSTANCES])
        for target_id, ids in _by_target(instances).items()
        for first in range(0, len(ids), STATUS_MAX_INSTANCES)
    ]
    for target_id, ids in groups:
        if action.config.get("ec2_status_checks", True):
            try:
                answer = _client(rows, target_id, "ec2").describe_instance_status(
                    InstanceIds=ids, IncludeAllInstances=True
                )
            except Exception as exc:
                errors.append(f"DescribeInstanceStatus: {_describe(exc)}")
                waiting.update(dict.fromkeys(ids, "not read"))
            else:
                seen = {item["InstanceId"]: item for item in answer.get("InstanceStatuses", [])}
                for instance_id in ids:
                    item = seen.get(instance_id)
                    if item is None:
                        waiting[instance_id] = "not found by EC2"
                        continue
                    state = item.get("InstanceState", {}).get("Name")
                    system = item.get("SystemStatus", {}).get("Status")
                    own = item.get("InstanceStatus", {}).get("Status")
                    if state != "running" or system != "ok" or own != "ok":
                        waiting[instance_id] = f"{state}, system {system}, instance {own}"
        if action.config.get("ssm_ping"):
            try:
                listed = _instance_information(_client(rows, target_id, "ssm"), ids)
            except Exception as exc:
                errors.append(f"DescribeInstanceInformation: {_describe(exc)}")
                waiting.update({i: waiting.get(i, "not read") for i in ids})
            else:
                pings = {item["InstanceId"]: item.get("PingStatus") for item in listed}
                for instance_id in ids:
                    if pings.get(instance_id) != "Online":
                        note = f"SSM {pings.get(instance_id) or 'not registered'}"
                        waiting[instance_id] = f"{waiting[instance_id]}; {note}" if instance_id in waiting else note
    if not waiting:
        _set_output(rows, action, f"All {len(instances)} instance(s) passed.", error="")
        return _finish(rows, action, True, f"{len(instances)} instance(s) passed.")
    _set_output(
        rows,
        action,
        "Waiting for: " + "; ".join(f"{i} ({why})" for i, why in sorted(waiting.items())),
        error="; ".join(errors),
    )
    return fresh


# --- SSM automation ----------------------------------------------------------------------
