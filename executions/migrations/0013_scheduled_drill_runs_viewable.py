"""Every role may view the slots the schedule took (ScheduledDrillRun: the read-only admin), as
it views executions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

_ROLES = ["Viewer", "Operator", "Commander", "Planner"]
_CODENAMES = ["view_scheduleddrillrun"]


def grant(apps, schema_editor):
    # Permissions are normally created after the whole migrate run; make sure ours exist now.
    app_config = apps.get_app_config("executions")
    app_config.models_module = True
    create_permissions(app_config, verbosity=0, apps=apps)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = list(Permission.objects.filter(content_type__app_label="executions", codename__in=_CODENAMES))
    for group in Group.objects.filter(name__in=_ROLES):
        group.permissions.add(*permissions)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = list(Permission.objects.filter(content_type__app_label="executions", codename__in=_CODENAMES))
    for group in Group.objects.filter(name__in=_ROLES):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("executions", "0012_scheduled_drill_run_claim"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
