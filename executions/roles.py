"""The roles of the contract, declared once: group name to the permissions it grants.

Used by the migration that creates the groups and by tests that check them.
"""

VIEW_MODELS = {
    "plans": ["target", "sourceserver", "protectiongroup", "protectiongroupmembership", "recoveryplan", "wave"],
    "executions": ["execution", "waverun", "serverlaunch", "drsjob", "executionevent"],
}
PLANNER_EDIT_MODELS = ["target", "sourceserver", "protectiongroup", "protectiongroupmembership",
                       "recoveryplan", "wave"]
OPERATOR_ACTIONS = ["start_drill", "approve_execution", "cancel_execution", "retry_execution",
                    "cleanup_execution"]

VIEWER = [(app, f"view_{model}") for app, models in VIEW_MODELS.items() for model in models]
OPERATOR = VIEWER + [("executions", codename) for codename in OPERATOR_ACTIONS]
COMMANDER = OPERATOR + [("executions", "start_recovery")]
PLANNER = VIEWER + [
    ("plans", f"{action}_{model}") for model in PLANNER_EDIT_MODELS for action in ("add", "change", "delete")
]

ROLES = {"Viewer": VIEWER, "Operator": OPERATOR, "Commander": COMMANDER, "Planner": PLANNER}


def roles_sync():
    """Create or update the role groups with their permissions (the migration's work, for
    databases that were flushed, e.g. by transactional tests)."""
    from django.contrib.auth.models import Group, Permission

    for role, grants in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set([
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
            for app_label, codename in grants
        ])
