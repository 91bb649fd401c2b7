"""Host health with node_exporter's metric names, labels, types and meaning.

On Linux every value comes from one read of each /proc file per cycle (cheaper than psutil's per-call
overhead); elsewhere (Windows, macOS) psutil supplies what the platform has under the same names, and what it
lacks is simply not emitted. Filesystems are statted in worker threads with their own timeout: a dead
network mount is reported as ``node_filesystem_device_error 1`` and not retried while its old call hangs.

Sample::

    node_cpu_seconds_total{cpu="0",mode="idle"} 282.71
    node_load1 0.11
    node_memory_MemAvailable_bytes 24901316608
    node_memory_HugePages_Total 0
    node_vmstat_pgmajfault 900
    node_filesystem_avail_bytes{device="/dev/vda",fstype="ext4",mountpoint="/"} 3.1e10
    node_filesystem_device_error{device="nfs:/export",fstype="nfs4",mountpoint="/mnt/nfs"} 1
    node_disk_read_bytes_total{device="vda"} 1163113472
    node_network_receive_errs_total{device="eth0"} 0
    node_boot_time_seconds 1795781174
    node_timex_sync_status 1
    node_uname_info{sysname="Linux",release="6.1.0-27-amd64",version="#1 SMP",machine="x86_64",nodename="vm",
                    domainname="(none)"} 1
    node_os_info{id="debian",id_like="",name="Debian GNU/Linux",pretty_name="Debian GNU/Linux 12 (bookworm)",
                 version="12 (bookworm)",version_id="12",version_codename="bookworm"} 1
    node_os_version{id="debian",id_like="",name="Debian GNU/Linux"} 12

Differences from node_exporter, all deliberate: ``node_vmstat_*`` are typed gauge (node_exporter: untyped;
the catalogue knows gauge and counter only, and counters must end in ``_total``); ``node_os_info`` carries
the seven labels dashboards use rather than all twelve.
"""

from __future__ import annotations

import logging
import os
import platform
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector, CollectorOptions
from agent.collectors.health_report import HEALTH_TITLE, health_section
from agent.compat import Literal
from agent.platform import linux_proc
from agent.platform.mounts import (
    FS_TYPES_EXCLUDE,
    MOUNT_POINTS_EXCLUDE,
    BoundedStatfs,
    FsUsage,
    Mount,
    StatvfsResult,
    parse_mounts,
    select_mounts,
    statvfs_usage,
)
from agent.platform.os_release import parse_os_release
from agent.platform.timex import TimexReading, read_timex
from agent.platform.udev import block_device_properties
from agent.report import Section

if TYPE_CHECKING:
    from typing import TypeAlias  # Python 3.10+; aliases are strings so that 3.6-3.8 never evaluate them

__all__ = ["HealthCollector", "HealthOptions", "MEMINFO_FIELDS", "VMSTAT_FIELDS"]

log = logging.getLogger(__name__)

# udev properties of ATA disks exported as numbers by node_exporter's diskstats: metric -> (property, help)
_ATA = {
    "node_disk_ata_write_cache": ("ID_ATA_WRITE_CACHE", "ATA disk has a write cache."),
    "node_disk_ata_write_cache_enabled": ("ID_ATA_WRITE_CACHE_ENABLED", "ATA disk has its write cache enabled."),
    "node_disk_ata_rotation_rate_rpm": ("ID_ATA_ROTATION_RATE_RPM", "ATA disk rotation rate in RPMs (0 for SSDs)."),
}
# node_exporter's default (collector/diskstats_linux.go): partitions and virtual devices are left out.
DISK_DEVICES_EXCLUDE = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$"

# Every /proc/meminfo field in kB the kernel writes (Documentation/filesystems/proc.rst, fs/proc/meminfo.c and
# the arch hooks: DirectMap*, Balloon), as node_exporter exports them: node_memory_<Field>_bytes, with
# "Active(anon)" written Active_anon. The unit-less HugePages_* counts keep their names.
MEMINFO_FIELDS = (
    "MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapCached", "Active", "Inactive",
    "Active_anon", "Inactive_anon", "Active_file", "Inactive_file", "Unevictable", "Mlocked", "HighTotal",
    "HighFree", "LowTotal", "LowFree", "MmapCopy", "SwapTotal", "SwapFree", "Zswap", "Zswapped", "Dirty",
    "Writeback", "AnonPages", "Mapped", "Shmem", "KReclaimable", "Slab", "SReclaimable", "SUnreclaim",
    "KernelStack", "ShadowCallStack", "PageTables", "SecPageTables", "NFS_Unstable", "Bounce", "WritebackTmp",
    "CommitLimit", "Committed_AS", "VmallocTotal", "VmallocUsed", "VmallocChunk", "Percpu", "EarlyMemtestBad",
    "HardwareCorrupted", "AnonHugePages", "ShmemHugePages", "ShmemPmdMapped", "FileHugePages", "FilePmdMapped",
    "CmaTotal", "CmaFree", "Unaccepted", "Hugepagesize", "Hugetlb", "DirectMap4k", "DirectMap2M", "DirectMap4M",
    "DirectMap1G", "Balloon", "Quicklists",
)  # fmt: skip
HUGEPAGES_COUNTS = ("HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp")
# node_exporter's default --collector.vmstat.fields: ^(oom_kill|pgpg|pswp|pg.*fault).*
VMSTAT_FIELDS = ("oom_kill", "pgpgin", "pgpgout", "pswpin", "pswpout", "pgfault", "pgmajfault")
_FS_LABELS = ("device", "fstype", "mountpoint")
_OS_INFO_KEYS = {
    "id": "ID",
    "id_like": "ID_LIKE",
    "name": "NAME",
    "pretty_name": "PRETTY_NAME",
    "version": "VERSION",
    "version_id": "VERSION_ID",
    "version_codename": "VERSION_CODENAME",
}
_VERSION_RE = re.compile(r"^[0-9]+\.?[0-9]*")  # node_exporter's os collector: the major.minor of VERSION_ID


# DiskStats.more key -> (metric, type, node_exporter's help, unit)
_DISK_MORE: tuple[tuple[str, str, Literal["gauge", "counter"], str, str], ...] = (
    ("reads_merged", "node_disk_reads_merged_total", "counter", "The total number of reads merged.", ""),
    ("writes_merged", "node_disk_writes_merged_total", "counter", "The number of writes merged.", ""),
    ("io_now", "node_disk_io_now", "gauge", "The number of I/Os currently in progress.", ""),
    ("io_time_weighted_seconds", "node_disk_io_time_weighted_seconds_total", "counter",
     "The weighted # of seconds spent doing I/Os.", "seconds"),
    ("discards_completed", "node_disk_discards_completed_total", "counter",
     "The total number of discards completed successfully.", ""),
    ("discards_merged", "node_disk_discards_merged_total", "counter", "The total number of discards merged.", ""),
    ("discarded_sectors", "node_disk_discarded_sectors_total", "counter",
     "The total number of sectors discarded successfully.", ""),
    ("discard_time_seconds", "node_disk_discard_time_seconds_total", "counter",
     "This is the total number of seconds spent by all discards.", "seconds"),
    ("flush_requests", "node_disk_flush_requests_total", "counter",
     "The total number of flush requests completed successfully", ""),
    ("flush_requests_time_seconds", "node_disk_flush_requests_time_seconds_total", "counter",
     "This is the total number of seconds spent by all flush requests.", "seconds"),
)  # fmt: skip


# TimexReading.more key (the metric's suffix), type, node_exporter's help (collector/timex.go)
_TIMEX_MORE: tuple[tuple[str, Literal["gauge", "counter"], str], ...] = (
    ("frequency_adjustment_ratio", "gauge", "Local clock frequency adjustment."),
    ("estimated_error_seconds", "gauge", "Estimated error in seconds."),
    ("status", "gauge", "Value of the status array bits."),
    ("loop_time_constant", "gauge", "Phase-locked loop time constant."),
    ("tick_seconds", "gauge", "Seconds between clock ticks."),
    ("pps_frequency_hertz", "gauge", "Pulse per second frequency."),
    ("pps_jitter_seconds", "gauge", "Pulse per second jitter."),
    ("pps_shift_seconds", "gauge", "Pulse per second interval duration."),
    ("pps_stability_hertz", "gauge", "Pulse per second stability, average of recent frequency changes."),
    ("pps_jitter_total", "counter", "Pulse per second count of jitter limit exceeded events."),
    ("pps_calibration_total", "counter", "Pulse per second count of calibration intervals."),
    ("pps_error_total", "counter", "Pulse per second count of calibration errors."),
    ("pps_stability_exceeded_total", "counter", "Pulse per second count of stability limit exceeded events."),
    ("tai_offset_seconds", "gauge", "International Atomic Time (TAI) offset."),
)


def _specs() -> tuple[MetricSpec, ...]:
    g: Literal["gauge"] = "gauge"
    c: Literal["counter"] = "counter"
    specs: list[MetricSpec] = [
        MetricSpec("node_cpu_seconds_total", c, "Seconds the CPUs spent in each mode.", ("cpu", "mode"), "seconds"),
        MetricSpec("node_load1", g, "1m load average."),
        MetricSpec("node_load5", g, "5m load average."),
        MetricSpec("node_load15", g, "15m load average."),
    ]
    for name in MEMINFO_FIELDS:
        specs.append(MetricSpec(f"node_memory_{name}_bytes", g, f"Memory information field {name}_bytes.", (), "bytes"))
    for name in HUGEPAGES_COUNTS:
        specs.append(MetricSpec(f"node_memory_{name}", g, f"Memory information field {name}."))
    for name in VMSTAT_FIELDS:
        specs.append(MetricSpec(f"node_vmstat_{name}", g, f"/proc/vmstat information field {name}."))
    fs = _FS_LABELS
    specs += [
        MetricSpec("node_filesystem_size_bytes", g, "Filesystem size in bytes.", fs, "bytes"),
        MetricSpec("node_filesystem_free_bytes", g, "Filesystem free space in bytes.", fs, "bytes"),
        MetricSpec(
            "node_filesystem_avail_bytes", g, "Filesystem space available to non-root users in bytes.", fs, "bytes"
        ),
        MetricSpec("node_filesystem_files", g, "Filesystem total file nodes.", fs),
        MetricSpec("node_filesystem_files_free", g, "Filesystem total free file nodes.", fs),
        MetricSpec("node_filesystem_readonly", g, "Filesystem read-only status.", fs),
        MetricSpec(
            "node_filesystem_device_error",
            g,
            "Whether an error (or a timeout: a hung mount) occurred while getting statistics for the device.",
            fs,
        ),
        MetricSpec(
            "node_disk_reads_completed_total", c, "The total number of reads completed successfully.", ("device",)
        ),
        MetricSpec(
            "node_disk_writes_completed_total", c, "The total number of writes completed successfully.", ("device",)
        ),
        MetricSpec(
            "node_disk_read_bytes_total", c, "The total number of bytes read successfully.", ("device",), "bytes"
        ),
        MetricSpec(
            "node_disk_written_bytes_total", c, "The total number of bytes written successfully.", ("device",), "bytes"
        ),
        MetricSpec(
            "node_disk_read_time_seconds_total",
            c,
            "The total number of seconds spent by all reads.",
            ("device",),
            "seconds",
        ),
        MetricSpec(
            "node_disk_write_time_seconds_total",
            c,
            "This is the total number of seconds spent by all writes.",
            ("device",),
            "seconds",
        ),
        MetricSpec("node_disk_io_time_seconds_total", c, "Total seconds spent doing I/Os.", ("device",), "seconds"),
    ]
    specs += [MetricSpec(name, typ, text, ("device",), unit) for _, name, typ, text, unit in _DISK_MORE]
    specs += [
        MetricSpec("node_disk_info", g, "Info of /sys/block/<block_device>.",
                   ("device", "major", "minor", "path", "wwn", "model", "serial", "revision")),
        MetricSpec("node_disk_filesystem_info", g, "Info about disk filesystem.",
                   ("device", "type", "usage", "uuid", "version")),
        MetricSpec("node_disk_device_mapper_info", g, "Info about disk device mapper.",
                   ("device", "name", "uuid", "vg_name", "lv_name", "lv_layer")),
        *(MetricSpec(name, g, text, ("device",)) for name, (_, text) in _ATA.items()),
    ]
    for direction in ("receive", "transmit"):
        more = ("fifo", "frame", "compressed", "multicast") if direction == "receive" else (
            "fifo", "colls", "carrier", "compressed")
        for what, unit in (("bytes", "bytes"), ("packets", ""), ("errs", ""), ("drop", ""), *((m, "") for m in more)):
            specs.append(
                MetricSpec(
                    f"node_network_{direction}_{what}_total",
                    c,
                    f"Network device statistic {direction}_{what}.",
                    ("device",),
                    unit,
                )
            )
    specs += [
        MetricSpec("node_boot_time_seconds", g, "Node boot time, in unixtime.", (), "seconds"),
        MetricSpec("node_context_switches_total", c, "Total number of context switches."),
        MetricSpec("node_intr_total", c, "Total number of interrupts serviced."),
        MetricSpec("node_procs_running", g, "Number of processes in runnable state."),
        MetricSpec("node_procs_blocked", g, "Number of processes blocked waiting for I/O to complete."),
        MetricSpec("node_forks_total", c, "Total number of forks."),
        MetricSpec("node_time_seconds", g, "System time in seconds since epoch (1970).", (), "seconds"),
        MetricSpec("node_timex_offset_seconds", g, "Time offset in between local system and reference clock.", (),
                   "seconds"),
        MetricSpec("node_timex_sync_status", g, "Is clock synchronized to a reliable server (1 = yes, 0 = no)."),
        MetricSpec("node_timex_maxerror_seconds", g, "Maximum error in seconds.", (), "seconds"),
        *(MetricSpec(f"node_timex_{key}", typ, text) for key, typ, text in _TIMEX_MORE),
        MetricSpec("node_uname_info", g, "Labeled system information as provided by the uname system call.",
                   ("sysname", "release", "version", "machine", "nodename", "domainname")),
        MetricSpec("node_os_info", g, "A metric with a constant '1' value labeled by os-release fields.",
                   tuple(_OS_INFO_KEYS)),
        MetricSpec("node_os_version", g, "Metric containing the major.minor part of the OS version.",
                   ("id", "id_like", "name")),
    ]  # fmt: skip
    return tuple(specs)


@dataclass
class HealthOptions(CollectorOptions):
    """``collectors.health`` in agent.yml; the regexes default to node_exporter's."""

    mount_timeout: float = field(default=2.0, metadata={"duration": True, "min": 0.1})
    mount_points_exclude: str = MOUNT_POINTS_EXCLUDE
    fs_types_exclude: str = FS_TYPES_EXCLUDE
    disk_devices_exclude: str = DISK_DEVICES_EXCLUDE
    # udev's database, for node_disk_info (model, serial, WWN), filesystem and device-mapper info (as
    # node_exporter's --path.udev.data); where it is missing the disks are reported with empty labels.
    udev_data_path: str = "/run/udev/data"

    def problems(self) -> list[tuple[str, str]]:
        out = []
        for key in ("mount_points_exclude", "fs_types_exclude", "disk_devices_exclude"):
            try:
                re.compile(getattr(self, key))
            except re.error as exc:
                out.append((key, f"不是有效的正则表达式 invalid regular expression: {exc}"))
        return out


UnameFn: TypeAlias = "Callable[[], Sequence[str]]"


class HealthCollector(Collector):
    """CPU, load, memory, filesystems, disk and network IO, boot time, clock, uname and os-release."""

    name = "health"
    title = HEALTH_TITLE
    options_class = HealthOptions
    default_interval = 15.0
    default_timeout = 10.0
    metrics = _specs()

    def __init__(
        self,
        options: HealthOptions,
        context: AgentContext,
        *,
        proc_root: str = "/proc",
        os_release_paths: Sequence[str] = ("/etc/os-release", "/usr/lib/os-release"),
        statvfs: Callable[[str], StatvfsResult] | None = None,
        timex: Callable[[], TimexReading | None] = read_timex,
        uname: UnameFn | None = None,
        use_procfs: bool | None = None,
    ) -> None:
        super().__init__(options, context)
        self.options: HealthOptions = options
        self._proc = Path(proc_root)
        self._os_release_paths = tuple(os_release_paths)
        self._timex = timex
        self._uname = uname or _default_uname
        self._use_procfs = (self._proc / "stat").is_file() if use_procfs is None else use_procfs
        statfs: Callable[[str], FsUsage]
        if statvfs is not None:
            given = statvfs
            statfs = lambda path: FsUsage.from_statvfs(given(path))  # noqa: E731
        else:
            statfs = statvfs_usage
        self._statfs = BoundedStatfs(statfs, options.mount_timeout)
        self._mount_points_exclude = re.compile(options.mount_points_exclude)
        self._fs_types_exclude = re.compile(options.fs_types_exclude)
        self._disk_exclude = re.compile(options.disk_devices_exclude)
        self._udev = Path(options.udev_data_path)
        self._hz = linux_proc.user_hz()
        self._os_cache: tuple[str, float, dict[str, str]] | None = None
        self._warned: set[str] = set()

    # -- helpers -------------------------------------------------------------------------------------------

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    def _read(self, rel: str) -> str | None:
        try:
            with open(self._proc / rel, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError as exc:
            self._warn_once(rel, "cannot read %s: %s; its metrics are left out", self._proc / rel, exc)
            return None

    # -- collect -------------------------------------------------------------------------------------------

    def collect(self, out: MetricSet) -> None:
        if self._use_procfs:
            self._collect_procfs(out)
        else:
            self._collect_psutil(out)
        # node_time_seconds is appended when the page is served (ExpositionCache.page), not here.
        self._collect_timex(out)
        self._collect_uname(out)
        self._collect_os_release(out)

    def _collect_procfs(self, out: MetricSet) -> None:
        text = self._read("stat")
        if text is not None:
            st = linux_proc.parse_stat(text, self._hz)
            self._add_cpu(out, st.cpu_seconds)
            for name, value in (
                ("node_boot_time_seconds", st.boot_time),
                ("node_context_switches_total", st.context_switches),
                ("node_intr_total", st.interrupts),
                ("node_procs_running", st.procs_running),
                ("node_procs_blocked", st.procs_blocked),
                ("node_forks_total", st.forks),
            ):
                if value is not None:
                    out.add(name, value)
        text = self._read("loadavg")
        if text is not None:
            self._add_load(out, linux_proc.parse_loadavg(text))
        text = self._read("meminfo")
        if text is not None:
            mem = linux_proc.parse_meminfo(text)
            self._add_memory(out, {name: value for name, (value, _) in mem.items()})
            for name in HUGEPAGES_COUNTS:
                if name in mem:
                    out.add(f"node_memory_{name}", mem[name][0])
        text = self._read("vmstat")
        if text is not None:
            vm = linux_proc.parse_vmstat(text)
            for name in VMSTAT_FIELDS:
                if name in vm:
                    out.add(f"node_vmstat_{name}", vm[name])
        # PID 1's view is the host's, as node_exporter reads it; /proc/mounts if hidepid hides PID 1.
        text = self._read_quiet("1/mounts")
        if text is None:
            text = self._read("mounts")
        if text is not None:
            self._add_filesystems(out, list(parse_mounts(text)))
        text = self._read("diskstats")
        if text is not None:
            self._add_disks(out, linux_proc.parse_diskstats(text))
        text = self._read("net/dev")
        if text is not None:
            self._add_netdev(out, linux_proc.parse_netdev(text))

    def _collect_psutil(self, out: MetricSet) -> None:
        """The same names from psutil where /proc is absent (Windows, macOS, BSD)."""
        from agent.platform import psutil_host

        self._add_cpu(out, psutil_host.cpu_seconds())
        load = psutil_host.loadavg()
        if load is not None:
            self._add_load(out, load)
        self._add_memory(out, psutil_host.memory())
        boot = psutil_host.boot_time()
        if boot is not None:
            out.add("node_boot_time_seconds", boot)
        self._add_filesystems(out, psutil_host.mounts())
        self._add_disks(out, psutil_host.diskstats())
        self._add_netdev(out, psutil_host.netdev())

    def _read_quiet(self, rel: str) -> str | None:
        try:
            with open(self._proc / rel, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError:
            return None

    # -- emitters shared by both sources ---------------------------------------------------------------------

    @staticmethod
    def _add_cpu(out: MetricSet, cpus: Mapping[str, Mapping[str, float]]) -> None:
        for cpu, modes in cpus.items():
            for mode, seconds in modes.items():
                out.add("node_cpu_seconds_total", seconds, {"cpu": cpu, "mode": mode})

    @staticmethod
    def _add_load(out: MetricSet, load: tuple[float, float, float]) -> None:
        out.add("node_load1", load[0])
        out.add("node_load5", load[1])
        out.add("node_load15", load[2])

    @staticmethod
    def _add_memory(out: MetricSet, mem: Mapping[str, float]) -> None:
        for name in MEMINFO_FIELDS:
            if name in mem:
                out.add(f"node_memory_{name}_bytes", mem[name])

    def _add_disks(self, out: MetricSet, disks: Iterable[linux_proc.DiskStats]) -> None:
        for d in disks:
            if self._disk_exclude.search(d.device):
                continue
            labels = {"device": d.device}
            out.add("node_disk_reads_completed_total", d.reads_completed, labels)
            out.add("node_disk_read_bytes_total", d.read_bytes, labels)
            out.add("node_disk_read_time_seconds_total", d.read_time_seconds, labels)
            out.add("node_disk_writes_completed_total", d.writes_completed, labels)
            out.add("node_disk_written_bytes_total", d.written_bytes, labels)
            out.add("node_disk_write_time_seconds_total", d.write_time_seconds, labels)
            if d.io_time_seconds is not None:
                out.add("node_disk_io_time_seconds_total", d.io_time_seconds, labels)
            for key, name, *_ in _DISK_MORE:
                if key in d.more:
                    out.add(name, d.more[key], labels)
            if d.major:
                self._add_disk_info(out, d)

    def _add_disk_info(self, out: MetricSet, d: linux_proc.DiskStats) -> None:
        info = block_device_properties(self._udev, d.major, d.minor)
        dev = d.device
        out.add("node_disk_info", 1, {"device": dev, "major": d.major, "minor": d.minor,
                                      "path": info.get("ID_PATH", ""), "wwn": info.get("ID_WWN", ""),
                                      "model": info.get("ID_MODEL", ""), "serial": info.get("ID_SERIAL_SHORT", ""),
                                      "revision": info.get("ID_REVISION", "")})
        if info.get("ID_FS_TYPE"):
            out.add("node_disk_filesystem_info", 1, {"device": dev, "type": info["ID_FS_TYPE"],
                                                     "usage": info.get("ID_FS_USAGE", ""),
                                                     "uuid": info.get("ID_FS_UUID", ""),
                                                     "version": info.get("ID_FS_VERSION", "")})
        if info.get("DM_NAME"):
            out.add("node_disk_device_mapper_info", 1, {"device": dev, "name": info["DM_NAME"],
                                                        "uuid": info.get("DM_UUID", ""),
                                                        "vg_name": info.get("DM_VG_NAME", ""),
                                                        "lv_name": info.get("DM_LV_NAME", ""),
                                                        "lv_layer": info.get("DM_LV_LAYER", "")})
        if info.get("ID_ATA"):
            for name, (prop, _) in _ATA.items():
                try:
                    out.add(name, float(info[prop]), {"device": dev})
                except (KeyError, ValueError):
                    continue  # not given, or not a number: no value, never 0

    @staticmethod
    def _add_netdev(out: MetricSet, devices: Iterable[linux_proc.NetDevStats]) -> None:
        for n in devices:
            labels = {"device": n.device}
            out.add("node_network_receive_bytes_total", n.receive_bytes, labels)
            out.add("node_network_receive_packets_total", n.receive_packets, labels)
            out.add("node_network_receive_errs_total", n.receive_errs, labels)
            out.add("node_network_receive_drop_total", n.receive_drop, labels)
            out.add("node_network_transmit_bytes_total", n.transmit_bytes, labels)
            out.add("node_network_transmit_packets_total", n.transmit_packets, labels)
            out.add("node_network_transmit_errs_total", n.transmit_errs, labels)
            out.add("node_network_transmit_drop_total", n.transmit_drop, labels)
            for key, value in n.more.items():
                out.add(f"node_network_{key}_total", value, labels)

    def _add_filesystems(self, out: MetricSet, mounts: list[Mount]) -> None:
        selected = select_mounts(mounts, self._mount_points_exclude, self._fs_types_exclude)
        results = self._statfs.stat_all(sorted({m.mountpoint for m in selected}))
        for m in selected:
            labels = {"device": m.device, "fstype": m.fstype, "mountpoint": m.mountpoint}
            res = results.get(m.mountpoint)
            out.add("node_filesystem_readonly", 1.0 if m.readonly else 0.0, labels)
            if not isinstance(res, FsUsage):
                out.add("node_filesystem_device_error", 1.0, labels)
                continue
            out.add("node_filesystem_device_error", 0.0, labels)
            out.add("node_filesystem_size_bytes", res.size, labels)
            out.add("node_filesystem_free_bytes", res.free, labels)
            out.add("node_filesystem_avail_bytes", res.avail, labels)
            if res.files is not None and res.files_free is not None:
                out.add("node_filesystem_files", res.files, labels)
                out.add("node_filesystem_files_free", res.files_free, labels)

    def report(self) -> Section | None:
        return health_section(self.last_metrics) if self.last_metrics is not None else None

    def _collect_timex(self, out: MetricSet) -> None:
        try:
            reading = self._timex()
        except OSError as exc:
            self._warn_once("timex", "adjtimex unavailable: %s", exc)
            return
        if reading is None:
            return
        out.add("node_timex_offset_seconds", reading.offset_seconds)
        out.add("node_timex_sync_status", reading.sync_status)
        out.add("node_timex_maxerror_seconds", reading.maxerror_seconds)
        for key, value in reading.more.items():
            out.add(f"node_timex_{key}", value)

    def _collect_uname(self, out: MetricSet) -> None:
        sysname, nodename, release, version, machine = (str(x) for x in tuple(self._uname())[:5])
        domainname = ""
        if self._use_procfs:
            domainname = (self._read_quiet("sys/kernel/domainname") or "").strip()
        out.add(
            "node_uname_info",
            1,
            {
                "sysname": sysname,
                "release": release,
                "version": version,
                "machine": machine,
                "nodename": nodename,
                "domainname": domainname,
            },
        )

    def _os_release(self) -> dict[str, str] | None:
        for path in self._os_release_paths:
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                continue
            if self._os_cache is not None and self._os_cache[0] == path and self._os_cache[1] == mtime:
                return self._os_cache[2]
            try:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    fields = parse_os_release(fh.read())
            except OSError as exc:
                self._warn_once("os-release", "cannot read %s: %s", path, exc)
                continue
            self._os_cache = (path, mtime, fields)
            return fields
        return None

    def _collect_os_release(self, out: MetricSet) -> None:
        fields = self._os_release()
        if fields is None:
            return
        info = {label: fields.get(key, "") for label, key in _OS_INFO_KEYS.items()}
        out.add("node_os_info", 1, info)
        match = _VERSION_RE.match(info["version_id"])
        version = float(match.group(0)) if match else 0.0
        # node_exporter omits the series when VERSION_ID has no leading number (rolling releases).
        if version > 0:
            out.add("node_os_version", version, {k: info[k] for k in ("id", "id_like", "name")})


def _default_uname() -> Sequence[str]:
    if hasattr(os, "uname"):
        return tuple(os.uname())
    u = platform.uname()
    return (u.system, u.node, u.release, u.version, u.machine)
