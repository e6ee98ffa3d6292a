"""`manage.py sync_servers [--target NAME]`: refresh the source-server inventory from DRS.

Exit codes: 0 every target synced, 1 DRS could not be read for some target (one line each,
after the gateway's own retries of throttled pages), 2 an unknown target."""

import sys

from botocore.exceptions import BotoCoreError, ClientError
from django.core.management.base import BaseCommand, CommandError

from drsorch.drs.errors import describe
from plans.models import Target
from plans.services import source_servers_sync

EXIT_SYNC_FAILED = 1
EXIT_BAD_INPUT = 2


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
                raise CommandError(f"Unknown target '{options['target']}'. Known targets: {known}.",
                                   returncode=EXIT_BAD_INPUT)
        failed = False
        for target in targets:
            try:
                result = source_servers_sync(target=target)
            except (BotoCoreError, ClientError) as exc:
                # The other targets are still synced; the exit code tells a script one failed.
                failed = True
                self.stderr.write(f"{target.name}: sync failed, DRS could not be read: {describe(exc)}")
                continue
            note = " (DRS not initialized in this region)" if result.uninitialized else ""
            self.stdout.write(
                f"{target.name}: {result.created} new, {result.updated} updated, "
                f"{result.missing} no longer in DRS{note}"
            )
        if failed:
            sys.exit(EXIT_SYNC_FAILED)
