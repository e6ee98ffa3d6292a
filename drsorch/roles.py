"""The roles of the contract, declared once: group name to the permissions it grants, and
the permission each action on an execution needs.

Used by the pages, the API, the admin, the services and the CLI (ACTION_PERMISSIONS), by
the profile page and by tests that check the groups (ROLES, roles_sync). The migration that
first created the groups keeps its own frozen copy of ROLES.
"""

from django.contrib.auth.models import Group, Permission

# Action name -> the permission ("app_label.codename") a user needs for it.
ACTION_PERMISSIONS = {
    "start_drill": "executions.start_drill",
    "start_recovery": "executions.start_recovery",
    "approve": "executions.approve_execution",
    "cancel": "executions.cancel_execution",
    "retry": "executions.retry_execution",
    "cleanup": "executions.cleanup_execution",
}


def _grant(action: str) -> tuple[str, str]:
    app_label, codename = ACTION_PERMISSIONS[action].split(".")
    return app_label, codename


VIEW_MODELS = {
    "plans": ["target", "sourceserver", "protectiongroup", "protectiongroupmembership", "recoveryplan", "wave",
              "planreadinessevaluation", "planoverduenotice"],
    "executions": ["execution", "waverun", "serverlaunch", "drsjob", "executionevent", "scheduleddrillrun"],
    "notifications": ["notificationchannel", "notification", "deliveryattempt"],
}
PLANNER_EDIT_MODELS = ["target", "sourceserver", "protectiongroup", "protectiongroupmembership",
                       "recoveryplan", "wave"]
OPERATOR_ACTIONS = ["start_drill", "approve", "cancel", "retry", "cleanup"]

VIEWER = [(app, f"view_{model}") for app, models in VIEW_MODELS.items() for model in models]
OPERATOR = VIEWER + [_grant(action) for action in OPERATOR_ACTIONS]
COMMANDER = OPERATOR + [_grant("start_recovery")]
PLANNER = VIEWER + [
    ("plans", f"{action}_{model}") for model in PLANNER_EDIT_MODELS for action in ("add", "change", "delete")
] + [("notifications", f"{action}_notificationchannel") for action in ("add", "change", "delete")]

ROLES = {"Viewer": VIEWER, "Operator": OPERATOR, "Commander": COMMANDER, "Planner": PLANNER}


def roles_sync() -> None:
    """Create or update the role groups with their permissions (the migration's work, for
    databases that were flushed, e.g. by transactional tests)."""
    for role, grants in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set([
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
            for app_label, codename in grants
        ])
