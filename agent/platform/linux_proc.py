"""Parsers for the Linux /proc files behind the host-health metrics.

Each parser takes the file's text and returns plain values, so tests feed captured files and the collector
reads each file once per cycle (one ``read()`` is far cheaper than psutil's per-call overhead). Units are
converted here to the base units node_exporter exports: seconds (USER_HZ ticks, milliseconds) and bytes
(kB, 512-byte sectors).
"""

from __future__ import annotations

import ipaddress
import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

__all__ = [
    "CPU_MODES",
    "Stat",
    "DiskStats",
    "NetDevStats",
    "user_hz",
    "parse_stat",
    "parse_loadavg",
    "parse_meminfo",
    "parse_vmstat",
    "parse_diskstats",
    "parse_netdev",
    "parse_tcp_listeners",
]

# The columns of a "cpuN" line in /proc/stat, in order (proc(5)); node_exporter exports the first eight as
# node_cpu_seconds_total modes (guest time is already included in user and nice).
CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")

# Kernel sectors in /proc/diskstats are always 512 bytes, whatever the device's block size.
SECTOR_BYTES = 512


def user_hz() -> int:
    """Clock ticks per second of the /proc/stat counters (USER_HZ; 100 on every mainstream architecture)."""
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100


@dataclass
class Stat:
    """The parts of /proc/stat we export."""

    cpu_seconds: dict[str, dict[str, float]] = field(default_factory=dict)  # cpu index -> mode -> seconds
    context_switches: float | None = None
    interrupts: float | None = None
    boot_time: float | None = None
    procs_running: float | None = None
    procs_blocked: float | None = None
    forks: float | None = None  # "processes": forks since boot


def parse_stat(text: str, hz: int = 100) -> Stat:
    """Parse /proc/stat.

    >>> s = parse_stat("cpu0 10 0 5 80 1 0 0 0 0 0\\nctxt 99\\nbtime 1700000000\\n")
    >>> s.cpu_seconds["0"]["user"], s.context_switches, s.boot_time
    (0.1, 99.0, 1700000000.0)
    """
    out = Stat()
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        key = parts[0]
        if key.startswith("cpu") and key != "cpu":
            # The aggregate "cpu" line is skipped: node_exporter exports per-CPU series only.
            values = parts[1 : 1 + len(CPU_MODES)]
            out.cpu_seconds[key[3:]] = {mode: int(v) / hz for mode, v in zip(CPU_MODES, values)}
        elif key == "ctxt" and len(parts) > 1:
            out.context_switches = float(parts[1])
        elif key == "intr" and len(parts) > 1:
            out.interrupts = float(parts[1])
        elif key == "btime" and len(parts) > 1:
            out.boot_time = float(parts[1])
        elif key == "procs_running" and len(parts) > 1:
            out.procs_running = float(parts[1])
        elif key == "procs_blocked" and len(parts) > 1:
            out.procs_blocked = float(parts[1])
        elif key == "processes" and len(parts) > 1:
            out.forks = float(parts[1])
    return out


def parse_loadavg(text: str) -> tuple[float, float, float]:
    """Parse /proc/loadavg: ``0.11 0.10 0.04 1/92 8479`` -> (0.11, 0.10, 0.04)."""
    parts = text.split()
    return float(parts[0]), float(parts[1]), float(parts[2])


def parse_meminfo(text: str) -> dict[str, tuple[float, bool]]:
    """Parse /proc/meminfo into field -> (value, is_bytes).

    Fields given in kB are returned in bytes with ``is_bytes`` True (node_exporter appends ``_bytes``);
    unit-less fields (``HugePages_Total``) are plain counts. ``Active(anon)`` becomes ``Active_anon`` as in
    node_exporter.

    >>> parse_meminfo("MemTotal:  100 kB\\nHugePages_Total:  0\\n")
    {'MemTotal': (102400.0, True), 'HugePages_Total': (0.0, False)}
    """
    out: dict[str, tuple[float, bool]] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        parts = rest.split()
        if not parts:
            continue
        try:
            value = float(parts[0])
        except ValueError:
            continue
        is_bytes = len(parts) > 1 and parts[1] == "kB"
        if is_bytes:
            value *= 1024
        out[name.strip().replace("(", "_").replace(")", "")] = (value, is_bytes)
    return out


def parse_vmstat(text: str) -> dict[str, float]:
    """Parse /proc/vmstat (``pgfault 3166293`` lines) into name -> value."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                continue
    return out


@dataclass(frozen=True)
class DiskStats:
    """One /proc/diskstats line in node_exporter's units."""

    device: str
    reads_completed: float
    read_bytes: float
    read_time_seconds: float
    writes_completed: float
    written_bytes: float
    write_time_seconds: float
    io_time_seconds: float | None  # None where the platform does not count it (psutil on Windows, macOS)
    # The rest of /proc/diskstats in node_exporter's units ({} from psutil): reads_merged, writes_merged,
    # io_now, io_time_weighted_seconds; discards_* (kernel >= 4.18) and flush_* (>= 5.5) where the line has them.
    more: Mapping[str, float] = field(default_factory=dict)
    # "8", "0": the device numbers, which name its udev record (b8:0); "" from psutil.
    major: str = ""
    minor: str = ""


def parse_diskstats(text: str) -> Iterator[DiskStats]:
    """Parse /proc/diskstats (Documentation/admin-guide/iostats.rst).

    Columns after ``major minor name``: reads completed, reads merged, sectors read, ms reading, writes
    completed, writes merged, sectors written, ms writing, I/Os in progress, ms doing I/O, ...
    """
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 14:
            continue
        f = [float(x) for x in parts[3:]]
        more = {"reads_merged": f[1], "writes_merged": f[5], "io_now": f[8], "io_time_weighted_seconds": f[10] / 1000.0}
        if len(f) >= 15:
            more.update(discards_completed=f[11], discards_merged=f[12], discarded_sectors=f[13],
                        discard_time_seconds=f[14] / 1000.0)
        if len(f) >= 17:
            more.update(flush_requests=f[15], flush_requests_time_seconds=f[16] / 1000.0)
        yield DiskStats(
            device=parts[2],
            reads_completed=f[0],
            read_bytes=f[2] * SECTOR_BYTES,
            read_time_seconds=f[3] / 1000.0,
            writes_completed=f[4],
            written_bytes=f[6] * SECTOR_BYTES,
            write_time_seconds=f[7] / 1000.0,
            io_time_seconds=f[9] / 1000.0,
            more=more,
            major=parts[0],
            minor=parts[1],
        )


@dataclass(frozen=True)
class NetDevStats:
    device: str
    receive_bytes: float
    receive_packets: float
    receive_errs: float
    receive_drop: float
    transmit_bytes: float
    transmit_packets: float
    transmit_errs: float
    transmit_drop: float
    # receive_fifo, receive_frame, receive_compressed, receive_multicast, transmit_fifo, transmit_colls,
    # transmit_carrier, transmit_compressed ({} from psutil)
    more: Mapping[str, float] = field(default_factory=dict)


NETDEV_MORE = ("receive_fifo", "receive_frame", "receive_compressed", "receive_multicast", "transmit_fifo",
               "transmit_colls", "transmit_carrier", "transmit_compressed")


def parse_netdev(text: str) -> Iterator[NetDevStats]:
    """Parse /proc/net/dev; the two header lines have no ``:`` before the counters and are skipped."""
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        if not sep or "|" in rest:
            continue
        parts = rest.split()
        if len(parts) < 12:
            continue
        f = [float(x) for x in parts[:16]]
        yield NetDevStats(
            device=name.strip(),
            receive_bytes=f[0],
            receive_packets=f[1],
            receive_errs=f[2],
            receive_drop=f[3],
            transmit_bytes=f[8],
            transmit_packets=f[9],
            transmit_errs=f[10],
            transmit_drop=f[11],
            more=dict(zip(NETDEV_MORE, f[4:8] + f[12:16])),
        )


_TCP_LISTEN = "0A"


def _hex_address(text: str) -> str:
    # The kernel prints each 32-bit word of the address in host byte order, hence "=I" (native order).
    raw = b"".join(struct.pack("=I", int(text[i : i + 8], 16)) for i in range(0, len(text), 8))
    return str(ipaddress.ip_address(raw))


def parse_tcp_listeners(text: str) -> set[tuple[str, int]]:
    """The (address, port) pairs in LISTEN state in /proc/net/tcp or /proc/net/tcp6.

    On a little-endian host ``0100007F:1F90 ... 0A`` is 127.0.0.1 port 8080 listening.
    """
    out: set[tuple[str, int]] = set()
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 4 or parts[3] != _TCP_LISTEN:
            continue
        addr, _, port = parts[1].partition(":")
        try:
            out.add((_hex_address(addr), int(port, 16)))
        except ValueError:
            continue
    return out
