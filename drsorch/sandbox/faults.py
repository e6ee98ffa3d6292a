"""Faults the simulated DRS can inject into its caller.

`crash_process` is looked up through this module at the moment of the crash, so tests can
replace it (monkeypatch `drsorch.sandbox.faults.crash_process`) with a function that raises
`SimulatedCrash`, a BaseException that ordinary `except Exception` handlers do not swallow.
"""

import os

CRASH_EXIT_STATUS = 137


class SimulatedCrash(BaseException):
    """Raised instead of exiting when a test replaces `crash_process`."""


def crash_process():
    """End the calling process at once, as a SIGKILL would: no cleanup, no response read."""
    os._exit(CRASH_EXIT_STATUS)
