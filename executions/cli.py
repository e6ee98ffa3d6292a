"""Shared pieces of the `drill`, `recover` and `execution` management commands.

- resolving a plan (name or numeric id) and an execution (UUID or a unique prefix);
- starting a plan from a command (`start_from_command`), with the command's exit codes;
- the follow loop (`follow`), which *drives* the execution itself with `engine.tick()`
  while it watches it: the engine's lease makes that safe beside a django-q2 worker (at
  most one of them advances the execution in any tick; the other just reads);
- the progress renderer: a redrawn block on a terminal, plain "something changed" lines
  otherwise; log records below WARNING stay out of it unless `-v 2` (`logging_for_verbosity`).

Exit codes of every command: 0 the execution ended SUCCEEDED (or the action was done),
1 it ended otherwise, 2 bad input or a refused action, 130 interrupted (Ctrl-C) while
following.

Tests replace `sleep` (and may use it as a hook to act between two ticks): nothing here
sleeps through anything else.
"""

import contextlib
import json
import logging
import re
import shutil
import sys
import time
import uuid
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, OutputWrapper

from drsorch.web import whole_number
from plans.models import RecoveryPlan

from . import engine
from .api.serializers import ExecutionSerializer
from .choices import (
    JOB_OPEN,
    WAVE_ACTION_PHASES,
    ActionStatus,
    ExecutionStatus,
    JobType,
    LaunchPhase,
    LaunchStatus,
    WaveStatus,
)
from .exceptions import ExecutionError, PlanNotReady
from .models import DrsJob, Execution
from .selectors import executions_for_json
from .services import POINT_IN_TIME_EXAMPLE, execution_cleanup, execution_start, point_in_time_check
from .tasks import launch_budget_seconds

EXIT_SUCCEEDED = 0
EXIT_ENDED_OTHERWISE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

# A django-q2 worker ticks every DRSORCH_POLL_SECONDS (15 s by default: polite to the DRS
# API for many executions). A person watching one execution wants it livelier, so the
# follow loop ticks at most every FOLLOW_MAX_SECONDS. The extra ticks are cheap (one
# DescribeJobs per target; job logs are re-read at most every engine.job_log.LOG_REFRESH_SECONDS)
# and safe (the lease): at worst a tick finds the execution claimed and only reads it.
FOLLOW_MAX_SECONDS = 2.0
# A tick that keeps failing (database gone, a bug) ends the follow loop instead of spinning.
MAX_CONSECUTIVE_TICK_ERRORS = 5
MIN_ID_PREFIX = 8

sleep = time.sleep  # replaced by tests (and usable as a hook between two ticks)

_ID_PREFIX_RE = re.compile(r"^[0-9a-f-]+$")


@contextlib.contextmanager
def logging_for_verbosity(verbosity: int):
    """Within the block, log only warnings and errors unless `-v 2` (INFO) or `-v 3` (DEBUG):
    a person following a drill reads its progress, not the engine's INFO lines."""
    root = logging.getLogger()
    before = root.level
    if verbosity >= 3:
        root.setLevel(logging.DEBUG)
    elif verbosity < 2:
        root.setLevel(max(before, logging.WARNING))
    try:
        yield
    finally:
        root.setLevel(before)


def bad_input(message):
    return CommandError(message, returncode=EXIT_BAD_INPUT)


def follow_interval():
    return max(0.0, min(float(settings.DRSORCH_POLL_SECONDS), FOLLOW_MAX_SECONDS))


def exit_code_of(execution):
    return EXIT_SUCCEEDED if execution.status == ExecutionStatus.SUCCEEDED else EXIT_ENDED_OTHERWISE


def write(stream, text):
    """Write `text` as is: no added newline, no colouring of the command's stderr style."""
    if isinstance(stream, OutputWrapper):
        stream.write(text, style_func=lambda s: s, ending="")
    else:
        stream.write(text)
    stream.flush()


def print_json(stream, data):
    write(stream, json.dumps(data, indent=2) + "\n")


# --- resolving names ---------------------------------------------------------------------------


def resolve_plan(value):
    """The plan named `value` (exactly, else case-insensitively when that is unique), or with
    the numeric id `value`. Raises a CommandError with exit code 2 when there is none."""
    value = (value or "").strip()
    plan = RecoveryPlan.objects.filter(name=value).first()
    if plan is None and (pk := whole_number(value)) is not None:
        plan = RecoveryPlan.objects.filter(pk=pk).first()
    if plan is None:
        matches = list(RecoveryPlan.objects.filter(name__iexact=value)[:2])
        plan = matches[0] if len(matches) == 1 else None
    if plan is None:
        names = list(RecoveryPlan.objects.order_by("name").values_list("pk", "name")[:20])
        known = ", ".join(f"{name!r} (id {pk})" for pk, name in names) or "none yet (try: manage.py sandbox seed)"
        raise bad_input(f"No recovery plan is named or numbered {value!r}. Plans: {known}.")
    return plan


def resolve_execution(value):
    """The execution whose UUID is `value`, or starts with it (at least 8 characters)."""
    text = (value or "").strip().lower()
    try:
        return Execution.objects.get(pk=uuid.UUID(text))
    except (ValueError, Execution.DoesNotExist):
        pass
    if len(text.replace("-", "")) < MIN_ID_PREFIX or not _ID_PREFIX_RE.match(text):
        raise bad_input(
            f"No execution has the id {value!r}. Give the full id or its first {MIN_ID_PREFIX} "
            "characters or more (see: manage.py execution list)."
        )
    matches = list(Execution.objects.filter(pk__istartswith=text).order_by("-created_at")[:5])
    if not matches:
        raise bad_input(f"No execution has an id starting with {value!r} (see: manage.py execution list).")
    if len(matches) > 1:
        listed = ", ".join(str(e.pk) for e in matches)
        raise bad_input(f"The id prefix {value!r} matches several executions ({listed}); give more characters.")
    return matches[0]


def load_for_display(execution_id):
    return executions_for_json().get(pk=execution_id)


# --- starting ----------------------------------------------------------------------------------


def start_execution(
    *,
    plan: RecoveryPlan,
    mode: str,
    auto_approve: bool = False,
    accept_risks: bool = False,
    point_in_time: datetime | None = None,
    comment: str = "",
) -> Execution:
    """execution_start as the CLI (no user, no permission check); refusals exit with 2."""
    try:
        return execution_start(
            plan=plan,
            mode=mode,
            requested_by=None,
            auto_approve=auto_approve,
            accept_risks=accept_risks,
            point_in_time=point_in_time,
            comment=comment,
        )
    except PlanNotReady as exc:
        raise bad_input(not_ready_message(plan, exc.report))
    except ExecutionError as exc:
        raise bad_input(exc.message)
    except ValidationError as exc:
        raise bad_input(" ".join(exc.messages))


def parse_point_in_time(value: str | None) -> datetime | None:
    """The --point-in-time of a command (ISO-8601 with a timezone, in the past), or None when
    not given; bad input exits with 2 naming the problem."""
    if value is None:
        return None
    try:
        return point_in_time_check(value=value)
    except ValidationError as exc:
        raise bad_input(f"--point-in-time: {' '.join(exc.messages)}")


def add_point_in_time_argument(parser) -> None:
    """The --point-in-time option `drill` and `recover` share."""
    parser.add_argument(
        "--point-in-time",
        metavar="ISO-8601",
        default=None,
        help="Launch every server from its latest recovery snapshot at or before this time "
        f"(with a timezone, in the past, e.g. {POINT_IN_TIME_EXAMPLE}): a recovery from "
        "before a ransomware attack. A server without a snapshot that old fails.",
    )


def add_comment_argument(parser, *, help_text: str) -> None:
    """The --comment option of `drill`, `recover`, `execution approve` and `execution cancel`."""
    parser.add_argument("--comment", metavar="TEXT", default="", help=help_text)


def not_ready_message(plan, report):
    """Why a start was refused, on one line: the errors to fix, else the warnings
    --accept-risks accepts, each finding after a semicolon."""
    if report.errors:
        message = f"Plan '{plan.name}' is not ready; fix these first: " + "; ".join(
            check.message.rstrip(".") for check in report.errors
        )
        if report.warnings:
            message += "; and these warnings would need --accept-risks: " + "; ".join(
                check.message.rstrip(".") for check in report.warnings
            )
        return message + "."
    return (
        f"Plan '{plan.name}' has {len(report.warnings)} risk(s); nothing was started. To start anyway, "
        "accept them with --accept-risks: " + "; ".join(check.message.rstrip(".") for check in report.warnings) + "."
    )


def start_from_command(command, options, *, plan, mode):
    """What `drill` and `recover` do once the plan is known: start, then print or follow."""
    if options.get("cleanup") and not options["wait"]:
        raise bad_input("--cleanup cleans up once the drill has ended, so it needs --wait.")
    as_json = options["json"]
    point_in_time = parse_point_in_time(options.get("point_in_time"))
    execution = start_execution(
        plan=plan,
        mode=mode,
        auto_approve=options.get("auto_approve", False),
        accept_risks=options.get("accept_risks", False),
        point_in_time=point_in_time,
        comment=options.get("comment") or "",
    )
    if not options["wait"]:
        if as_json:
            print_json(command.stdout, ExecutionSerializer(load_for_display(execution.pk)).data)
        else:
            command.stdout.write(
                f"Started the {mode} of '{plan.name}' as execution {execution.pk}.\n"
                f"A worker (make run) advances it; follow it (and drive it without a worker) with:\n"
                f"  manage.py execution watch {execution.pk}"
            )
        return EXIT_SUCCEEDED
    progress = command.stderr if as_json else command.stdout
    if not as_json:
        write(progress, f"Started the {mode} of '{plan.name}' as execution {execution.pk}.\n")
    return follow_from_command(command, execution, as_json=as_json, cleanup=options.get("cleanup", False))


def follow_from_command(command, execution, *, as_json, cleanup=False, until_cleaned=False):
    """Follow `execution` to its end with progress, optionally clean it up, print the JSON
    with `as_json`; return the exit code."""
    progress = command.stderr if as_json else command.stdout
    renderer = ProgressRenderer(progress, tty=progress.isatty())
    execution = follow(execution, renderer=renderer, until_cleaned=until_cleaned)
    cleaned = True
    if cleanup:
        execution, cleaned = clean_up_and_follow(execution, renderer=renderer)
    renderer.close()
    if as_json:
        print_json(command.stdout, ExecutionSerializer(execution).data)
    code = exit_code_of(execution)
    return code if cleaned else max(code, EXIT_ENDED_OTHERWISE)


def clean_up_and_follow(execution, *, renderer):
    """Clean up the ended drill and follow the worker's termination; (execution, False) when
    instances were left running."""
    try:
        execution_cleanup(execution=execution, user=None)
    except ExecutionError as exc:
        renderer.message(f"No clean-up: {exc.message}")
        return execution, True
    renderer.message("Cleaning up the drill's recovery instances…")
    execution = follow(execution, renderer=renderer, until_cleaned=True)
    if execution.cleaned_up_at:
        renderer.message("Clean-up finished: the drill's recovery instances are terminated.")
    else:
        failed = [launch for launch in execution.server_launches.all() if launch.status == LaunchStatus.LAUNCHED]
        renderer.message(
            f"Clean-up ended with {len(failed)} recovery instance(s) not terminated: "
            + "; ".join(f"{launch.hostname or launch.source_server_id}: {launch.error}" for launch in failed[:5])
        )
    return execution, execution.cleaned_up_at is not None


# --- following ---------------------------------------------------------------------------------


def cleanup_open(execution_id):
    return DrsJob.objects.filter(execution_id=execution_id, type=JobType.TERMINATE, state__in=JOB_OPEN).exists()


def follow(execution, *, renderer, until_cleaned=False):
    """Advance and show `execution` every `follow_interval()` until it has ended (and, with
    `until_cleaned`, until its clean-up jobs have ended too). Returns it loaded for display.

    Every pass calls `engine.tick(execution_ids=[id])`: when a worker holds the lease, the
    tick claims nothing and this loop only reads, so it never competes with the worker."""
    interval = follow_interval()
    errors = 0
    try:
        while True:
            try:
                engine.tick(execution_ids=[execution.pk], launch_budget_seconds=launch_budget_seconds())
                errors = 0
            except Exception as exc:  # SimulatedCrash and KeyboardInterrupt are BaseExceptions
                errors += 1
                if errors >= MAX_CONSECUTIVE_TICK_ERRORS:
                    raise
                renderer.message(f"Advancing failed ({exc}); trying again.")
            execution = load_for_display(execution.pk)
            renderer.update(execution)
            if execution.is_terminal and not (until_cleaned and cleanup_open(execution.pk)):
                return execution
            sleep(interval)
    except KeyboardInterrupt:
        renderer.close()
        renderer.message(
            f"Stopped following. Execution {execution.pk} goes on; follow it again with: "
            f"manage.py execution watch {execution.pk}"
        )
        sys.exit(EXIT_INTERRUPTED)


# --- rendering ---------------------------------------------------------------------------------


def duration(seconds):
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def elapsed_vs_rto(execution):
    elapsed = execution.elapsed_seconds()
    target = execution.rto_target_minutes * 60
    text = f"{duration(elapsed)} / RTO {duration(target)}"
    if execution.rto_met is not None:
        text += " met" if execution.rto_met else " missed"
    elif elapsed > target:
        text += " exceeded"
    return text


def wave_counts(execution):
    """{wave pk: (launched, failed, total)} from the prefetched launches."""
    counts = {}
    for launch in execution.server_launches.all():
        launched, failed, total = counts.get(launch.wave_run_id, (0, 0, 0))
        counts[launch.wave_run_id] = (
            launched + (launch.status in (LaunchStatus.LAUNCHED, LaunchStatus.TERMINATED)),
            failed + (launch.status == LaunchStatus.FAILED),
            total + 1,
        )
    return counts


def cleanup_progress(execution):
    """ "clean-up 3/12 terminated" once a clean-up started, else ""."""
    launches = list(execution.server_launches.all())
    terminated = sum(launch.status == LaunchStatus.TERMINATED for launch in launches)
    cleaning = terminated + sum(launch.phase == LaunchPhase.TERMINATING for launch in launches)
    return f"clean-up {terminated}/{cleaning} terminated" if cleaning else ""


def execution_header(execution):
    parts = [
        f"{execution.mode} of '{execution.plan_name}' ({execution.pk})",
        execution.status,
        elapsed_vs_rto(execution),
        cleanup_progress(execution),
    ]
    return "  ".join(part for part in parts if part)


def progress_block(execution):
    """The lines redrawn on a terminal: short enough for 80 columns with the usual names."""
    lines = [
        f"{execution.mode} '{execution.plan_name}' {str(execution.pk)[:8]}  {execution.status}  "
        f"{elapsed_vs_rto(execution)}",
        *wave_lines(execution),
    ]
    cleanup = cleanup_progress(execution)
    return [*lines, f"  {cleanup}"] if cleanup else lines


def wave_lines(execution):
    counts = wave_counts(execution)
    waves = list(execution.wave_runs.all())
    width = max([len(w.name) for w in waves] + [4])
    lines = []
    for wave in waves:
        launched, failed, total = counts.get(wave.pk, (0, 0, 0))
        line = f"  {wave.number}  {wave.name:<{width}}  {wave.status:<16}  {launched}/{total} launched"
        if failed:
            line += f", {failed} failed"
        lines.append(line)
    return lines


def approval_hint(execution, wave):
    return (
        f"Wave {wave.number} '{wave.name}' waits for approval. Approve it (from another shell, the web UI "
        f"or the API) with:\n  manage.py execution approve {execution.pk}"
    )


def action_hint(execution, action):
    return (
        f"Wave {action.wave_run.number} '{action.wave_run.name}' waits for the manual action '{action.name}': "
        f"{action.config.get('instructions', '')}\nComplete it (from another shell, the web UI or the API) "
        f"with:\n  manage.py execution complete {execution.pk} \"{action.name}\" --comment \"what was done\""
    )


class ProgressRenderer:
    """Shows an execution while it is followed.

    On a terminal, a compact block (header, one line per wave) is redrawn in place with ANSI
    sequences (cursor up, clear line); lines are cut to the terminal's width so that the
    cursor arithmetic holds. Messages (approval hints, clean-up) are printed above the block,
    which is then drawn again below them. Elsewhere (a pipe, a log file, a test) a line is
    printed only when something changed: the execution's status, a wave's status or its
    launched/failed counts, the clean-up's progress."""

    CLEAR_LINE = "\x1b[2K"
    CLEAR_BELOW = "\x1b[J"

    def __init__(self, stream, *, tty):
        self.stream = stream
        self.tty = tty
        self.block = []  # the lines of the block last drawn (terminal only)
        self.drawn = 0  # how many of them are on screen now
        self.seen_execution = None
        self.seen_cleanup = ""
        self.seen_waves = {}
        self.hinted = set()

    def update(self, execution):
        waves = list(execution.wave_runs.all())
        for wave in waves:
            if wave.status == WaveStatus.WAITING_APPROVAL and wave.pk not in self.hinted:
                self.hinted.add(wave.pk)
                self.message(approval_hint(execution, wave))
        # A manual action waiting for an Operator (read only while a wave runs its actions).
        if any(wave.status in WAVE_ACTION_PHASES for wave in waves):
            for action in execution.action_runs.filter(status=ActionStatus.WAITING).select_related("wave_run"):
                key = ("action", action.pk, action.attempt)
                if key not in self.hinted:
                    self.hinted.add(key)
                    self.message(action_hint(execution, action))
        if self.tty:
            self.block = progress_block(execution)
            self._redraw()
        else:
            self._changed_lines(execution)

    def message(self, text):
        if not self.tty:
            write(self.stream, text + "\n")
            return
        write(self.stream, self._up(self.drawn) + self.CLEAR_BELOW + text + "\n")
        self.drawn = 0
        self._redraw()

    def close(self):
        """Leave the last block on screen; what follows goes below it."""
        self.drawn = 0
        self.block = []

    @staticmethod
    def _up(lines):
        """Back to the start of the line `lines` lines up (nothing for 0)."""
        return f"\r\x1b[{lines}A" if lines else ""

    def _redraw(self):
        width = max(20, shutil.get_terminal_size().columns - 1)
        text = self._up(self.drawn)
        text += "".join(f"{self.CLEAR_LINE}{line[:width]}\n" for line in self.block) + self.CLEAR_BELOW
        write(self.stream, text)
        self.drawn = len(self.block)

    def _changed_lines(self, execution):
        stamp = f"[{duration(execution.elapsed_seconds())}]"
        out = []
        counts = wave_counts(execution)
        for wave in execution.wave_runs.all():
            launched, failed, total = counts.get(wave.pk, (0, 0, 0))
            state = (wave.status, launched, failed)
            if self.seen_waves.get(wave.pk) != state:
                self.seen_waves[wave.pk] = state
                line = f"{stamp} Wave {wave.number} '{wave.name}': {wave.status}, {launched}/{total} launched"
                out.append(line + (f", {failed} failed" if failed else ""))
        if execution.status != self.seen_execution:
            self.seen_execution = execution.status
            line = f"{stamp} Execution {execution.status}  ({elapsed_vs_rto(execution)})"
            # The verdict comes last; a start or a change of course comes before the waves.
            out.insert(len(out) if execution.is_terminal else 0, line)
        cleanup = cleanup_progress(execution)
        if cleanup != self.seen_cleanup:
            self.seen_cleanup = cleanup
            out.append(f"{stamp} Drill {cleanup}")
        if out:
            write(self.stream, "\n".join(out) + "\n")
