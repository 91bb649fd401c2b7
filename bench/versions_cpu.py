"""Benchmark: CPU time of one run of the version-currency collectors on this machine.

    .venv/bin/python bench/versions_cpu.py [--runs 5]

CPU = user + system time of this process AND of the commands it runs (dpkg-query, the ``--version`` probes,
apt-get -s), from getrusage(RUSAGE_SELF) + getrusage(RUSAGE_CHILDREN) around each ``collect()``. The first run
is reported apart (cold page cache for the package database). Target (issue 3): versions <= 2 s CPU per run.
The updates (apt-get -s dist-upgrade) and reboot collectors are measured beside it for reference.
Prints a Markdown table for docs/perf/versions.md.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.collector import AgentContext, Collector  # noqa: E402
from agent.collectors.reboot import RebootCollector, RebootOptions  # noqa: E402
from agent.collectors.updates import UpdatesCollector, UpdatesOptions  # noqa: E402
from agent.collectors.versions import VersionsCollector, VersionsOptions  # noqa: E402


def cpu_now() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(collector: Collector, runs: int) -> tuple[float, list[float], list[float], int]:
    first = 0.0
    cpu: list[float] = []
    wall: list[float] = []
    series = 0
    for i in range(runs + 1):
        out = collector.new_metric_set()
        c0, w0 = cpu_now(), time.perf_counter()
        collector.collect(out)
        c1, w1 = cpu_now(), time.perf_counter()
        series = sum(len(out.samples(name)) for name in out.names())
        if i == 0:
            first = c1 - c0
        else:
            cpu.append(c1 - c0)
            wall.append(w1 - w0)
    return first, cpu, wall, series


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="shaobing-bench-versions-"))
    context = AgentContext(state_dir=state)
    collectors: list[Collector] = [
        VersionsCollector(VersionsOptions(), context),
        UpdatesCollector(UpdatesOptions(), context),
        RebootCollector(RebootOptions(), context),
    ]
    print(f"runs per collector: 1 cold + {args.runs}; CPU includes child processes\n")
    print("| collector | CPU first run (s) | CPU median (s) | CPU max (s) | wall median (s) | series |")
    print("| --- | --- | --- | --- | --- | --- |")
    verdict = 0
    for collector in collectors:
        first, cpu, wall, series = measure(collector, args.runs)
        print(f"| {collector.name} | {first:.3f} | {statistics.median(cpu):.3f} | {max(cpu):.3f} | "
              f"{statistics.median(wall):.3f} | {series} |")
        if collector.name == "versions" and max(cpu + [first]) > 2.0:
            verdict = 1
    print("\ntarget: versions collector <= 2 s CPU per run:", "met" if verdict == 0 else "NOT met")
    return verdict


if __name__ == "__main__":
    raise SystemExit(main())
