"""`manage.py recover PLAN --confirm PLAN_NAME [--accept-risks] [--point-in-time ISO-8601] [--comment TEXT] [--wait]
[--json]`: start a RECOVERY."""

import sys

from django.core.management.base import BaseCommand

from executions import cli
from executions.choices import ExecutionMode


class Command(BaseCommand):
    help = (
        "Start a RECOVERY of a recovery plan (by name or id): launches production instances in "
        "the recovery account. Refuses unless --confirm repeats the plan's name exactly. Exit "
        "codes: 0 SUCCEEDED (or started, without --wait), 1 ended otherwise, 2 bad input, no "
        "confirmation, plan not ready or risks not accepted, 130 interrupted."
    )

    def add_arguments(self, parser):
        parser.add_argument("plan", help="The plan's name (quote it) or numeric id.")
        parser.add_argument(
            "--confirm",
            metavar="PLAN_NAME",
            default=None,
            help="The plan's exact name, to confirm that a real recovery is meant.",
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
        parser.add_argument("--wait", action="store_true", help="Follow (and drive) the recovery to its end.")
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the execution JSON: at the end with --wait, else at once. Progress goes to stderr.",
        )

    def handle(self, *args, **options):
        with cli.logging_for_verbosity(options["verbosity"]):
            self._handle(options)

    def _handle(self, options):
        plan = cli.resolve_plan(options["plan"])
        confirm = options["confirm"]
        if confirm != plan.name:
            given = "without --confirm" if confirm is None else f"with --confirm {confirm!r}"
            raise cli.bad_input(
                f"Refusing to start a RECOVERY of '{plan.name}' {given}. A recovery launches production "
                f"instances; to go ahead, repeat the plan's exact name: --confirm '{plan.name}'"
            )
        code = cli.start_from_command(self, options, plan=plan, mode=ExecutionMode.RECOVERY)
        if code:
            sys.exit(code)
