"""Whether the services the operator named are up: systemd units, processes, listening TCP ports.

Sample::

    shaobing_service_up{kind="systemd",service="nginx.service"} 1
    shaobing_service_up{kind="process",service="java-app"} 0
    shaobing_service_up{kind="port",service="mysql"} 1
    shaobing_service_processes{service="java-app"} 0
    shaobing_service_resident_memory_bytes{service="java-app"} 0
    shaobing_systemd_units_failed 2

Decisions:

- systemd: a unit is up when its ActiveState is ``active`` (a unit that is not installed reads 0). All
  configured units are read with one ``systemctl show`` call; ``shaobing_systemd_units_failed`` counts the
  host's failed units (``systemctl list-units --state=failed``). When systemd is not the running init (a
  container, SysV hosts, /run/systemd/system absent) or its bus does not answer, the systemd part is *not
  applicable*: neither series is emitted for kind="systemd" and a warning is logged once. Reporting 0 there
  would page someone about a unit that cannot exist on that host. With no processes or ports configured
  either, the whole collector is not applicable (``shaobing_collector_applicable 0``).
- processes: matched by exact process name, or by ``pattern`` (a regex searched in the full command line)
  when given, optionally only those run by ``user``; up when at least ``min_count`` match. Zombies do not
  count. RSS is the sum over matching processes.
- ports: a TCP socket in LISTEN state on ``port``; with ``address`` it must be bound to that address or to
  the wildcard address of its family. Read from /proc/net/tcp{,6} on Linux, psutil elsewhere.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector, CollectorOptions, NotApplicable
from agent.compat import Literal
from agent.platform.linux_proc import parse_tcp_listeners
from agent.platform.processes import ProcInfo, iter_processes
from agent.process import CommandError, CommandResult, run
from agent.report import Finding, Section

if TYPE_CHECKING:
    from typing import TypeAlias  # Python 3.10+; aliases are strings so that 3.6-3.8 never evaluate them

__all__ = [
    "ServicesCollector",
    "ServicesOptions",
    "ProcessWatch",
    "PortWatch",
    "listening_tcp",
    "systemd_running",
]

log = logging.getLogger(__name__)

SYSTEMCTL_TIMEOUT = 5.0


@dataclass
class ProcessWatch:
    """``collectors.services.processes[]``: one logical service made of processes."""

    name: str
    pattern: Optional[str] = None  # noqa: UP045 - evaluated at runtime by the config loader on Python 3.9
    user: Optional[str] = None  # noqa: UP045
    min_count: int = field(default=1, metadata={"min": 1})

    def problems(self) -> list[tuple[str, str]]:
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                return [("pattern", f"不是有效的正则表达式 invalid regular expression: {exc}")]
        return []


@dataclass
class PortWatch:
    """``collectors.services.ports[]``: a TCP port that must be listening."""

    name: str
    port: int = field(metadata={"min": 1, "max": 65535})
    address: Optional[str] = None  # noqa: UP045
    proto: Literal["tcp"] = "tcp"

    def problems(self) -> list[tuple[str, str]]:
        if self.address is not None:
            try:
                _ip(self.address)
            except ValueError:
                return [("address", f"不是 IP 地址 not an IP address: {self.address!r}")]
        return []


@dataclass
class ServicesOptions(CollectorOptions):
    """``collectors.services`` in agent.yml."""

    systemd_units: list[str] = field(default_factory=list)
    processes: list[ProcessWatch] = field(default_factory=list)
    ports: list[PortWatch] = field(default_factory=list)

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for key, names in (
            ("systemd_units", self.systemd_units),
            ("processes", [p.name for p in self.processes]),
            ("ports", [p.name for p in self.ports]),
        ):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    out.append((key, f"名称重复 duplicate name {name!r}"))
                seen.add(name)
        return out


def _ip(text: str) -> str:
    import ipaddress

    return str(ipaddress.ip_address(text.strip("[]")))


def systemd_running() -> bool:
    """sd_booted(3): systemd is PID 1 exactly when /run/systemd/system exists."""
    return os.path.isdir("/run/systemd/system")


def listening_tcp(proc_root: str = "/proc") -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket."""
    found: set[tuple[str, int]] = set()
    read_any = False
    for name in ("tcp", "tcp6"):
        try:
            with open(Path(proc_root) / "net" / name, encoding="ascii", errors="replace") as fh:
                found |= parse_tcp_listeners(fh.read())
            read_any = True
        except OSError:
            continue
    if read_any:
        return found
    from agent.optional import psutil

    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr:
            found.add((conn.laddr.ip, conn.laddr.port))
    return found


def _port_listening(watch: PortWatch, listeners: set[tuple[str, int]]) -> bool:
    want = _ip(watch.address) if watch.address else None
    for addr, port in listeners:
        if port != watch.port:
            continue
        if want is None or addr == want or addr in ("0.0.0.0", "::"):
            return True
    return False


def parse_systemctl_show(text: str) -> list[dict[str, str]]:
    """``systemctl show -p ... u1 u2``: one block of ``Key=value`` lines per unit, blank-line separated."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key] = value
    if current:
        blocks.append(current)
    return blocks


Runner: TypeAlias = "Callable[[list[str], float], CommandResult]"


class ServicesCollector(Collector):
    """systemd units, processes and listening ports named in ``collectors.services``."""

    name = "services"
    title = "服务与端口 (Services)"
    options_class = ServicesOptions
    default_interval = 30.0
    default_timeout = 20.0
    default_jitter = 2.0
    metrics = (
        MetricSpec(
            "shaobing_service_up",
            "gauge",
            "Whether a configured service is up (1) or not (0); kind is systemd, process or port.",
            ("service", "kind"),
        ),
        MetricSpec(
            "shaobing_service_processes", "gauge", "Processes matching a configured process service.", ("service",)
        ),
        MetricSpec(
            "shaobing_service_resident_memory_bytes",
            "gauge",
            "Summed resident memory of the processes of a configured process service.",
            ("service",),
            "bytes",
        ),
        MetricSpec(
            "shaobing_systemd_units_failed", "gauge", "Number of systemd units in the failed state on the host."
        ),
    )

    def __init__(
        self,
        options: ServicesOptions,
        context: AgentContext,
        *,
        processes: Callable[[], Iterable[ProcInfo]] | None = None,
        listeners: Callable[[], set[tuple[str, int]]] = listening_tcp,
        systemd: Callable[[], bool] = systemd_running,
        runner: Runner = lambda argv, timeout: run(argv, timeout),
    ) -> None:
        super().__init__(options, context)
        self.options: ServicesOptions = options
        need_cmdline = any(p.pattern is not None for p in options.processes)
        need_user = any(p.user is not None for p in options.processes)
        self._processes = processes or (lambda: iter_processes(need_cmdline, need_user))
        self._listeners = listeners
        self._systemd = systemd
        self._run = runner
        self._patterns = {p.name: re.compile(p.pattern) for p in options.processes if p.pattern is not None}
        self._warned: set[str] = set()

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    def collect(self, out: MetricSet) -> None:
        opts = self.options
        if not (opts.processes or opts.ports or self._systemd()):
            raise NotApplicable("no services configured and systemd is not running")
        self._collect_systemd(out)
        if self.options.processes:
            self._collect_processes(out)
        if self.options.ports:
            listeners = self._listeners()
            for watch in self.options.ports:
                up = _port_listening(watch, listeners)
                out.add("shaobing_service_up", 1 if up else 0, {"service": watch.name, "kind": "port"})

    def report(self) -> Section | None:
        opts, out = self.options, self.last_metrics
        if out is None or not (opts.systemd_units or opts.processes or opts.ports):
            return None
        section = Section(self.title)
        what = {"systemd": "systemd 服务", "process": "进程", "port": "端口"}
        fixes = {
            "systemd": "systemctl status {0}; journalctl -u {0} -n 50",
            "process": "检查 {0} 的启动脚本与日志",
            "port": "检查监听 {0} 端口的服务是否运行 (ss -ltnp)",
        }
        for sample in out.samples("shaobing_service_up"):
            labels = dict(sample.labels)
            if sample.value:
                continue
            name, kind = labels["service"], labels["kind"]
            subject = name
            if kind == "port":
                subject = str(next((p.port for p in opts.ports if p.name == name), name))
            section.findings.append(
                Finding("critical", f"{what[kind]} {name} 未运行 (service down)", fix=fixes[kind].format(subject))
            )
        failed = out.get("shaobing_systemd_units_failed")
        if failed:
            section.findings.append(
                Finding(
                    "warning", f"有 {failed:.0f} 个 systemd 单元处于失败状态 (failed units)", fix="systemctl --failed"
                )
            )
        if opts.systemd_units and failed is None:
            section.notes.append("systemd 未运行或无法访问，未检查 systemd_units (systemd not running here)")
        return section

    # -- systemd --------------------------------------------------------------------------------------------

    def _systemctl(self, args: list[str]) -> str | None:
        """stdout of systemctl, or None when systemd cannot be asked (missing, no bus, timeout)."""
        try:
            res = self._run(["systemctl", *args], SYSTEMCTL_TIMEOUT)
        except CommandError as exc:
            self._warn_once("systemctl", "systemd 状态不可用 (systemd state unavailable): %s", exc)
            return None
        if res.returncode != 0 and not res.stdout.strip():
            self._warn_once(
                "systemctl",
                "systemd 状态不可用 (systemctl %s exited %d): %s",
                args[0],
                res.returncode,
                res.stderr.strip(),
            )
            return None
        return res.stdout

    def _collect_systemd(self, out: MetricSet) -> None:
        if not self._systemd():
            if self.options.systemd_units:
                self._warn_once(
                    "no-systemd",
                    "systemd 未运行，不检查 systemd_units (systemd is not running here; systemd_units not checked): %s",
                    ", ".join(self.options.systemd_units),
                )
            return
        failed = self._systemctl(["list-units", "--state=failed", "--no-legend", "--plain", "--no-pager"])
        if failed is None:
            return
        out.add("shaobing_systemd_units_failed", sum(1 for line in failed.splitlines() if line.strip()))
        units = self.options.systemd_units
        if not units:
            return
        shown = self._systemctl(["show", "--no-pager", "--property=Id,LoadState,ActiveState,SubState", "--", *units])
        if shown is None:
            return
        blocks = parse_systemctl_show(shown)
        if len(blocks) != len(units):
            # systemctl prints one block per argument, in order; anything else cannot be mapped safely.
            self._warn_once(
                "show-shape", "unexpected systemctl show output: %d blocks for %d units", len(blocks), len(units)
            )
            return
        for unit, props in zip(units, blocks):
            up = props.get("ActiveState") == "active"
            out.add("shaobing_service_up", 1 if up else 0, {"service": unit, "kind": "systemd"})

    # -- processes ------------------------------------------------------------------------------------------

    def _matches(self, watch: ProcessWatch, proc: ProcInfo) -> bool:
        if watch.user is not None and proc.username != watch.user:
            return False
        pattern = self._patterns.get(watch.name)
        if pattern is not None:
            return bool(proc.cmdline) and pattern.search(" ".join(proc.cmdline)) is not None
        name = proc.name[:-4] if proc.name.lower().endswith(".exe") else proc.name
        return name == watch.name

    def _collect_processes(self, out: MetricSet) -> None:
        counts = {w.name: 0 for w in self.options.processes}
        rss = {w.name: 0.0 for w in self.options.processes}
        own = os.getpid()
        for proc in self._processes():
            if proc.pid == own:
                continue  # the agent's own command line must never satisfy a pattern
            for watch in self.options.processes:
                if self._matches(watch, proc):
                    counts[watch.name] += 1
                    rss[watch.name] += proc.rss
        for watch in self.options.processes:
            labels = {"service": watch.name}
            out.add(
                "shaobing_service_up", 1 if counts[watch.name] >= watch.min_count else 0, {**labels, "kind": "process"}
            )
            out.add("shaobing_service_processes", counts[watch.name], labels)
            out.add("shaobing_service_resident_memory_bytes", rss[watch.name], labels)
