"""`manage.py execution list|show|watch|approve|complete|cancel|retry|cleanup`: executions from the shell."""

import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from executions import cli
from executions.api.serializers import ExecutionSerializer
from executions.exceptions import ExecutionError
from executions.models import ActionRun
from executions.selectors import executions_for_json
from executions.services import (
    execution_action_complete,
    execution_approve,
    execution_cancel,
    execution_cleanup,
    execution_retry,
)

ACTIONS = {
    "approve": (execution_approve, "Approved the waiting wave"),
    "cancel": (execution_cancel, "Cancelling: nothing new is launched; jobs already in DRS run to their end"),
    "retry": (execution_retry, "Retrying the failed servers"),
    "cleanup": (execution_cleanup, "Cleaning up the drill's recovery instances"),
}

# A listing longer than this is a report, not a terminal's page (and an integer past 64 bits
# would reach the database as a LIMIT it cannot hold).
MAX_LIST_LIMIT = 1000


class Command(BaseCommand):
    help = (
        "List, show, follow and act on executions (the operations of the web UI and the API). IDs "
        "are full UUIDs or a unique prefix of at least 8 characters. Exit codes: 0 done (watch: "
        "SUCCEEDED), 1 watch: ended otherwise, 2 unknown id or refused action, 130 interrupted."
    )

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="subcommand", required=True, parser_class=CommandParser)

        listing = commands.add_parser("list", help="Recent executions, newest first.")
        listing.add_argument("--json", action="store_true", help="Print a JSON array of execution objects.")
        listing.add_argument("--limit", type=int, default=20, help=f"How many, 1 to {MAX_LIST_LIMIT} (default 20).")

        show = commands.add_parser("show", help="One execution with its waves and servers.")
        show.add_argument("id", help="Execution id or a unique prefix (8+ characters).")
        show.add_argument("--json", action="store_true", help="Print the execution JSON.")

        watch = commands.add_parser("watch", help="Follow (and drive) an execution to its end, like drill --wait.")
        watch.add_argument("id", help="Execution id or a unique prefix (8+ characters).")
        watch.add_argument("--json", action="store_true", help="Print the execution JSON at the end.")

        approve = commands.add_parser("approve", help="Open the approval gate of the waiting wave.")
        approve.add_argument("id", help="Execution id or a unique prefix (8+ characters).")
        approve.add_argument(
            "--wave",
            type=int,
            default=None,
            metavar="INDEX",
            help="Approve only this wave (by index) when several wait.",
        )
        cli.add_comment_argument(
            approve, help_text="Why the gate is approved, for the audit log; required for a RECOVERY."
        )
        complete = commands.add_parser(
            "complete", help="Complete a manual wave action that waits for an Operator; the wave moves on."
        )
        complete.add_argument("id", help="Execution id or a unique prefix (8+ characters).")
        complete.add_argument("action", metavar="ACTION_NAME", help="The manual action's name (quote it).")
        cli.add_comment_argument(complete, help_text="What was done and checked, for the audit log (required).")
        cancel = commands.add_parser("cancel", help="Stop launching anything new; the execution ends CANCELLED.")
        cancel.add_argument("id", help="Execution id or a unique prefix (8+ characters).")
        cli.add_comment_argument(cancel, help_text="Why it is cancelled, for the audit log; required for a RECOVERY.")
        for name, text in [
            ("retry", "Relaunch the failed servers of a FAILED, PARTIAL or TIMED_OUT execution."),
            ("cleanup", "Terminate the recovery instances a drill launched."),
        ]:
            commands.add_parser(name, help=text).add_argument(
                "id", help="Execution id or a unique prefix (8+ characters)."
            )

    def handle(self, *args, **options):
        with cli.logging_for_verbosity(options["verbosity"]):
            self._handle(options)

    def _handle(self, options):
        subcommand = options["subcommand"]
        if subcommand in ACTIONS:
            code = self._act(subcommand, options)
        else:
            code = getattr(self, f"_{subcommand}")(options)
        if code:
            sys.exit(code)

    # --- reading ---------------------------------------------------------------------------

    def _list(self, options):
        if not 1 <= options["limit"] <= MAX_LIST_LIMIT:
            raise cli.bad_input(f"--limit must be from 1 to {MAX_LIST_LIMIT}, not {options['limit']}.")
        executions = list(executions_for_json().order_by("-created_at")[: options["limit"]])
        if options["json"]:
            cli.print_json(self.stdout, ExecutionSerializer(executions, many=True).data)
            return 0
        if not executions:
            self.stdout.write("No executions yet. Start one with: manage.py drill PLAN --wait")
            return 0
        rows = [("ID", "PLAN", "MODE", "STATUS", "STARTED", "ELAPSED / RTO")]
        for e in executions:
            started = timezone.localtime(e.started_at).strftime("%Y-%m-%d %H:%M") if e.started_at else "-"
            rows.append((str(e.pk)[:8], e.plan_name, e.mode, e.status, started, cli.elapsed_vs_rto(e)))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
            self.stdout.write("  ".join([*cells, row[-1]]))
        return 0

    def _show(self, options):
        execution = cli.load_for_display(cli.resolve_execution(options["id"]).pk)
        if options["json"]:
            cli.print_json(self.stdout, ExecutionSerializer(execution).data)
            return 0
        lines = [cli.execution_header(execution)]
        started = timezone.localtime(execution.started_at).isoformat(" ", "seconds") if execution.started_at else "-"
        lines.append(
            f"  requested by {execution.requested_by_username or '-'}, started {started}"
            + (", cleaned up" if execution.cleaned_up_at else "")
        )
        launches = {}
        for launch in execution.server_launches.all():
            launches.setdefault(launch.wave_run_id, []).append(launch)
        waves = list(execution.wave_runs.all())
        actions = {}
        for run in ActionRun.objects.filter(execution=execution):
            actions.setdefault(run.wave_run_id, []).append(run)
        for wave, line in zip(waves, cli.wave_lines(execution), strict=True):
            lines.append(line)
            for launch in launches.get(wave.pk, []):
                detail = " ".join(
                    filter(
                        None,
                        [
                            launch.get_phase_display() if launch.phase else "",
                            launch.recovery_instance_id,
                            "" if launch.critical else "(optional)",
                        ],
                    )
                )
                lines.append(f"       {launch.hostname or launch.source_server_id:<20} {launch.status:<12} {detail}")
                if launch.error:
                    lines.append(f"         error: {launch.error}")
            for run in actions.get(wave.pk, []):
                done_by = f" by {run.completed_by_username}: {run.comment}" if run.completed_by_username else ""
                lines.append(f"       {run.when} action {run.name!r:<20} {run.status:<12} {run.kind}{done_by}")
                if run.error:
                    lines.append(f"         error: {run.error}")
        self.stdout.write("\n".join(lines))
        return 0

    def _watch(self, options):
        execution = cli.resolve_execution(options["id"])
        return cli.follow_from_command(
            self, execution, as_json=options["json"], until_cleaned=cli.cleanup_open(execution.pk)
        )

    # --- acting ----------------------------------------------------------------------------

    def _complete(self, options):
        execution = cli.resolve_execution(options["id"])
        try:
            action = execution_action_complete(
                execution=execution, name=options["action"], user=None, comment=options["comment"] or ""
            )
        except ActionRun.DoesNotExist:
            names = ", ".join(execution.action_runs.values_list("name", flat=True)) or "none"
            raise cli.bad_input(
                f"Execution {execution.pk} has no action named {options['action']!r} (actions: {names})."
            )
        except ExecutionError as exc:
            raise cli.bad_input(exc.message)
        except ValidationError as exc:
            raise cli.bad_input(
                f"--comment: {' '.join(exc.messages)}"
                if "comment" in getattr(exc, "error_dict", {})
                else " ".join(exc.messages)
            )
        self.stdout.write(
            f"Completed manual action '{action.name}' of execution {execution.pk}; the wave moves on.\n"
            f"Follow it (and drive it without a worker) with:\n  manage.py execution watch {execution.pk}"
        )
        return 0

    def _act(self, subcommand, options):
        execution = cli.resolve_execution(options["id"])
        service, done = ACTIONS[subcommand]
        kwargs = {"wave_index": options["wave"]} if subcommand == "approve" and options["wave"] is not None else {}
        if subcommand in ("approve", "cancel"):
            kwargs["comment"] = options["comment"]
        try:
            execution = service(execution=execution, user=None, **kwargs)
        except ExecutionError as exc:
            raise cli.bad_input(exc.message)
        except ValidationError as exc:
            raise cli.bad_input(
                f"--comment: {' '.join(exc.messages)}"
                if "comment" in getattr(exc, "error_dict", {})
                else " ".join(exc.messages)
            )
        execution.refresh_from_db()
        self.stdout.write(
            f"{done}: execution {execution.pk} is {execution.status}.\n"
            f"A worker advances it; follow it (and drive it without a worker) with:\n"
            f"  manage.py execution watch {execution.pk}"
        )
        return 0
