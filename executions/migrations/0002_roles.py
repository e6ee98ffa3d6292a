"""Create the groups Viewer, Operator, Commander and Planner with the contract's permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# The roles as this migration created them, frozen here: a migration must not follow app code
# that changes later (drsorch.roles holds the current roles, and roles_sync applies them).
_VIEW_MODELS = {
    "plans": ["target", "sourceserver", "protectiongroup", "protectiongroupmembership", "recoveryplan", "wave"],
    "executions": ["execution", "waverun", "serverlaunch", "drsjob", "executionevent"],
}
_PLANNER_EDIT_MODELS = [
    "target",
    "sourceserver",
    "protectiongroup",
    "protectiongroupmembership",
    "recoveryplan",
    "wave",
]
_OPERATOR_ACTIONS = ["start_drill", "approve_execution", "cancel_execution", "retry_execution", "cleanup_execution"]
_VIEWER = [(app, f"view_{model}") for app, models in _VIEW_MODELS.items() for model in models]
_OPERATOR = _VIEWER + [("executions", codename) for codename in _OPERATOR_ACTIONS]
_COMMANDER = _OPERATOR + [("executions", "start_recovery")]
_PLANNER = _VIEWER + [
    ("plans", f"{action}_{model}") for model in _PLANNER_EDIT_MODELS for action in ("add", "change", "delete")
]
ROLES = {"Viewer": _VIEWER, "Operator": _OPERATOR, "Commander": _COMMANDER, "Planner": _PLANNER}


def create_roles(apps, schema_editor):
    # Permissions are normally created after the whole migrate run; make sure ours exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, grants in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        permissions = []
        for app_label, codename in grants:
            permissions.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(permissions)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("executions", "0001_initial"),
        ("plans", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
