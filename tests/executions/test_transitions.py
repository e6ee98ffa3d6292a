"""The declared status transitions: legal moves pass, illegal ones are refused."""

import pytest

from executions.choices import (
    EXECUTION_TERMINAL,
    EXECUTION_TRANSITIONS,
    LAUNCH_TRANSITIONS,
    WAVE_TERMINAL,
    WAVE_TRANSITIONS,
    ExecutionStatus,
    LaunchStatus,
    WaveStatus,
)
from executions.models import Execution, InvalidTransition, ServerLaunch, WaveRun


@pytest.mark.parametrize(
    "table, choices",
    [
        (EXECUTION_TRANSITIONS, ExecutionStatus),
        (WAVE_TRANSITIONS, WaveStatus),
        (LAUNCH_TRANSITIONS, LaunchStatus),
    ],
)
def test_every_status_has_a_transition_row(table, choices):
    assert set(table) == set(choices.values)
    for targets in table.values():
        assert set(targets) <= set(choices.values)


def test_terminal_execution_statuses_only_lead_to_retry():
    for status in EXECUTION_TERMINAL:
        assert EXECUTION_TRANSITIONS[status] <= {ExecutionStatus.RUNNING}
    assert EXECUTION_TRANSITIONS[ExecutionStatus.SUCCEEDED] == set()
    assert EXECUTION_TRANSITIONS[ExecutionStatus.CANCELLED] == set()


def test_terminal_wave_statuses_only_lead_back_to_pending():
    for status in WAVE_TERMINAL:
        assert WAVE_TRANSITIONS[status] <= {WaveStatus.PENDING}


def test_execution_refuses_illegal_move():
    execution = Execution(status=ExecutionStatus.SUCCEEDED)
    with pytest.raises(InvalidTransition, match="cannot go from SUCCEEDED to RUNNING"):
        execution.check_transition(ExecutionStatus.RUNNING)
    Execution(status=ExecutionStatus.RUNNING).check_transition(ExecutionStatus.SUCCEEDED)


def test_wave_and_launch_refuse_illegal_moves():
    with pytest.raises(InvalidTransition):
        WaveRun(status=WaveStatus.SUCCEEDED).check_transition(WaveStatus.LAUNCHING)
    with pytest.raises(InvalidTransition):
        ServerLaunch(status=LaunchStatus.LAUNCHED).check_transition(LaunchStatus.PENDING)
    ServerLaunch(status=LaunchStatus.PENDING).check_transition(LaunchStatus.LAUNCHED)
