"""Every role may view what the readiness watch and the drill-age SLA recorded
(PlanReadinessEvaluation, PlanOverdueNotice), as it views plans."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

_ROLES = ["Viewer", "Operator", "Commander", "Planner"]
_CODENAMES = ["view_planreadinessevaluation", "view_planoverduenotice"]


def grant(apps, schema_editor):
    # Permissions are normally created after the whole migrate run; make sure ours exist now.
    app_config = apps.get_app_config("plans")
    app_config.models_module = True
    create_permissions(app_config, verbosity=0, apps=apps)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = list(Permission.objects.filter(content_type__app_label="plans", codename__in=_CODENAMES))
    for group in Group.objects.filter(name__in=_ROLES):
        group.permissions.add(*permissions)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = list(Permission.objects.filter(content_type__app_label="plans", codename__in=_CODENAMES))
    for group in Group.objects.filter(name__in=_ROLES):
        group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("plans", "0005_readiness_watch"),
        ("executions", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
