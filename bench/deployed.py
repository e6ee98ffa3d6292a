"""Benchmark of the product as deployed: the real django-q2 `qcluster` with default settings.

Builds a fresh SQLite database in a temporary folder, seeds the sandbox demo (`sandbox seed`:
the plan "Demo 3-tier application", waves Database, Application, Web), registers the
django-q2 schedules, starts `manage.py qcluster` as a subprocess, then starts a DRILL of the
demo plan with auto-approve, as a person would (its first advance is enqueued), and waits
for its end. It then sends SIGTERM to the worker and times how long it takes to stop.

It prints one JSON object:

- wave_gaps_s: for each transition, on DRS's clock (the simulated DRS's job times, as
  `sandbox status --json` gives them), the first job creation of wave N+1 minus the last job
  end of wave N: what the poller adds between two waves;
- since_last_launch_s: the same next-wave job creation minus the previous wave's last server
  reaching LAUNCHED (the simulated instance's launch time), as bench/engine.py measures;
- describe_jobs: DescribeJobs calls per target during the drill, their rate, and the most
  made in any 2 s window (the worker's calls, counted where the simulated DRS answers them):
  all of them, those following known jobs (filters.jobIDs: the poll) and those listing the
  account's recent jobs (fromDate: quota room and intents, only in ticks that launch);
- drill_seconds, status, and worker_stop_seconds (SIGTERM to exit).

No DRSORCH_POLL_* variable is set: the figures are those of the defaults.

    .venv/bin/python bench/deployed.py [--json] [--timeout 600]
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from setup_db import ROOT, setup_django

WINDOW_SECONDS = 2.0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the drill to end")
    parser.add_argument("--worker", metavar="CALL_LOG", help=argparse.SUPPRESS)
    return parser.parse_args()


def run_worker(call_log):
    """The worker process: `manage.py qcluster`, with every simulated DRS call logged (time,
    operation, account, region) to `call_log`, one line per call (appends are atomic)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "drsorch.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from drsorch.sandbox.transport import SandboxTransport

    answer = SandboxTransport.__call__

    def logged(self, request, event_name="", **kwargs):
        if self.service_name == "drs":
            operation = event_name.rsplit(".", 1)[-1]
            if operation == "DescribeJobs":
                # Following known jobs (filters.jobIDs) or listing the account's recent ones (fromDate).
                operation += ":fromDate" if b"fromDate" in (request.body or b"") else ":jobIDs"
            line = f"{time.time():.3f} {operation} {self.scope.account_id} {self.scope.region}\n"
            with open(call_log, "a") as log:
                log.write(line)
        return answer(self, request, event_name=event_name, **kwargs)

    SandboxTransport.__call__ = logged
    call_command("qcluster")


def start_drill():
    from executions.services import execution_start
    from plans.demo import DEMO_PLAN_NAME
    from plans.models import RecoveryPlan

    plan = RecoveryPlan.objects.get(name=DEMO_PLAN_NAME)
    return execution_start(plan=plan, mode="DRILL", requested_by=None, auto_approve=True)


def wait_for_end(execution, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution.refresh_from_db()
        if execution.is_terminal:
            return True
        time.sleep(0.5)
    return False


def wave_gaps(execution):
    """Seconds on DRS's clock from the last job end of wave N to the first job creation of N+1."""
    from drsorch.drs.constants import TAG_EXECUTION, TAG_WAVE
    from drsorch.sandbox.models import SandboxRecoveryInstance
    from drsorch.sandbox.services import sandbox_status

    ends, starts, launched = defaultdict(list), defaultdict(list), defaultdict(list)
    for instance in SandboxRecoveryInstance.objects.select_related("job"):
        tags = instance.job.tags or {}
        if tags.get(TAG_EXECUTION) == str(execution.pk):
            launched[int(tags[TAG_WAVE])].append(instance.launched_at)
    for job in sandbox_status()["jobs"]:
        tags = job.get("tags") or {}
        if job["type"] != "LAUNCH" or tags.get(TAG_EXECUTION) != str(execution.pk):
            continue
        wave = int(tags[TAG_WAVE])
        starts[wave].append(datetime.fromisoformat(job["created_at"]))
        if job.get("ended_at"):
            ends[wave].append(datetime.fromisoformat(job["ended_at"]))
    gaps = []
    for wave in sorted(starts):
        if wave - 1 in ends and ends[wave - 1]:
            gap = {"from_wave": wave, "to_wave": wave + 1,
                   "gap_s": round((min(starts[wave]) - max(ends[wave - 1])).total_seconds(), 3)}
            if launched[wave - 1]:
                gap["since_last_launch_s"] = round((min(starts[wave]) - max(launched[wave - 1])).total_seconds(), 3)
            gaps.append(gap)
    return gaps


def describe_jobs_figures(call_log, started, ended):
    """DescribeJobs calls per target (account/region) made between `started` and `ended`."""
    per_target = defaultdict(list)
    if Path(call_log).exists():
        for line in Path(call_log).read_text().splitlines():
            at, operation, account, region = line.split()
            if operation.startswith("DescribeJobs") and started <= float(at) <= ended:
                per_target[f"{account}/{region}"].append((float(at), operation.split(":")[1]))
    figures = {}
    seconds = max(ended - started, 1e-9)
    for target, calls in per_target.items():
        figures[target] = {}
        for kind in ("all", "jobIDs", "fromDate"):
            times = sorted(at for at, which in calls if kind in ("all", which))
            busiest = max((sum(1 for t in times[i:] if t < start + WINDOW_SECONDS) for i, start in enumerate(times)),
                          default=0)
            figures[target][kind] = {"calls": len(times), "per_second": round(len(times) / seconds, 3),
                                     f"max_in_{WINDOW_SECONDS:g}s": busiest}
    return figures


def stop_worker(worker):
    """SIGTERM the worker's main process, as a service manager or `make run` does; seconds to exit."""
    stopping = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=120)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
        return None
    return round(time.monotonic() - stopping, 2)


def main():
    args = parse_args()
    if args.worker:
        run_worker(args.worker)
        return
    for name in [name for name in os.environ if name.startswith("DRSORCH_")]:
        os.environ.pop(name)  # default settings, whatever the shell exports
    with tempfile.TemporaryDirectory(prefix="drsorch-deployed-") as folder:
        setup_django(folder)
        os.environ["LOG_LEVEL"] = "WARNING"
        from django.core.management import call_command

        from drsorch.schedules import schedules_setup

        call_command("sandbox", "seed", verbosity=0)
        schedules_setup()
        call_log = f"{folder}/drs-calls.log"
        with open(f"{folder}/worker.log", "w") as worker_log:
            worker = subprocess.Popen([sys.executable, __file__, "--worker", call_log], cwd=ROOT,
                                      stdout=worker_log, stderr=subprocess.STDOUT)
            try:
                time.sleep(3)  # the cluster starts its processes
                started = time.time()
                execution = start_drill()
                ended_in_time = wait_for_end(execution, args.timeout)
                ended = time.time()
                stop_seconds = stop_worker(worker)
            finally:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
        result = {
            "status": execution.status if ended_in_time else f"still {execution.status} after {args.timeout:g} s",
            "drill_seconds": round(ended - started, 1),
            "wave_gaps_s": wave_gaps(execution),
            "describe_jobs": describe_jobs_figures(call_log, started, ended),
            "worker_stop_seconds": stop_seconds,
        }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
