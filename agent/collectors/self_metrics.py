"""The agent's own build and resource use, with client_python's standard process metric names.

    shaobing_build_info{version="0.1.0",python="3.11.7"} 1
    process_resident_memory_bytes 2.9e+07
    process_cpu_seconds_total 1.25
    process_start_time_seconds 1.7e+09
    process_open_fds 12
"""

from __future__ import annotations

import os
import platform

from agent import __version__
from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector, CollectorOptions
from agent.optional import available, psutil

__all__ = ["SelfCollector"]


class SelfCollector(Collector):
    name = "self"
    default_interval = 15.0
    default_timeout = 5.0
    metrics = (
        MetricSpec("shaobing_build_info", "gauge", "Agent version and the Python running it; always 1.",
                   ("version", "python")),
        MetricSpec("process_resident_memory_bytes", "gauge", "Resident memory size of the agent.", (), "bytes"),
        MetricSpec("process_virtual_memory_bytes", "gauge", "Virtual memory size of the agent.", (), "bytes"),
        MetricSpec("process_cpu_seconds_total", "counter", "User and system CPU time of the agent.", (), "seconds"),
        MetricSpec("process_start_time_seconds", "gauge", "Start time of the agent since the epoch.", (), "seconds"),
        MetricSpec("process_open_fds", "gauge", "Open file descriptors of the agent."),
        MetricSpec("process_max_fds", "gauge", "Maximum number of open file descriptors of the agent."),
        MetricSpec("process_virtual_memory_max_bytes", "gauge",
                   "Maximum amount of virtual memory available in bytes (unlimited: 2^64-1, as client_golang).", (),
                   "bytes"),
    )

    def __init__(self, options: CollectorOptions, context: AgentContext) -> None:
        super().__init__(options, context)
        # Without psutil (a CPU the bundle has no wheel for) the same values come from /proc/self on Linux.
        self._proc = psutil.Process() if available(psutil) or not os.path.isdir("/proc/self") else None

    def collect(self, out: MetricSet) -> None:
        out.add("shaobing_build_info", 1, {"version": __version__, "python": platform.python_version()})
        if self._proc is None:
            _add_from_proc(out)
        else:
            with self._proc.oneshot():
                mem = self._proc.memory_info()
                cpu = self._proc.cpu_times()
                out.add("process_resident_memory_bytes", mem.rss)
                out.add("process_virtual_memory_bytes", mem.vms)
                out.add("process_cpu_seconds_total", cpu.user + cpu.system)
                out.add("process_start_time_seconds", self._proc.create_time())
                if hasattr(self._proc, "num_fds"):
                    out.add("process_open_fds", self._proc.num_fds())
        try:
            import resource

            fds, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            vm, _ = resource.getrlimit(resource.RLIMIT_AS)
        except (ImportError, OSError, ValueError):
            return  # Windows: no rlimits
        out.add("process_max_fds", fds if fds != resource.RLIM_INFINITY else 2.0**64 - 1)
        out.add("process_virtual_memory_max_bytes", vm if vm != resource.RLIM_INFINITY else 2.0**64 - 1)


def _add_from_proc(out: MetricSet) -> None:
    """process_* from /proc/self, as client_golang's process collector reads them."""
    page = os.sysconf("SC_PAGE_SIZE")
    ticks = os.sysconf("SC_CLK_TCK")
    with open("/proc/self/statm") as fh:
        vms_pages, rss_pages = (int(x) for x in fh.read().split()[:2])
    with open("/proc/self/stat") as fh:
        # Fields after the parenthesised command name (which may contain spaces): utime is the 14th field.
        rest = fh.read().rsplit(")", 1)[1].split()
    with open("/proc/stat") as fh:
        btime = next(float(line.split()[1]) for line in fh if line.startswith("btime "))
    out.add("process_resident_memory_bytes", rss_pages * page)
    out.add("process_virtual_memory_bytes", vms_pages * page)
    out.add("process_cpu_seconds_total", (int(rest[11]) + int(rest[12])) / ticks)
    out.add("process_start_time_seconds", btime + int(rest[19]) / ticks)
    out.add("process_open_fds", len(os.listdir("/proc/self/fd")))
