"""Benchmark of the execution engine against the sandbox, in real time.

Runs P concurrent drills of its own plans (W waves of S servers each, spread over T sandbox
targets) with one poller ticking every --poll seconds, and prints one JSON object:

- wave_transition_overhead_s (p50, p95, max): the next wave's StartRecovery (the simulated
  DRS's job creation time) minus the moment the previous wave's last server reached LAUNCHED
  (the simulated instance's launch time);
- poll_tick_ms (p50, p95): wall time of one engine tick over every active execution;
- db_queries_per_tick (max) and drs_calls_per_tick (max);
- simulated_drs_ms_per_tick and engine_ms_per_tick (p50, p95): the tick split into the time
  spent inside the simulated DRS's answers and the engine's own time;
- engine_process_cpu_ms_per_tick (p50, p95): CPU time of this process per tick, every thread;
  with `--simulator process` (the simulated DRS in its own process, reached over HTTP like AWS:
  bench/simulator.py) that is the product's own work, and simulator_process_cpu_ms_per_tick
  is the simulator's.

It builds its own database in a temporary folder and leaves nothing behind.

    .venv/bin/python bench/engine.py --executions 50 --waves 3 --servers-per-wave 20 --targets 5 --json
    .venv/bin/python bench/engine.py --executions 100 --waves 3 --servers-per-wave 20 --targets 10 \
        --latency-ms 100 --json
    .venv/bin/python bench/engine.py --executions 100 --waves 3 --servers-per-wave 20 --targets 10 \
        --latency-ms 100 --simulator process --json
"""

import argparse
import json
import os
import statistics
import tempfile
import threading
import time

from setup_db import setup_django


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=10)
    parser.add_argument("--waves", type=int, default=3)
    parser.add_argument("--servers-per-wave", type=int, default=5)
    parser.add_argument("--targets", type=int, default=1)
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between ticks (DRSORCH_POLL_SECONDS)")
    parser.add_argument("--launch-seconds", type=float, default=3.0, help="simulated launch duration")
    parser.add_argument("--latency-ms", type=int, default=0,
                        help="milliseconds every simulated DRS call takes (real DRS: 100-400)")
    parser.add_argument("--simulator", choices=("thread", "process"), default="thread",
                        help="answer DRS calls in the calling thread (as the tests do) or from a separate "
                             "process over HTTP (as AWS does: its CPU is not the engine's); see bench/simulator.py")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    return parser.parse_args()


def build_plans(args):
    from drsorch.sandbox.services import sandbox_configure, sandbox_servers_create
    from plans.models import Target
    from plans.services import WaveSpec, plan_save, protection_group_save, source_servers_sync

    sandbox_configure(launch_seconds=args.launch_seconds)
    targets = [Target.objects.create(name=f"bench-{n}", kind="sandbox", account_id=f"{900000000000 + n}",
                                     region="us-east-1") for n in range(args.targets)]
    layout = {}
    for p in range(args.executions):
        target = targets[p % args.targets]
        for w in range(args.waves):
            layout[(p, w)] = (target, [f"e{p:03d}-w{w}-s{s:03d}" for s in range(args.servers_per_wave)])
    for target in targets:
        specs = [{"hostname": h} for (tgt, hosts) in layout.values() if tgt == target for h in hosts]
        sandbox_servers_create(account_id=target.account_id, region=target.region, specs=specs, snapshots=1)
        source_servers_sync(target=target)
    plans = []
    from plans.models import SourceServer

    for p in range(args.executions):
        specs = []
        for w in range(args.waves):
            target, hosts = layout[(p, w)]
            servers = list(SourceServer.objects.filter(target=target, hostname__in=hosts))
            group = protection_group_save(name=f"bench {p} wave {w}", target=target, servers=servers)
            specs.append(WaveSpec(name=f"Wave {w}", protection_groups=[group]))
        plans.append(plan_save(name=f"Bench plan {p}", waves=specs))
    return plans


def percentile(values, share):
    ordered = sorted(values)
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def run(args, folder):
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    from drsorch.sandbox.services import sandbox_configure
    from executions import engine
    from executions.services import execution_start
    from executions.tasks import launch_budget_seconds

    plans = build_plans(args)
    if args.simulator == "process":
        import simulator

        port = 18000 + os.getpid() % 1000
        simulator_process = simulator.start(folder, port)
        simulator.forward_to(port)
    simulated = measure_simulated_drs()
    executions = [execution_start(plan=plan, mode="DRILL", requested_by=None) for plan in plans]
    ids = [e.pk for e in executions]
    # From the first tick on (the setup's inventory syncs and readiness checks are not measured).
    sandbox_configure(latency_ms=args.latency_ms)
    tick_ms, queries, calls, drs_ms, cpu_ms, simulator_cpu_ms = [], [], [], [], [], []
    # Slow calls (--latency-ms) make the engine before issue 12 take far longer: let it finish.
    deadline = (time.monotonic() + 60 + args.waves * args.launch_seconds * 4 + args.executions
                + args.latency_ms / 1000 * args.executions * args.waves * 5)
    while time.monotonic() < deadline:
        reset_queries()  # DEBUG keeps at most 9000 queries; count each tick from zero
        simulated["seconds"] = 0.0
        started, cpu_started = time.perf_counter(), time.process_time()
        simulator_cpu_started = process_cpu_seconds(simulator_process) if args.simulator == "process" else 0.0
        with CaptureQueriesContext(connection) as captured:
            result = engine.tick(execution_ids=ids, owner="bench", launch_budget_seconds=launch_budget_seconds())
        tick_ms.append((time.perf_counter() - started) * 1000)
        cpu_ms.append((time.process_time() - cpu_started) * 1000)
        if args.simulator == "process":
            simulator_cpu_ms.append((process_cpu_seconds(simulator_process) - simulator_cpu_started) * 1000)
        queries.append(len(captured))
        calls.append(result.drs_calls)
        drs_ms.append(simulated["seconds"] * 1000)
        if not result.remaining:
            break
        time.sleep(max(0.0, args.poll - (time.perf_counter() - started)))
    if args.simulator == "process":
        simulator_process.terminate()
        simulator_process.wait()
    return executions, tick_ms, queries, calls, drs_ms, cpu_ms, simulator_cpu_ms


def process_cpu_seconds(process):
    """CPU seconds (user + system) another process has used so far, from /proc (Linux)."""
    with open(f"/proc/{process.pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_simulated_drs():
    """Add up the time spent answering calls inside the simulated DRS (its handler runs in
    this process): against AWS that time is DRS's, not the engine's. Calls answered in several
    threads at once are added up, so with concurrent calls it may exceed the tick's wall time."""
    from drsorch.sandbox.transport import SandboxTransport

    total = {"seconds": 0.0}
    lock = threading.Lock()
    answer = SandboxTransport.__call__

    def timed(self, request, event_name="", **kwargs):
        started = time.perf_counter()
        try:
            return answer(self, request, event_name=event_name, **kwargs)
        finally:
            with lock:
                total["seconds"] += time.perf_counter() - started

    SandboxTransport.__call__ = timed
    return total


def transition_overheads(executions):
    """Seconds from the previous wave's last LAUNCHED to the next wave's StartRecovery."""
    from drsorch.drs.constants import TAG_EXECUTION, TAG_WAVE
    from drsorch.sandbox.models import SandboxJob, SandboxRecoveryInstance

    created = {}
    for job in SandboxJob.objects.filter(type="LAUNCH"):
        key = (job.tags.get(TAG_EXECUTION), job.tags.get(TAG_WAVE))
        created[key] = min(created.get(key, job.created_at), job.created_at)
    launched = {}
    for instance in SandboxRecoveryInstance.objects.select_related("job"):
        key = (instance.job.tags.get(TAG_EXECUTION), instance.job.tags.get(TAG_WAVE))
        launched[key] = max(launched.get(key, instance.launched_at), instance.launched_at)
    overheads = []
    for execution in executions:
        for wave in execution.wave_runs.order_by("index")[1:]:
            previous = (str(execution.pk), str(wave.index - 1))
            current = (str(execution.pk), str(wave.index))
            if previous in launched and current in created:
                overheads.append((created[current] - launched[previous]).total_seconds())
    return overheads


def main():
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="drsorch-bench-") as folder:
        os.environ["DRSORCH_POLL_SECONDS"] = str(args.poll)  # ticks are given a launch budget from it
        setup_django(folder)
        executions, tick_ms, queries, calls, drs_ms, cpu_ms, simulator_cpu_ms = run(args, folder)
        engine_ms = [tick - drs for tick, drs in zip(tick_ms, drs_ms, strict=True)]
        for execution in executions:
            execution.refresh_from_db()
        overheads = transition_overheads(executions)
        statuses = {}
        for execution in executions:
            statuses[execution.status] = statuses.get(execution.status, 0) + 1
        result = {
            "config": {"executions": args.executions, "waves": args.waves,
                       "servers_per_wave": args.servers_per_wave, "targets": args.targets, "poll_s": args.poll,
                       "launch_seconds": args.launch_seconds, "latency_ms": args.latency_ms,
                       "simulator": args.simulator},
            "statuses": statuses,
            "ticks": len(tick_ms),
            "wave_transition_overhead_s": {
                "p50": round(statistics.median(overheads), 3) if overheads else None,
                "p95": round(percentile(overheads, 0.95), 3) if overheads else None,
                "max": round(max(overheads), 3) if overheads else None,
                "samples": len(overheads),
            },
            "poll_tick_ms": {"p50": round(statistics.median(tick_ms), 1), "p95": round(percentile(tick_ms, 0.95), 1)},
            # The tick split in two: time inside the simulated DRS's answers, and the rest.
            "simulated_drs_ms_per_tick": {"p50": round(statistics.median(drs_ms), 1),
                                          "p95": round(percentile(drs_ms, 0.95), 1)},
            "engine_ms_per_tick": {"p50": round(statistics.median(engine_ms), 1),
                                   "p95": round(percentile(engine_ms, 0.95), 1)},
            # CPU time of this process (every thread) per tick: the product's own work, and with
            # --simulator thread also the simulated DRS's answers.
            "engine_process_cpu_ms_per_tick": {"p50": round(statistics.median(cpu_ms), 1),
                                               "p95": round(percentile(cpu_ms, 0.95), 1)},
            "db_queries_per_tick": {"max": max(queries)},
            "drs_calls_per_tick": {"max": max(calls)},
        }
    if simulator_cpu_ms:
        # With --simulator process: the simulated DRS's CPU per tick, in its own process.
        result["simulator_process_cpu_ms_per_tick"] = {"p50": round(statistics.median(simulator_cpu_ms), 1),
                                                       "p95": round(percentile(simulator_cpu_ms, 0.95), 1)}
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
