"""Host statistics from psutil where there is no /proc (Windows, macOS, BSD), in ``linux_proc``'s shapes.

The health collector turns both sources into the same node_exporter series; a value a platform lacks is
simply absent (psutil has no iowait on Windows, no inode counts, no load average there).
"""

from __future__ import annotations

import os
import sys

from agent.optional import psutil
from agent.platform.linux_proc import CPU_MODES, DiskStats, NetDevStats
from agent.platform.mounts import Mount

__all__ = ["cpu_seconds", "loadavg", "memory", "boot_time", "mounts", "diskstats", "netdev"]

# Windows calls hardware interrupt and DPC time what Linux calls irq and softirq.
_MODE_ALIASES = {"interrupt": "irq", "dpc": "softirq"}
# node_exporter's meminfo names for psutil's virtual_memory() fields (those present on the platform).
_MEMORY_FIELDS = (
    ("MemTotal", "total"),
    ("MemAvailable", "available"),
    ("MemFree", "free"),
    ("Buffers", "buffers"),
    ("Cached", "cached"),
    ("Active", "active"),
    ("Inactive", "inactive"),
    ("Shmem", "shared"),
    ("Slab", "slab"),
)


def cpu_seconds() -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for cpu, times in enumerate(psutil.cpu_times(percpu=True)):
        modes: dict[str, float] = {}
        for fname, value in times._asdict().items():
            mode = _MODE_ALIASES.get(fname, fname)
            if mode in CPU_MODES:
                modes[mode] = float(value)
        out[str(cpu)] = modes
    return out


def loadavg() -> tuple[float, float, float] | None:
    # psutil emulates a load average on Windows from a thread it starts; it reads 0 for the first minutes.
    if sys.platform == "win32" or not hasattr(os, "getloadavg"):
        return None
    try:
        return os.getloadavg()
    except OSError:
        return None


def memory() -> dict[str, float]:
    vm = psutil.virtual_memory()
    out = {name: float(getattr(vm, attr)) for name, attr in _MEMORY_FIELDS if getattr(vm, attr, None) is not None}
    try:
        sw = psutil.swap_memory()
    except (OSError, RuntimeError):
        return out
    out["SwapTotal"] = float(sw.total)
    out["SwapFree"] = float(sw.free)
    return out


def boot_time() -> float | None:
    try:
        return float(psutil.boot_time())
    except (OSError, RuntimeError):
        return None


def mounts() -> list[Mount]:
    return [
        Mount(p.device, p.mountpoint, p.fstype, tuple(p.opts.split(","))) for p in psutil.disk_partitions(all=False)
    ]


def diskstats() -> list[DiskStats]:
    out = []
    for dev, io in (psutil.disk_io_counters(perdisk=True) or {}).items():
        busy = getattr(io, "busy_time", None)  # Linux and FreeBSD only
        out.append(
            DiskStats(
                device=dev,
                reads_completed=float(io.read_count),
                read_bytes=float(io.read_bytes),
                read_time_seconds=io.read_time / 1000.0,
                writes_completed=float(io.write_count),
                written_bytes=float(io.write_bytes),
                write_time_seconds=io.write_time / 1000.0,
                io_time_seconds=busy / 1000.0 if busy is not None else None,
            )
        )
    return out


def netdev() -> list[NetDevStats]:
    return [
        NetDevStats(
            nic,
            float(n.bytes_recv),
            float(n.packets_recv),
            float(n.errin),
            float(n.dropin),
            float(n.bytes_sent),
            float(n.packets_sent),
            float(n.errout),
            float(n.dropout),
        )
        for nic, n in (psutil.net_io_counters(pernic=True) or {}).items()
    ]
