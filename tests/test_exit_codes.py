"""Every management command answers bad input with exit code 2 and one line on stderr, never a
traceback (the contract's Additions). Each case runs the command the way `manage.py` does
(ManagementUtility, so CommandError becomes a message and an exit code), in-process."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import ManagementUtility

from drsorch.sandbox.services import sandbox_configure
from plans.demo import DEMO_PLAN_NAME, sandbox_seed
from plans.models import Target

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)

START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
HUGE = str(2**70)


@pytest.fixture(autouse=True)
def demo():
    """The sandbox demo (plan "Demo 3-tier application", servers db-01, app-01, web-01), with
    the clock standing still."""
    with time_machine.travel(START, tick=False):
        yield sandbox_seed(servers=3)


def run(capsys, *argv):
    """Run `manage.py *argv`; return (exit code, stdout, stderr)."""
    code = 0
    try:
        ManagementUtility(["manage.py", *argv]).execute()
    except SystemExit as exit_info:
        code = exit_info.code
    out, err = capsys.readouterr()
    return code, out, err


BAD_INPUT = [
    # drill / recover: unknown plans, ids that are not whole ASCII numbers or past 64 bits
    ("drill", "No such plan"),
    ("drill", "١٢"),
    ("drill", HUGE),
    ("drill", "2.9"),
    ("drill", "-1"),
    ("drill", "\x00"),
    ("recover", "No such plan"),
    ("recover", HUGE),
    # bad formats and refused starts
    ("drill", DEMO_PLAN_NAME, "--point-in-time", "yesterday"),
    ("drill", DEMO_PLAN_NAME, "--point-in-time", "2999-01-01T00:00:00+00:00"),
    ("drill", DEMO_PLAN_NAME, "--point-in-time", "99999-01-01T00:00:00+00:00"),
    ("drill", DEMO_PLAN_NAME, "--cleanup"),
    # execution: unknown ids, out-of-range numbers
    ("execution", "show", "nope"),
    ("execution", "show", "١٢٣٤٥٦٧٨٩"),
    ("execution", "show", "00000000"),
    ("execution", "watch", "00000000-0000-0000-0000-000000000000"),
    ("execution", "approve", "nope"),
    ("execution", "cancel", "nope"),
    ("execution", "retry", "nope"),
    ("execution", "cleanup", "nope"),
    ("execution", "list", "--limit", "0"),
    ("execution", "list", "--limit", HUGE),
    ("execution", "list", "--limit", "-5"),
    # sync_servers
    ("sync_servers", "--target", "No such target"),
    # sandbox: out-of-range numbers and unknown names
    ("sandbox", "seed", "--servers", "1"),
    ("sandbox", "seed", "--servers", "-3"),
    ("sandbox", "seed", "--servers", HUGE),
    ("sandbox", "seed", "--account", "abc"),
    ("sandbox", "seed", "--region", "not a region"),
    ("sandbox", "configure", "--throttle-rate", "2"),
    ("sandbox", "configure", "--throttle-rate", "nan"),
    ("sandbox", "configure", "--launch-seconds", "-1"),
    ("sandbox", "configure", "--launch-seconds", "inf"),
    ("sandbox", "configure", "--launch-seconds", "nan"),
    ("sandbox", "configure", "--busy-seconds", "-1"),
    ("sandbox", "configure", "--busy-seconds", "inf"),
    ("sandbox", "configure", "--latency-ms", HUGE),
    ("sandbox", "configure", "--latency-ms", "-1"),
    ("sandbox", "configure", "--deny", "NotAnOperation"),
    ("sandbox", "configure", "--busy", "no-such-host"),
    ("sandbox", "configure", "--disconnect", "no-such-host"),
    # argparse's own errors
    ("execution", "list", "--limit", "ten"),
    ("execution", "frobnicate"),
    ("sandbox", "configure", "--latency-ms", "1.5"),
]


@pytest.mark.parametrize("argv", BAD_INPUT, ids=lambda argv: " ".join(argv)[:60])
def test_bad_input_exits_2_with_one_line_and_no_traceback(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    message = [line for line in err.splitlines() if line.strip() and not line.startswith(("usage:", "  "))]
    assert len(message) == 1, err
    assert len(message[0]) > 10


def test_a_refused_action_on_a_known_execution_exits_2(capsys):
    code, out, _ = run(capsys, "drill", DEMO_PLAN_NAME, "--json")
    assert code == 0
    execution_id = out.split('"id": "')[1].split('"')[0]
    code, _, err = run(capsys, "execution", "retry", execution_id)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "retried" in err
    code, _, err = run(capsys, "execution", "approve", execution_id, "--wave", HUGE)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_failed_readiness_is_one_line_naming_each_finding(capsys):
    sandbox_configure(disconnect=["db-01", "web-01"])
    code, _, err = run(capsys, "drill", DEMO_PLAN_NAME)
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "--accept-risks" in line and "db-01" in line and "web-01" in line


def test_a_plan_already_running_exits_2(capsys):
    assert run(capsys, "drill", DEMO_PLAN_NAME)[0] == 0
    code, _, err = run(capsys, "recover", DEMO_PLAN_NAME)
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_a_sync_that_fails_exits_1(capsys):
    sandbox_configure(deny=["DescribeSourceServers"])
    code, _, err = run(capsys, "sync_servers", "--target", Target.objects.get().name)
    assert code == 1
    assert "sync failed" in err and "Traceback" not in err
