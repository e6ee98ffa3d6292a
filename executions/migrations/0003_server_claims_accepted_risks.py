"""Accepted risks on executions, and server claims: one active execution per server."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


# A frozen copy of executions.choices.EXECUTION_ACTIVE: migrations import no app code.
ACTIVE_STATUSES = ["PENDING", "RUNNING", "WAITING_APPROVAL", "CANCELLING"]


def claim_servers_of_active_executions(apps, schema_editor):
    """Executions running during the upgrade hold their servers like those started after it.
    Should two of them share a server (possible before claims existed), the older keeps it."""
    ServerLaunch = apps.get_model("executions", "ServerLaunch")
    ServerClaim = apps.get_model("executions", "ServerClaim")
    launches = (
        ServerLaunch.objects.filter(execution__status__in=ACTIVE_STATUSES)
        .order_by("execution__created_at")
        .values_list("target_id", "source_server_id", "execution_id")
    )
    ServerClaim.objects.bulk_create(
        [
            ServerClaim(target_id=target, source_server_id=server, execution_id=execution)
            for target, server, execution in launches
        ],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("executions", "0002_roles"),
        ("plans", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="execution",
            name="accepted_risks",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="The readiness warnings the person who started it accepted (their messages).",
            ),
        ),
        migrations.CreateModel(
            name="ServerClaim",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("source_server_id", models.CharField(max_length=19)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "execution",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="server_claims",
                        to="executions.execution",
                    ),
                ),
                (
                    "target",
                    models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to="plans.target"),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("target", "source_server_id"), name="server_claim_one_execution")
                ],
            },
        ),
        migrations.RunPython(claim_servers_of_active_executions, migrations.RunPython.noop),
    ]
