"""Benchmark of the simulated DRS's hot paths, through the real boto3 client.

Builds its own SQLite database in a temporary folder, creates a sandbox target with --servers
simulated source servers (half of them with post-launch actions), then times, through
`drsorch.aws.client_for(target, "drs")`:

- StartRecovery of --per-job servers, once per distinct server set (--jobs calls);
- DescribeJobs(filters={"jobIDs": the first 10 job IDs}), --runs times, while the jobs run
  and again once they have all completed (every server LAUNCHED, post-launch action runs);
- DescribeJobLogItems of each job in turn, --runs times (after completion: full logs);
- DescribeSourceServers (first page of 200), --runs times.

It prints one JSON object: per operation, the median and p95 milliseconds of the whole
client call (`client`) and of the part spent inside the simulated DRS (`handler`: the
`before-send` answer, without botocore's own serialization and parsing), and that part's CPU
time (`handler_cpu`, steadier than wall time when other work shares the machine).

    .venv/bin/python bench/sandbox.py [--servers 400] [--per-job 20] [--jobs 20] [--runs 20]
"""

import argparse
import json
import statistics
import tempfile
import time

from setup_db import setup_django

DESCRIBED_JOBS = 10


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=400)
    parser.add_argument("--per-job", type=int, default=20, help="servers per StartRecovery")
    parser.add_argument("--jobs", type=int, default=20, help="StartRecovery calls, each of distinct servers")
    parser.add_argument("--runs", type=int, default=20, help="calls of each read operation")
    parser.add_argument("--launch-seconds", type=float, default=2.0, help="simulated launch duration")
    args = parser.parse_args()
    if args.per_job * args.jobs > args.servers:
        parser.error("--per-job × --jobs must not exceed --servers (each job takes distinct servers)")
    return args


def build_target(args):
    """A sandbox target and the source server IDs of its simulated servers."""
    from drsorch.sandbox.services import sandbox_configure, sandbox_servers_create
    from plans.models import Target

    sandbox_configure(launch_seconds=args.launch_seconds)
    target = Target.objects.create(name="bench", kind="sandbox", account_id="900000000000", region="us-east-1")
    specs = [{"hostname": f"bench-{n:04d}", "post_launch_actions": n % 2 == 0} for n in range(args.servers)]
    servers = sandbox_servers_create(account_id=target.account_id, region=target.region, specs=specs, snapshots=2)
    return target, [s.source_server_id for s in servers]


def time_handler():
    """Add up the time spent inside the simulated DRS's answer of each call."""
    from drsorch.sandbox.transport import SandboxTransport

    spent = {"seconds": 0.0, "cpu_seconds": 0.0}
    answer = SandboxTransport.__call__

    def timed(self, request, event_name="", **kwargs):
        started, started_cpu = time.perf_counter(), time.thread_time()
        try:
            return answer(self, request, event_name=event_name, **kwargs)
        finally:
            spent["seconds"] += time.perf_counter() - started
            spent["cpu_seconds"] += time.thread_time() - started_cpu

    SandboxTransport.__call__ = timed
    return spent


class Timings:
    """Milliseconds of each call, whole and inside the handler, by operation."""

    def __init__(self, spent):
        self.spent = spent
        self.client = {}
        self.handler = {}
        self.handler_cpu = {}

    def call(self, operation, method, **kwargs):
        self.spent.update(seconds=0.0, cpu_seconds=0.0)
        started = time.perf_counter()
        answer = method(**kwargs)
        self.client.setdefault(operation, []).append((time.perf_counter() - started) * 1000)
        self.handler.setdefault(operation, []).append(self.spent["seconds"] * 1000)
        self.handler_cpu.setdefault(operation, []).append(self.spent["cpu_seconds"] * 1000)
        return answer

    def summary(self):
        return {
            operation: {"client": stats(self.client[operation]), "handler": stats(self.handler[operation]),
                        "handler_cpu": stats(self.handler_cpu[operation]), "calls": len(self.client[operation])}
            for operation in self.client
        }


def percentile(values, share):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def stats(values):
    return {"median_ms": round(statistics.median(values), 2), "p95_ms": round(percentile(values, 0.95), 2)}


def run(args, target, server_ids, timings):
    from drsorch.aws import client_for

    drs = client_for(target, "drs", single_attempt=True)
    drs.describe_source_servers(maxResults=1)  # warm-up: botocore loads its models once
    job_ids = []
    for n in range(args.jobs):
        chosen = server_ids[n * args.per_job:(n + 1) * args.per_job]
        job = timings.call("StartRecovery", drs.start_recovery, isDrill=True,
                           sourceServers=[{"sourceServerID": s} for s in chosen])["job"]
        job_ids.append(job["jobID"])
    described = job_ids[:DESCRIBED_JOBS]
    for _ in range(args.runs):
        timings.call("DescribeJobs (running)", drs.describe_jobs, filters={"jobIDs": described})
    time.sleep(args.launch_seconds * 2)  # every job COMPLETED, every server LAUNCHED
    for _ in range(args.runs):
        answer = timings.call("DescribeJobs (completed)", drs.describe_jobs, filters={"jobIDs": described})
    assert all(job["status"] == "COMPLETED" for job in answer["items"]), "jobs did not complete"
    for n in range(args.runs):
        timings.call("DescribeJobLogItems", drs.describe_job_log_items, jobID=job_ids[n % len(job_ids)])
    for _ in range(args.runs):
        timings.call("DescribeSourceServers", drs.describe_source_servers)


def main():
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="drsorch-bench-") as folder:
        setup_django(folder)
        target, server_ids = build_target(args)
        timings = Timings(time_handler())
        run(args, target, server_ids, timings)
    result = {
        "config": {"servers": args.servers, "per_job": args.per_job, "jobs": args.jobs, "runs": args.runs,
                   "described_jobs": DESCRIBED_JOBS, "launch_seconds": args.launch_seconds},
        "operations": timings.summary(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
