"""Grant the notification permissions: Planner edits channels; every role reads channels and
deliveries (Viewer, Operator, Commander, Planner)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# Frozen here, like executions/migrations/0002_roles.py: drsorch.roles holds the current roles.
_VIEW = [("notifications", f"view_{model}") for model in ("notificationchannel", "notification", "deliveryattempt")]
_PLANNER_EDIT = [("notifications", f"{action}_notificationchannel") for action in ("add", "change", "delete")]
GRANTS = {"Viewer": _VIEW, "Operator": _VIEW, "Commander": _VIEW, "Planner": _VIEW + _PLANNER_EDIT}


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, grants in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*[
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
            for app_label, codename in grants
        ])


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(content_type__app_label="notifications")
    for group in Group.objects.filter(name__in=list(GRANTS)):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
        ("executions", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
