"""The state machine of waves and executions.

A wave starts when every wave it depends on ended SUCCEEDED or PARTIAL (a gate holds it in
WAITING_APPROVAL), runs its `before` actions (BEFORE_ACTIONS), launches (LAUNCHING), runs
its `after` actions once its launches are settled and its outcome is not FAILED
(AFTER_ACTIONS), may WAIT before its dependents start, and ends SUCCEEDED, PARTIAL or
FAILED; at its launch deadline DRS is read once more before it is marked TIMED_OUT. A wave
without actions skips both action phases (WaveRun.before_actions / after_actions are 0, and
no ActionRun is read). A failed action with `on_failure: fail` fails the wave (engine/actions/).
An execution follows its waves. Something to do once a status changed belongs in a receiver
of `executions.signals`, not here.

May import: actions, jobs, lease, rows (and models, choices). Never job_log, launching or ticks.
"""

from __future__ import annotations

from datetime import timedelta

from executions.choices import (
    JOB_OPEN,
    WAVE_ACTION_PHASES,
    WAVE_SATISFIES_DEPENDENTS,
    EventKind,
    ExecutionStatus,
    WaveStatus,
)
from executions.models import Execution, ServerLaunch, WaveRun
from plans.choices import ActionWhen

from . import actions, evidence
from .jobs import launch_failed, launch_settled, poll_jobs
from .lease import LeaseLost
from .rows import TickRows


def step_waves(rows: TickRows, execution: Execution) -> bool:
    """Move the execution's waves along; False for an ended execution (only its open
    jobs are followed)."""
    if execution.status == ExecutionStatus.PENDING:
        rows.set_status(
            execution, ExecutionStatus.RUNNING, "Execution started.", started_at=execution.started_at or rows.now
        )
    if execution.is_terminal:
        return False
    waves = rows.waves[execution.pk]
    # A wave that ends can release its dependents in the same tick.
    for _ in range(len(waves) + 1):
        changed = [step_wave(rows, execution, wave) for wave in waves]  # step every wave, no short-circuit
        if not any(changed):
            break
    return True


def step_wave(rows: TickRows, execution: Execution, wave: WaveRun) -> bool:
    """Move one wave by one status if it can; True if it changed. A wave with actions that
    ends has its unfinished actions closed (skipped, or cancelled with the execution)."""
    changed = _step_wave(rows, execution, wave)
    if changed and wave.is_terminal and (wave.before_actions or wave.after_actions):
        actions.close_actions(rows, wave)
    return changed


def _step_wave(rows: TickRows, execution: Execution, wave: WaveRun) -> bool:
    cancelling = execution.status == ExecutionStatus.CANCELLING
    by_index = {w.index: w for w in rows.waves[execution.pk]}
    if wave.status == WaveStatus.PENDING:
        if cancelling:
            return rows.set_status(wave, WaveStatus.CANCELLED, finished_at=rows.now)
        deps = [by_index[i] for i in wave.depends_on if i in by_index]
        blocked = [d for d in deps if d.is_terminal and d.status not in WAVE_SATISFIES_DEPENDENTS]
        if blocked:
            return rows.set_status(
                wave,
                WaveStatus.SKIPPED,
                f"Wave {wave.number} '{wave.name}' skipped: wave '{blocked[0].name}' ended {blocked[0].status}.",
                finished_at=rows.now,
            )
        if all(d.status in WAVE_SATISFIES_DEPENDENTS for d in deps):
            if wave.approval_required and not wave.approved_at:
                if not execution.auto_approve:
                    return rows.set_status(
                        wave, WaveStatus.WAITING_APPROVAL, f"Wave {wave.number} '{wave.name}' waits for approval."
                    )
                wave.approved_at = rows.now
                rows.event(
                    execution.pk,
                    EventKind.ACTION,
                    f"Gate of wave '{wave.name}' approved automatically (auto-approve).",
                    wave=wave,
                )
            return begin_wave(rows, wave)
        return False
    if wave.status == WaveStatus.WAITING_APPROVAL:
        if cancelling:
            return rows.set_status(wave, WaveStatus.CANCELLED, finished_at=rows.now)
        return False
    if wave.status in WAVE_ACTION_PHASES:
        return step_action_phase(rows, execution, wave, cancelling)
    if wave.status == WaveStatus.LAUNCHING:
        return step_launching_wave(rows, execution, wave, cancelling)
    if wave.status == WaveStatus.WAITING and (cancelling or (wave.wait_until and rows.now >= wave.wait_until)):
        return rows.set_status(wave, wave_outcome(rows, execution, wave), finished_at=rows.now)
    return False


def begin_wave(rows: TickRows, wave: WaveRun) -> bool:
    """Start `wave`: its `before` actions first when it has any, else its launch."""
    if wave.before_actions:
        return rows.set_status(
            wave,
            WaveStatus.BEFORE_ACTIONS,
            f"Wave {wave.number} '{wave.name}' runs its {wave.before_actions} action(s) before launch.",
            started_at=wave.started_at or rows.now,
        )
    return start_wave(rows, wave)


def step_action_phase(rows: TickRows, execution: Execution, wave: WaveRun, cancelling: bool) -> bool:
    """Move the actions of a wave in BEFORE_ACTIONS or AFTER_ACTIONS, and the wave once they
    all ended: on to its launch (before) or its end (after), or FAILED by a failed action."""
    if cancelling:
        actions.cancel_phase(rows, wave)
        return rows.set_status(wave, WaveStatus.CANCELLED, finished_at=rows.now)
    before = wave.status == WaveStatus.BEFORE_ACTIONS
    if execution.pk in rows.lost:
        return False
    try:
        changed, phase, failure = actions.step_phase(
            rows, execution, wave, ActionWhen.BEFORE if before else ActionWhen.AFTER
        )
    except LeaseLost:
        # Renewed before each outside call: another worker holds the execution now.
        rows.lost.add(execution.pk)
        return False
    if phase == actions.Phase.RUNNING:
        return changed
    if phase == actions.Phase.FAILED:
        return rows.set_status(
            wave,
            WaveStatus.FAILED,
            f"Wave {wave.number} '{wave.name}' failed: {failure}"
            + (" before launch; its servers were not launched." if before else "."),
            finished_at=rows.now,
        )
    if before:
        return start_wave(rows, wave)
    return end_wave(rows, execution, wave, wave_outcome(rows, execution, wave), finished_at=rows.now)


def end_wave(rows: TickRows, execution: Execution, wave: WaveRun, outcome: str, *, finished_at) -> bool:
    """End a wave whose launches (and after actions) are done, or start its wait first."""
    if outcome != WaveStatus.FAILED and wave.wait_after_minutes:
        return rows.set_status(
            wave,
            WaveStatus.WAITING,
            f"Wave {wave.number} '{wave.name}' is done; waiting {wave.wait_after_minutes} min before "
            "its dependents.",
            wait_until=rows.now + timedelta(minutes=wave.wait_after_minutes),
        )
    return rows.set_status(wave, outcome, finished_at=finished_at)


def start_wave(rows: TickRows, wave: WaveRun) -> bool:
    """Put `wave` in LAUNCHING with its deadline; its servers go to DRS in this tick."""
    return rows.set_status(
        wave,
        WaveStatus.LAUNCHING,
        f"Wave {wave.number} '{wave.name}' is launching.",
        started_at=wave.started_at or rows.now,
        deadline_at=rows.now + timedelta(minutes=wave.timeout_minutes),
    )


def wave_outcome(rows: TickRows, execution: Execution, wave: WaveRun) -> str:
    """FAILED if a critical server failed, PARTIAL if only optional ones did, else SUCCEEDED."""
    failed = [launch for launch in rows.wave_launches(execution, wave) if launch_failed(execution, launch)]
    if any(launch.critical for launch in failed):
        return WaveStatus.FAILED
    return WaveStatus.PARTIAL if failed else WaveStatus.SUCCEEDED


def step_launching_wave(rows: TickRows, execution: Execution, wave: WaveRun, cancelling: bool) -> bool:
    """End (or start the wait of) a launching wave whose servers are settled, cancel it, or time it out."""
    if wave.pk not in rows.loaded_waves:
        # It started in this tick, and only some of its servers may be loaded (those of a job
        # still open, after a retry): judged on those it would end before its retried servers
        # launch. Its servers are loaded after this step; the next tick judges it whole.
        return False
    launches = rows.wave_launches(execution, wave)
    if launches and all(launch_settled(rows, execution, launch) for launch in launches):
        outcome = wave_outcome(rows, execution, wave)
        if outcome != WaveStatus.FAILED and wave.after_actions and not cancelling:
            return rows.set_status(
                wave,
                WaveStatus.AFTER_ACTIONS,
                f"Wave {wave.number} '{wave.name}' launched; running its {wave.after_actions} action(s) "
                "before its dependents.",
            )
        if outcome != WaveStatus.FAILED and wave.wait_after_minutes and not cancelling:
            return rows.set_status(
                wave,
                WaveStatus.WAITING,
                f"Wave {wave.number} '{wave.name}' is done; waiting {wave.wait_after_minutes} min before "
                "its dependents.",
                wait_until=rows.now + timedelta(minutes=wave.wait_after_minutes),
            )
        return rows.set_status(wave, outcome, finished_at=evidence.wave_finished_at(rows, execution, launches))
    if cancelling and not any(launch.job_id for launch in launches if not launch.is_terminal):
        return rows.set_status(wave, WaveStatus.CANCELLED, finished_at=rows.now)
    if wave.deadline_at and rows.now >= wave.deadline_at:
        return time_out_wave(rows, execution, wave, launches)
    return False


def time_out_wave(rows: TickRows, execution: Execution, wave: WaveRun, launches: list[ServerLaunch]) -> bool:
    """Read DRS once more for the truth before declaring the wave TIMED_OUT."""
    open_jobs = [
        rows.jobs[launch.job_id]
        for launch in launches
        if launch.job_id in rows.jobs and rows.jobs[launch.job_id].state in JOB_OPEN
    ]
    if open_jobs:
        poll_jobs(rows, list({job.pk: job for job in open_jobs}.values()))
    if all(launch_settled(rows, execution, launch) for launch in launches):
        return rows.set_status(
            wave, wave_outcome(rows, execution, wave), finished_at=evidence.wave_finished_at(rows, execution, launches)
        )
    for launch in launches:
        if not launch_settled(rows, execution, launch):
            phase = launch.get_phase_display() if launch.phase else "not started"
            launch.error = f"Timed out after {wave.timeout_minutes} min ({phase})."
            rows.touch(launch)
    return rows.set_status(
        wave,
        WaveStatus.TIMED_OUT,
        f"Wave {wave.number} '{wave.name}' timed out after {wave.timeout_minutes} min.",
        finished_at=rows.now,
    )


def step_execution_status(rows: TickRows, execution: Execution) -> None:
    """Set the execution's status from its waves': running, waiting for approval, or its end."""
    waves = rows.waves[execution.pk]
    if not all(wave.is_terminal for wave in waves):
        if execution.status == ExecutionStatus.CANCELLING:
            return
        waiting = any(w.status == WaveStatus.WAITING_APPROVAL for w in waves)
        moving = any(w.status in (WaveStatus.LAUNCHING, WaveStatus.WAITING, *WAVE_ACTION_PHASES) for w in waves)
        wanted = ExecutionStatus.WAITING_APPROVAL if waiting and not moving else ExecutionStatus.RUNNING
        rows.set_status(execution, wanted)
        return
    statuses = {wave.status for wave in waves}
    if execution.status == ExecutionStatus.CANCELLING:
        final = ExecutionStatus.CANCELLED
    elif WaveStatus.TIMED_OUT in statuses:
        final = ExecutionStatus.TIMED_OUT
    elif WaveStatus.FAILED in statuses:
        final = ExecutionStatus.FAILED
    elif statuses & {WaveStatus.PARTIAL, WaveStatus.SKIPPED}:
        final = ExecutionStatus.PARTIAL
    else:
        final = ExecutionStatus.SUCCEEDED
    elapsed = (rows.now - (execution.started_at or rows.now)).total_seconds()
    # Every launch of the execution, not only the waves this tick loaded (one query, in the
    # tick it ends), with this tick's unsaved changes over the stored rows.
    current = {launch.pk: launch for launch in rows.launches[execution.pk]}
    stored = ServerLaunch.objects.filter(execution=execution).only("critical", "launched_at", "snapshot_at")
    evidence.record_verdict_inputs(execution, [current.get(launch.pk, launch) for launch in stored])
    verdict = {True: "met", False: "missed", None: "unknown"}[
        execution.verdict(execution.rto_achieved, execution.rto_target_minutes, status=final)
    ]
    rows.set_status(
        execution,
        final,
        f"Execution ended {final} after {elapsed / 60:.1f} min; RTO target of "
        f"{execution.rto_target_minutes} min {verdict}.",
        finished_at=rows.now,
    )
