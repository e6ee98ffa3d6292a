"""`manage.py sync_servers [--target NAME]`: refresh the source-server inventory from DRS."""

from django.core.management.base import BaseCommand, CommandError

from plans.models import Target
from plans.services import source_servers_sync


class Command(BaseCommand):
    help = "Refresh the source-server inventory from DRS, for one target or every target."

    def add_arguments(self, parser):
        parser.add_argument("--target", metavar="NAME", help="Only this target (by name).")

    def handle(self, *args, **options):
        targets = Target.objects.order_by("name")
        if options["target"]:
            targets = targets.filter(name=options["target"])
            if not targets:
                known = ", ".join(Target.objects.order_by("name").values_list("name", flat=True)) or "none"
                raise CommandError(f"Unknown target '{options['target']}'. Known targets: {known}.")
        for target in targets:
            result = source_servers_sync(target=target)
            note = " (DRS not initialized in this region)" if result.uninitialized else ""
            self.stdout.write(
                f"{target.name}: {result.created} new, {result.updated} updated, "
                f"{result.missing} no longer in DRS{note}"
            )
