"""A process and its descendants as Linux's /proc shows them: which pids belong to it, and
what they cost (memory, CPU). Used to tell two qcluster processes apart and to size them."""

import os
from collections import defaultdict

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid):
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def _children_by_parent():
    children = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            parent = int(_stat_fields(entry)[1])
        except (OSError, IndexError, ValueError):  # ended while we looked
            continue
        children[parent].append(int(entry))
    return children


def _kilobytes(path, field):
    try:
        with open(path) as lines:
            for line in lines:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class ProcessTree:
    """The live descendants of `root` (itself included), sampled over time: every pid seen,
    the peak resident memory of the whole tree (RSS counts shared pages in each forked
    process, PSS shares them out) with each process's RSS at that peak (`peak_processes`,
    kB by pid), and the CPU time each process used."""

    def __init__(self, root: int):
        self.root = root
        self.pids: set[int] = set()
        self.peak_processes: dict[int, int] = {}
        self.peak_rss_kb = 0
        self.peak_pss_kb = 0
        self.first_rss_kb: int | None = None
        self._cpu_ticks: dict[int, int] = {}
        self._cpu_marked: dict[int, int] = {}

    def live(self) -> set[int]:
        """The pids of the tree right now."""
        children = _children_by_parent()
        found, todo = set(), [self.root]
        while todo:
            pid = todo.pop()
            if pid in found or not os.path.exists(f"/proc/{pid}"):
                continue
            found.add(pid)
            todo.extend(children.get(pid, ()))
        return found

    def sample(self) -> None:
        """Record the tree's pids, memory and CPU now."""
        live = self.live()
        self.pids |= live
        rss_by_pid = {pid: _kilobytes(f"/proc/{pid}/status", "VmRSS") for pid in live}
        rss = sum(rss_by_pid.values())
        pss = sum(_kilobytes(f"/proc/{pid}/smaps_rollup", "Pss") for pid in live)
        if self.first_rss_kb is None:
            self.first_rss_kb = rss
        if rss > self.peak_rss_kb:
            self.peak_rss_kb, self.peak_processes = rss, rss_by_pid
        self.peak_pss_kb = max(self.peak_pss_kb, pss)
        for pid in live:
            try:
                fields = _stat_fields(pid)
            except OSError:
                continue
            # utime and stime, fields 14 and 15 of stat (11 and 12 after the name).
            self._cpu_ticks[pid] = int(fields[11]) + int(fields[12])

    def mark(self) -> None:
        """Sample now and count CPU time from here on (not the start-up's imports)."""
        self.sample()
        self._cpu_marked = dict(self._cpu_ticks)

    def cpu_seconds(self) -> float:
        """CPU time used by every process of the tree since mark() (or its start), up to the
        last sample."""
        return sum(ticks - self._cpu_marked.get(pid, 0) for pid, ticks in self._cpu_ticks.items()) / CLOCK_TICKS
