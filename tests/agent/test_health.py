"""The health collector against captured /proc files, a hanging mount, and the real host."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent.catalog import MetricSet
from agent.collector import AgentContext
from agent.collectors.health import HealthCollector, HealthOptions
from agent.platform import linux_proc
from agent.platform.timex import TimexReading, read_timex
from tests.agent.scan_helpers import run_once

PROC = Path(__file__).parent / "fixtures" / "proc"


def fake_statvfs(path: str) -> Any:
    if path == "/mnt/nfs":
        raise OSError(5, "Input/output error")
    return SimpleNamespace(f_frsize=4096, f_blocks=1000, f_bfree=600, f_bavail=500, f_files=100, f_ffree=40)


def make(
    tmp_path: Path,
    *,
    statvfs: Callable[[str], Any] = fake_statvfs,
    options: HealthOptions | None = None,
    os_release_paths: tuple[str, ...] = (str(PROC / "os-release"),),
    timex: Callable[[], TimexReading | None] = lambda: TimexReading(0.0012, 1.0, 0.016),
) -> HealthCollector:
    return HealthCollector(
        options or HealthOptions(),
        AgentContext(state_dir=tmp_path, clock=lambda: 1_800_000_000.5),
        proc_root=str(PROC),
        os_release_paths=os_release_paths,
        statvfs=statvfs,
        timex=timex,
        uname=lambda: ("Linux", "vm", "6.18.44", "#1 SMP PREEMPT_DYNAMIC", "x86_64"),
        use_procfs=True,
    )


def run(collector: HealthCollector) -> MetricSet:
    out = collector.new_metric_set()
    collector.collect(out)
    return out


def fs(mountpoint: str, device: str, fstype: str) -> dict[str, str]:
    return {"device": device, "fstype": fstype, "mountpoint": mountpoint}


def test_cpu_load_memory_vmstat_stat_from_fixture(tmp_path: Path) -> None:
    out = run(make(tmp_path))
    hz = linux_proc.user_hz()
    # cpu0 1803 0 1030 40244 21 0 8 2 0 0
    assert out.get("node_cpu_seconds_total", {"cpu": "0", "mode": "user"}) == pytest.approx(1803 / hz)
    assert out.get("node_cpu_seconds_total", {"cpu": "0", "mode": "idle"}) == pytest.approx(40244 / hz)
    assert out.get("node_cpu_seconds_total", {"cpu": "1", "mode": "steal"}) is not None
    modes = {dict(s.labels)["mode"] for s in out.samples("node_cpu_seconds_total")}
    assert modes == {"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}
    # The aggregate "cpu" line is not a CPU.
    assert {dict(s.labels)["cpu"] for s in out.samples("node_cpu_seconds_total")} == {"0", "1"}
    load = (PROC / "loadavg").read_text().split()
    assert out.get("node_load1") == float(load[0])
    assert out.get("node_load15") == float(load[2])
    assert out.get("node_memory_MemTotal_bytes") == 24684084 * 1024
    assert out.get("node_memory_Committed_AS_bytes") == 62884 * 1024
    assert out.get("node_memory_HugePages_Total") == 0
    assert out.get("node_vmstat_pgmajfault") is not None
    assert out.get("node_context_switches_total") == 429708
    assert out.get("node_intr_total") == 205232
    assert out.get("node_boot_time_seconds") == 1795781174
    assert out.get("node_procs_running") is not None
    assert out.get("node_time_seconds") is None  # appended at serve time (tests/agent/test_exporter.py)


def test_filesystems_follow_node_exporter_excludes(tmp_path: Path) -> None:
    out = run(make(tmp_path))
    mountpoints = {dict(s.labels)["mountpoint"] for s in out.samples("node_filesystem_readonly")}
    # /proc, /sys, /dev/*, cgroup2, docker overlay and squashfs are excluded; tmpfs and NFS are not.
    assert mountpoints == {"/", "/run", "/srv/my data", "/mnt/nfs"}
    root = fs("/", "/dev/vda", "ext4")
    assert out.get("node_filesystem_size_bytes", root) == 4096 * 1000
    assert out.get("node_filesystem_free_bytes", root) == 4096 * 600
    assert out.get("node_filesystem_avail_bytes", root) == 4096 * 500
    assert out.get("node_filesystem_files", root) == 100
    assert out.get("node_filesystem_files_free", root) == 40
    assert out.get("node_filesystem_readonly", root) == 0
    assert out.get("node_filesystem_device_error", root) == 0
    assert len(out.samples("node_filesystem_size_bytes")) == 3  # the duplicate root line is reported once
    assert out.get("node_filesystem_readonly", fs("/srv/my data", "/dev/vdb1", "xfs")) == 1
    nfs = fs("/mnt/nfs", "10.0.0.5:/export", "nfs4")
    assert out.get("node_filesystem_device_error", nfs) == 1
    assert out.get("node_filesystem_size_bytes", nfs) is None


def test_operator_excludes_apply(tmp_path: Path) -> None:
    opts = HealthOptions(mount_points_exclude="^/(run|srv|mnt)($|/)", disk_devices_exclude="^nvme")
    out = run(make(tmp_path, options=opts))
    # The operator's regex replaces the default one, so /dev/shm (tmpfs) now counts.
    assert {dict(s.labels)["mountpoint"] for s in out.samples("node_filesystem_readonly")} == {"/", "/dev/shm"}
    assert {dict(s.labels)["device"] for s in out.samples("node_disk_reads_completed_total")} == {
        "vda",
        "vda1",
        "zram0",
    } | {f"loop{i}" for i in range(8)}


def test_bad_regex_is_a_config_problem() -> None:
    problems = HealthOptions(fs_types_exclude="^(nfs").problems()
    assert [key for key, _ in problems] == ["fs_types_exclude"]


def test_diskstats_units_and_default_device_exclude(tmp_path: Path) -> None:
    out = run(make(tmp_path))
    devices = {dict(s.labels)["device"] for s in out.samples("node_disk_read_bytes_total")}
    assert devices == {"vda", "nvme0n1"}  # partitions, loop and zram excluded
    line = next(ln.split() for ln in (PROC / "diskstats").read_text().splitlines() if ln.split()[2] == "vda")
    vda = {"device": "vda"}
    assert out.get("node_disk_reads_completed_total", vda) == int(line[3])
    assert out.get("node_disk_read_bytes_total", vda) == int(line[5]) * 512
    assert out.get("node_disk_read_time_seconds_total", vda) == pytest.approx(int(line[6]) / 1000)
    assert out.get("node_disk_writes_completed_total", vda) == int(line[7])
    assert out.get("node_disk_written_bytes_total", vda) == int(line[9]) * 512
    assert out.get("node_disk_write_time_seconds_total", vda) == pytest.approx(int(line[10]) / 1000)
    assert out.get("node_disk_io_time_seconds_total", vda) == pytest.approx(int(line[12]) / 1000)
    assert out.get("node_disk_written_bytes_total", {"device": "nvme0n1"}) == 400 * 512


def test_network_devices(tmp_path: Path) -> None:
    out = run(make(tmp_path))
    devices = {dict(s.labels)["device"] for s in out.samples("node_network_receive_bytes_total")}
    assert devices == {"lo", "ifb0", "ifb1", "eth0"}
    eth0 = next(ln.split(":")[1].split() for ln in (PROC / "net" / "dev").read_text().splitlines() if "eth0:" in ln)
    assert out.get("node_network_receive_bytes_total", {"device": "eth0"}) == int(eth0[0])
    assert out.get("node_network_transmit_packets_total", {"device": "eth0"}) == int(eth0[9])
    assert out.get("node_network_receive_drop_total", {"device": "eth0"}) == int(eth0[3])
    assert out.get("node_network_transmit_errs_total", {"device": "eth0"}) == int(eth0[10])


def test_uname_os_release_and_timex(tmp_path: Path) -> None:
    out = run(make(tmp_path))
    assert (
        out.get(
            "node_uname_info",
            {
                "sysname": "Linux",
                "release": "6.18.44",
                "version": "#1 SMP PREEMPT_DYNAMIC",
                "machine": "x86_64",
                "nodename": "vm",
                "domainname": "(none)",
            },
        )
        == 1
    )
    info = {
        "id": "debian",
        "id_like": "",
        "name": "Debian GNU/Linux",
        "pretty_name": "Debian GNU/Linux 12 (bookworm)",
        "version": "12 (bookworm)",
        "version_id": "12",
        "version_codename": "bookworm",
    }
    assert out.get("node_os_info", info) == 1
    assert out.get("node_os_version", {"id": "debian", "id_like": "", "name": "Debian GNU/Linux"}) == 12
    assert out.get("node_timex_offset_seconds") == 0.0012
    assert out.get("node_timex_sync_status") == 1
    assert out.get("node_timex_maxerror_seconds") == 0.016


def test_os_release_fallback_and_rolling_release(tmp_path: Path) -> None:
    usr_lib = tmp_path / "usr-lib-os-release"
    usr_lib.write_text('NAME="Arch Linux"\nID=arch\nID_LIKE="archlinux \\"x\\""\nBUILD_ID=rolling\n')
    c = make(tmp_path, os_release_paths=(str(tmp_path / "missing"), str(usr_lib)), timex=lambda: None)
    out = run(c)
    [sample] = out.samples("node_os_info")
    labels = dict(sample.labels)
    assert labels["id"] == "arch" and labels["id_like"] == 'archlinux "x"' and labels["version_id"] == ""
    assert out.samples("node_os_version") == []  # no numeric VERSION_ID: node_exporter omits it
    assert out.get("node_timex_sync_status") is None  # adjtimex unavailable: left out, no failure
    # Cached by mtime: a changed file is re-read.
    usr_lib.write_text('NAME="Rocky Linux"\nID=rocky\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\n')
    os.utime(usr_lib, (time.time() + 5, time.time() + 5))
    out = run(c)
    assert out.get("node_os_version", {"id": "rocky", "id_like": "rhel centos fedora", "name": "Rocky Linux"}) == 9.3
    # No os-release at all: the series is absent, the collector still succeeds.
    out = run(make(tmp_path, os_release_paths=(str(tmp_path / "missing"),)))
    assert out.samples("node_os_info") == []


def test_hanging_mount_is_skipped_reported_and_not_retried(tmp_path: Path) -> None:
    release = threading.Event()
    calls: dict[str, int] = {}

    def statvfs(path: str) -> Any:
        calls[path] = calls.get(path, 0) + 1
        if path == "/mnt/nfs":
            release.wait(30)  # a dead NFS server: statfs blocks in the kernel
        return SimpleNamespace(f_frsize=4096, f_blocks=10, f_bfree=5, f_bavail=5, f_files=10, f_ffree=5)

    c = make(tmp_path, statvfs=statvfs, options=HealthOptions(mount_timeout=0.3))
    nfs = fs("/mnt/nfs", "10.0.0.5:/export", "nfs4")
    try:
        started = time.monotonic()
        out = run(c)
        assert time.monotonic() - started < 2.0
        assert out.get("node_filesystem_device_error", nfs) == 1
        assert out.get("node_filesystem_size_bytes", nfs) is None
        assert out.get("node_filesystem_size_bytes", fs("/", "/dev/vda", "ext4")) == 40960

        # Still stuck: skipped at once, no second thread piles up behind the first.
        started = time.monotonic()
        out = run(c)
        assert time.monotonic() - started < 0.25
        assert calls["/mnt/nfs"] == 1 and calls["/"] == 2
        assert out.get("node_filesystem_device_error", nfs) == 1
    finally:
        release.set()
    # The old call returned: the mount is statted again and reported normally.
    deadline = time.monotonic() + 5
    while c._statfs.stuck() and time.monotonic() < deadline:
        out = run(c)
        if out.get("node_filesystem_device_error", nfs) == 0:
            break
        time.sleep(0.05)
    out = run(c)
    assert out.get("node_filesystem_device_error", nfs) == 0
    assert out.get("node_filesystem_size_bytes", nfs) == 40960
    assert calls["/mnt/nfs"] >= 2


def test_missing_proc_files_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text("cpu0 1 2 3 4 5 6 7 8 0 0\n")
    c = HealthCollector(
        HealthOptions(),
        AgentContext(state_dir=tmp_path),
        proc_root=str(tmp_path),
        os_release_paths=(),
        statvfs=fake_statvfs,
        timex=lambda: None,
    )
    out = run(c)
    assert out.get("node_cpu_seconds_total", {"cpu": "0", "mode": "steal"}) == pytest.approx(8 / linux_proc.user_hz())
    assert out.get("node_load1") is None and out.samples("node_filesystem_size_bytes") == []


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="needs Linux /proc")
def test_real_host_procfs(tmp_path: Path) -> None:
    c = HealthCollector(HealthOptions(), AgentContext(state_dir=tmp_path))
    out = run(c)
    assert len(out.samples("node_cpu_seconds_total")) == 8 * (os.cpu_count() or 1)
    assert (out.get("node_memory_MemTotal_bytes") or 0) > 0
    root = [s for s in out.samples("node_filesystem_avail_bytes") if dict(s.labels)["mountpoint"] == "/"]
    assert root and root[0].value > 0
    assert out.get("node_network_receive_bytes_total", {"device": "lo"}) is not None
    [uname] = out.samples("node_uname_info")
    assert dict(uname.labels)["sysname"] == os.uname().sysname
    assert (out.get("node_boot_time_seconds") or 0) > 1e9
    assert re.match(r"^[a-z]", dict(out.samples("node_os_info")[0].labels)["id"])


def test_psutil_path_uses_the_same_names(tmp_path: Path) -> None:
    # The non-Linux path (Windows, macOS), exercised through psutil on this host.
    c = HealthCollector(HealthOptions(), AgentContext(state_dir=tmp_path), use_procfs=False)
    out = run(c)
    assert out.get("node_cpu_seconds_total", {"cpu": "0", "mode": "idle"}) is not None
    assert (out.get("node_memory_MemTotal_bytes") or 0) > 0
    assert out.get("node_memory_MemAvailable_bytes") is not None
    assert any(dict(s.labels)["mountpoint"] == "/" for s in out.samples("node_filesystem_size_bytes"))
    assert out.get("node_boot_time_seconds") is not None
    assert out.samples("node_network_receive_bytes_total")


def test_read_timex_never_raises() -> None:
    reading = read_timex()
    if reading is not None:
        assert reading.sync_status in (0.0, 1.0)
        assert reading.maxerror_seconds >= 0


def test_scan_report_flags_full_disk_hung_mount_and_clock(tmp_path: Path) -> None:
    def nearly_full(path: str) -> Any:
        if path == "/mnt/nfs":
            raise OSError(5, "Input/output error")
        return SimpleNamespace(f_frsize=4096, f_blocks=1000, f_bfree=30, f_bavail=20, f_files=100, f_ffree=50)

    c = make(tmp_path, statvfs=nearly_full, timex=lambda: TimexReading(0.0, 0.0, 16.0))
    assert c.report() is None  # nothing to say before a run
    assert run_once(c).success
    section = c.report()
    assert section is not None
    titles = {f.severity + " " + f.title for f in section.findings}
    assert "critical 文件系统 / 剩余空间 2.0% (filesystem almost full)" in titles
    assert not any("/srv/my data" in t and "剩余空间" in t for t in titles)  # read-only: full by design
    assert any(t.startswith("warning 文件系统 /mnt/nfs 无法读取") for t in titles)
    assert any(t.startswith("info 系统时钟未") for t in titles)
