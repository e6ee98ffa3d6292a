"""`manage.py drill PLAN [--accept-risks] [--point-in-time ISO-8601] [--comment TEXT] [--wait] [--json] [--auto-approve]
[--cleanup]`: start a DRILL."""

import sys

from django.core.management.base import BaseCommand

from executions import cli
from executions.choices import ExecutionMode


class Command(BaseCommand):
    help = (
        "Start a DRILL of a recovery plan (by name or id). With --wait, follow it to its end, "
        "advancing it itself whether or not a worker runs, and show progress. Exit codes: 0 "
        "SUCCEEDED (or started, without --wait), 1 ended otherwise, 2 bad input (unknown plan, "
        "plan not ready or risks not accepted, plan or server already running), 130 interrupted."
    )

    def add_arguments(self, parser):
        parser.add_argument("plan", help="The plan's name (quote it) or numeric id.")
        parser.add_argument("--wait", action="store_true", help="Follow (and drive) the drill to its end.")
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the execution JSON: at the end with --wait, else at once. Progress goes to stderr.",
        )
        cli.add_point_in_time_argument(parser)
        cli.add_comment_argument(
            parser,
            help_text="Why it is started (at most 1000 characters): kept on the execution, its page, report and "
            "audit log.",
        )
        parser.add_argument(
            "--accept-risks",
            action="store_true",
            help="Start despite readiness warnings (replication not CONTINUOUS, lag over the RPO, "
            "DRS unreachable for a check, a server held by a DRS job drsorch did not start); "
            "they are recorded on the execution. Errors are never accepted.",
        )
        parser.add_argument("--auto-approve", action="store_true", help="Open approval gates automatically.")
        parser.add_argument(
            "--cleanup",
            action="store_true",
            help="With --wait: terminate the drill's recovery instances once it has ended.",
        )

    def handle(self, *args, **options):
        with cli.logging_for_verbosity(options["verbosity"]):
            self._handle(options)

    def _handle(self, options):
        plan = cli.resolve_plan(options["plan"])
        code = cli.start_from_command(self, options, plan=plan, mode=ExecutionMode.DRILL)
        if code:
            sys.exit(code)
