"""The services collector: injected process lists, systemctl output and /proc/net/tcp, plus real processes and
real listening sockets on this host."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from agent.catalog import MetricSet
from agent.collector import AgentContext, NotApplicable
from agent.collectors.services import (
    PortWatch,
    ProcessWatch,
    ServicesCollector,
    ServicesOptions,
    listening_tcp,
)
from agent.platform.processes import ProcInfo, iter_processes_psutil
from agent.process import CommandError, CommandResult
from tests.agent.scan_helpers import run_once

PROC = Path(__file__).parent / "fixtures" / "proc"

PROCS = [
    ProcInfo(101, "nginx", ("nginx: master process /usr/sbin/nginx",), "root", 4_000_000),
    ProcInfo(102, "nginx", ("nginx: worker process",), "www-data", 3_000_000),
    ProcInfo(103, "nginx", ("nginx: worker process",), "www-data", 3_000_000),
    ProcInfo(200, "java", ("/usr/bin/java", "-jar", "/opt/oa/oa-server.jar"), "oa", 500_000_000),
    ProcInfo(300, "kthreadd", (), "root", 0),
]

# `systemctl show --property=Id,LoadState,ActiveState,SubState -- nginx.service sshd missing.service`, systemd 252.
SHOW = """Id=nginx.service
LoadState=loaded
ActiveState=active
SubState=running

Id=ssh.service
LoadState=loaded
ActiveState=failed
SubState=failed

Id=missing.service
LoadState=not-found
ActiveState=inactive
SubState=dead
"""
FAILED = "ssh.service loaded failed failed OpenBSD Secure Shell server\nlogrotate.service loaded failed failed Rotate\n"


class FakeSystemctl:
    def __init__(self, show: str = SHOW, failed: str = FAILED, error: Exception | None = None) -> None:
        self.show, self.failed, self.error = show, failed, error
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], timeout: float) -> CommandResult:
        assert timeout <= 10
        self.calls.append(argv)
        if self.error is not None:
            raise self.error
        return CommandResult(0, self.show if argv[1] == "show" else self.failed, "")


def collect(c: ServicesCollector) -> MetricSet:
    out = c.new_metric_set()
    c.collect(out)
    return out


def make(tmp_path: Path, opts: ServicesOptions, **kw: object) -> ServicesCollector:
    defaults: dict[str, object] = {
        "processes": lambda: iter(PROCS),
        "listeners": lambda: {("127.0.0.1", 3306), ("::", 80), ("0.0.0.0", 22)},
        "systemd": lambda: True,
        "runner": FakeSystemctl(),
    }
    defaults.update(kw)
    return ServicesCollector(opts, AgentContext(state_dir=tmp_path), **defaults)  # type: ignore[arg-type]


def test_processes_by_name_pattern_user_and_min_count(tmp_path: Path) -> None:
    opts = ServicesOptions(
        processes=[
            ProcessWatch("nginx"),
            ProcessWatch("nginx-workers", pattern=r"nginx: worker", user="www-data", min_count=4),
            ProcessWatch("oa", pattern=r"oa-server\.jar"),
            ProcessWatch("redis-server"),
        ]
    )
    out = collect(make(tmp_path, opts))
    assert out.get("shaobing_service_up", {"service": "nginx", "kind": "process"}) == 1
    assert out.get("shaobing_service_processes", {"service": "nginx"}) == 3
    assert out.get("shaobing_service_resident_memory_bytes", {"service": "nginx"}) == 10_000_000
    assert out.get("shaobing_service_processes", {"service": "nginx-workers"}) == 2
    assert out.get("shaobing_service_up", {"service": "nginx-workers", "kind": "process"}) == 0  # 2 < min_count 4
    assert out.get("shaobing_service_up", {"service": "oa", "kind": "process"}) == 1
    assert out.get("shaobing_service_resident_memory_bytes", {"service": "oa"}) == 500_000_000
    assert out.get("shaobing_service_up", {"service": "redis-server", "kind": "process"}) == 0
    assert out.get("shaobing_service_processes", {"service": "redis-server"}) == 0


def test_systemd_units_in_one_call_and_failed_count(tmp_path: Path) -> None:
    runner = FakeSystemctl()
    opts = ServicesOptions(systemd_units=["nginx.service", "sshd", "missing.service"])
    out = collect(make(tmp_path, opts, runner=runner))
    assert out.get("shaobing_service_up", {"service": "nginx.service", "kind": "systemd"}) == 1
    assert out.get("shaobing_service_up", {"service": "sshd", "kind": "systemd"}) == 0
    assert out.get("shaobing_service_up", {"service": "missing.service", "kind": "systemd"}) == 0
    assert out.get("shaobing_systemd_units_failed") == 2
    shows = [argv for argv in runner.calls if argv[1] == "show"]
    assert len(shows) == 1 and shows[0][-3:] == ["nginx.service", "sshd", "missing.service"]


def test_no_systemd_means_not_applicable_not_down(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runner = FakeSystemctl()
    opts = ServicesOptions(systemd_units=["nginx.service"], ports=[PortWatch("ssh", 22)])
    c = make(tmp_path, opts, systemd=lambda: False, runner=runner)
    out = collect(c)
    collect(c)
    assert runner.calls == []
    assert out.samples("shaobing_systemd_units_failed") == []
    assert out.get("shaobing_service_up", {"service": "nginx.service", "kind": "systemd"}) is None
    assert out.get("shaobing_service_up", {"service": "ssh", "kind": "port"}) == 1  # the rest still works
    assert sum("systemd" in r.getMessage() for r in caplog.records) == 1  # logged once, not every cycle


def test_systemctl_failure_or_timeout_skips_systemd_part(tmp_path: Path) -> None:
    opts = ServicesOptions(systemd_units=["nginx.service"])
    # Nothing configured and no systemd: nothing to look at on this host.
    with pytest.raises(NotApplicable):
        collect(make(tmp_path, ServicesOptions(systemd_units=["nginx.service"]), systemd=lambda: False))
    out = collect(make(tmp_path, opts, runner=FakeSystemctl(error=CommandError("systemctl did not finish"))))
    assert out.names() == set()
    # A bus that does not answer: non-zero exit, nothing on stdout.
    dead_bus = lambda argv, timeout: CommandResult(1, "", "Failed to connect to bus: No such file or directory")  # noqa: E731
    out = collect(make(tmp_path, opts, runner=dead_bus))
    assert out.names() == set()


def test_ports_by_port_and_address(tmp_path: Path) -> None:
    opts = ServicesOptions(
        ports=[
            PortWatch("mysql", 3306),
            PortWatch("mysql-lan", 3306, address="192.168.1.10"),  # bound to 127.0.0.1 only: not on the LAN
            PortWatch("http-v4", 80, address="127.0.0.1"),  # [::] wildcard
            PortWatch("ssh-v4", 22, address="10.0.0.1"),  # 0.0.0.0 wildcard
            PortWatch("pg", 5432),
        ]
    )
    out = collect(make(tmp_path, opts))
    up = {dict(s.labels)["service"]: s.value for s in out.samples("shaobing_service_up")}
    assert up == {"mysql": 1, "mysql-lan": 0, "http-v4": 1, "ssh-v4": 1, "pg": 0}


def test_proc_net_tcp_fixture() -> None:
    listeners = listening_tcp(str(PROC))
    assert listeners == {("0.0.0.0", 2024), ("127.0.0.1", 36575), ("::1", 49917), ("::", 43413)}


def test_options_problems() -> None:
    assert ProcessWatch("x", pattern="(").problems()[0][0] == "pattern"
    assert PortWatch("x", 80, address="not-an-ip").problems()[0][0] == "address"
    dup = ServicesOptions(processes=[ProcessWatch("a"), ProcessWatch("a")]).problems()
    assert dup and dup[0][0] == "processes"


def test_real_process_watched_by_pattern(tmp_path: Path) -> None:
    marker = f"shaobing-test-{uuid.uuid4().hex[:12]}"
    opts = ServicesOptions(processes=[ProcessWatch("sleeper", pattern=rf"^{marker} 300$")])
    c = ServicesCollector(opts, AgentContext(state_dir=tmp_path))
    # A real `sleep 300` whose argv[0] is a unique marker, so no other process on the machine can match.
    proc = subprocess.Popen([marker, "300"], executable="sleep")
    try:
        # Popen returns after fork; until the child has exec'd, its command line is still this Python's.
        deadline = time.monotonic() + 10
        while not Path(f"/proc/{proc.pid}/cmdline").read_bytes().startswith(marker.encode()):
            assert time.monotonic() < deadline, "sleep did not start"
            time.sleep(0.01)
        out = collect(c)
        assert out.get("shaobing_service_up", {"service": "sleeper", "kind": "process"}) == 1
        assert out.get("shaobing_service_processes", {"service": "sleeper"}) == 1
        assert (out.get("shaobing_service_resident_memory_bytes", {"service": "sleeper"}) or 0) > 0
    finally:
        proc.kill()
        proc.wait(10)
    out = collect(c)
    assert out.get("shaobing_service_up", {"service": "sleeper", "kind": "process"}) == 0
    assert out.get("shaobing_service_processes", {"service": "sleeper"}) == 0


def test_zombie_does_not_count(tmp_path: Path) -> None:
    marker = f"shaobing-zombie-{uuid.uuid4().hex[:12]}"
    opts = ServicesOptions(processes=[ProcessWatch("z", pattern=marker)])
    c = ServicesCollector(opts, AgentContext(state_dir=tmp_path))
    proc = subprocess.Popen([marker, "300"], executable="sleep")
    try:
        proc.kill()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # until the kernel has made it a zombie (not yet reaped)
            if Path(f"/proc/{proc.pid}/stat").read_text().split(") ")[1].startswith("Z"):
                break
            time.sleep(0.01)
        assert collect(c).get("shaobing_service_processes", {"service": "z"}) == 0
    finally:
        proc.wait(10)


def test_real_listening_sockets(tmp_path: Path) -> None:
    v4 = socket.socket()
    v4.bind(("127.0.0.1", 0))
    v4.listen()
    port = v4.getsockname()[1]
    opts = ServicesOptions(
        ports=[
            PortWatch("mine", port),
            PortWatch("mine-loopback", port, address="127.0.0.1"),
            PortWatch("mine-elsewhere", port, address="127.0.0.2"),
        ]
    )
    c = ServicesCollector(opts, AgentContext(state_dir=tmp_path), systemd=lambda: False)
    try:
        out = collect(c)
        assert out.get("shaobing_service_up", {"service": "mine", "kind": "port"}) == 1
        assert out.get("shaobing_service_up", {"service": "mine-loopback", "kind": "port"}) == 1
        assert out.get("shaobing_service_up", {"service": "mine-elsewhere", "kind": "port"}) == 0
    finally:
        v4.close()
    out = collect(c)
    assert out.get("shaobing_service_up", {"service": "mine", "kind": "port"}) == 0
    if socket.has_ipv6:
        v6 = socket.socket(socket.AF_INET6)
        try:
            v6.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback")
        v6.listen()
        try:
            opts6 = ServicesOptions(ports=[PortWatch("v6", v6.getsockname()[1], address="::1")])
            c6 = ServicesCollector(opts6, AgentContext(state_dir=tmp_path), systemd=lambda: False)
            assert collect(c6).get("shaobing_service_up", {"service": "v6", "kind": "port"}) == 1
        finally:
            v6.close()


def test_real_host_without_systemd(tmp_path: Path) -> None:
    # This CI machine has systemctl installed but systemd is not PID 1: the systemd part is left out.
    c = ServicesCollector(ServicesOptions(systemd_units=["ssh.service"]), AgentContext(state_dir=tmp_path))
    if not Path("/run/systemd/system").is_dir():
        with pytest.raises(NotApplicable):
            collect(c)


def test_scan_report(tmp_path: Path) -> None:
    opts = ServicesOptions(
        systemd_units=["nginx.service", "sshd", "missing.service"],
        processes=[ProcessWatch("nginx"), ProcessWatch("redis-server")],
        ports=[PortWatch("pg", 5432), PortWatch("mysql", 3306)],
    )
    c = make(tmp_path, opts)
    assert c.report() is None  # nothing to say before a run
    assert run_once(c).success
    section = c.report()
    assert section is not None
    titles = sorted(f.title for f in section.findings if f.severity == "critical")
    assert titles == [
        "systemd 服务 missing.service 未运行 (service down)",
        "systemd 服务 sshd 未运行 (service down)",
        "端口 pg 未运行 (service down)",
        "进程 redis-server 未运行 (service down)",
    ]
    assert any("5432" in f.fix for f in section.findings)
    assert any(f.severity == "warning" and "2 个 systemd" in f.title for f in section.findings)
    # Only systemd units asked for, on a host without systemd: nothing applies, so scan shows no section.
    no_systemd = make(tmp_path, ServicesOptions(systemd_units=["x.service"]), systemd=lambda: False)
    result = run_once(no_systemd)
    assert not result.applicable and "systemd is not running" in result.error
    assert no_systemd.report() is None
    # systemd units asked for next to a process watch: the run applies and the report says what it skipped.
    mixed = make(tmp_path, ServicesOptions(systemd_units=["x.service"], processes=[ProcessWatch("nginx")]),
                 systemd=lambda: False)
    assert run_once(mixed).success
    mixed_section = mixed.report()
    assert mixed_section is not None and mixed_section.findings == [] and mixed_section.notes
    nothing = make(tmp_path, ServicesOptions())
    assert run_once(nothing).success
    assert nothing.report() is None


@pytest.mark.parametrize("reader", ["procfs", "psutil"])
def test_real_process_with_a_long_name_found_by_name(tmp_path: Path, reader: str) -> None:
    # The kernel cuts process names to 15 characters; a watch by the full name must still match.
    exe = tmp_path / f"shaobing-sleeper-{uuid.uuid4().hex[:8]}"
    shutil.copy("/bin/sleep", exe)
    opts = ServicesOptions(processes=[ProcessWatch(exe.name)])
    source = iter_processes_psutil if reader == "psutil" else None
    c = ServicesCollector(opts, AgentContext(state_dir=tmp_path), processes=source, systemd=lambda: False)
    proc = subprocess.Popen([str(exe), "300"])
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # until exec() has replaced the forked child's name
            out = collect(c)
            if out.get("shaobing_service_processes", {"service": exe.name}) == 1:
                break
            time.sleep(0.02)
        assert out.get("shaobing_service_up", {"service": exe.name, "kind": "process"}) == 1
        assert (out.get("shaobing_service_resident_memory_bytes", {"service": exe.name}) or 0) > 100_000
    finally:
        proc.kill()
        proc.wait(10)
