"""Risky ports listening on all interfaces, with the owning process, and whether a host firewall is on::

    shaobing_exposed_port{bind="0.0.0.0",port="6379",process="redis-server",service="redis"} 1
    shaobing_host_firewall_active 0
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

from agent.audit import fingerprint
from agent.audit.exposure import RISKY_PORTS, ConnLister, ExposedSocket, FirewallState, exposed_sockets, firewall_state
from agent.audit.runs import expect_run, record_run, run_finished
from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector, CollectorOptions
from agent.report import Finding, Section

__all__ = ["ExposureOptions", "ExposureCollector"]

_PORT_KEY_RE = re.compile(r"^(\d{1,5})(?:/(tcp|udp))?$")


def _parse_port_key(key: str) -> Optional[tuple[int, str]]:
    m = _PORT_KEY_RE.match(key.strip())
    if not m or not 0 < int(m.group(1)) < 65536:
        return None
    return int(m.group(1)), m.group(2) or "tcp"


@dataclass
class ExposureOptions(CollectorOptions):
    # More risky ports for this site: {"8080/tcp": "tomcat"}; "/tcp" is the default protocol.
    extra_ports: dict[str, str] = field(default_factory=dict)
    # Catalogued ports that are meant to be public here (a public FTP server …): "21" or "21/tcp".
    ignore_ports: list[str] = field(default_factory=list)
    check_firewall: bool = True
    # Ask listeners nothing else names what they are (agent.audit.fingerprint: a banner read, a Redis PING, a
    # PostgreSQL SSLRequest; this host's own addresses only, 0.5 s each, at most 32 listeners and 10 s a run).
    identify_unknown: bool = True

    def problems(self) -> list[tuple[str, str]]:
        out = [
            (f"extra_ports.{k}", "expected a port number with optional /tcp or /udp, e.g. 8080/tcp")
            for k in self.extra_ports
            if _parse_port_key(k) is None
        ]
        out += [
            (f"ignore_ports[{i}]", "expected a port number with optional /tcp or /udp, e.g. 21/tcp")
            for i, k in enumerate(self.ignore_ports)
            if _parse_port_key(k) is None
        ]
        return out


class ExposureCollector(Collector):
    name = "exposure"
    title = "端口暴露与防火墙 (Exposed ports and firewall)"
    options_class = ExposureOptions
    default_interval = 300.0
    default_timeout = 30.0
    default_jitter = 30.0
    metrics = (
        MetricSpec(
            "shaobing_exposed_port",
            "gauge",
            "1 per risky service listening on all interfaces (0.0.0.0 or ::), with the owning process.",
            ("port", "service", "bind", "process"),
        ),
        MetricSpec(
            "shaobing_host_firewall_active",
            "gauge",
            "1 when a host firewall (nftables, iptables, firewalld or ufw) filters inbound traffic, else 0.",
        ),
    )

    def __init__(
        self,
        options: ExposureOptions,
        context: AgentContext,
        *,
        catalogue: Optional[Mapping[tuple[int, str], str]] = None,
        lister: Optional[ConnLister] = None,
        firewall_prefix: Sequence[str] = (),
    ) -> None:
        super().__init__(options, context)
        expect_run(context.state_dir, "exposure")
        self.opts = options
        cat = dict(RISKY_PORTS if catalogue is None else catalogue)
        for key, service in options.extra_ports.items():
            parsed = _parse_port_key(key)
            if parsed:
                cat[parsed] = service
        self.ignored: set[tuple[int, str]] = set()
        for key in options.ignore_ports:
            parsed = _parse_port_key(key)
            if parsed:
                cat.pop(parsed, None)
                self.ignored.add(parsed)
        self.catalogue = cat
        self._lister = lister
        self._prefix = tuple(firewall_prefix)
        self.last: Optional[tuple[list[ExposedSocket], Optional[FirewallState]]] = None

    def _evaluate(self) -> tuple[list[ExposedSocket], Optional[FirewallState]]:
        socks = exposed_sockets(self.catalogue, self._lister,
                                identify=fingerprint.Prober() if self.opts.identify_unknown else None)
        # Meant to be public here: not reported, however the service was recognised (process, owner, answer).
        socks = [s for s in socks if (s.port, s.protocol) not in self.ignored]
        fw: Optional[FirewallState] = None
        if self.opts.check_firewall:
            fw = firewall_state(timeout=max(1.0, self.timeout / 6), prefix=self._prefix)
        record_run(self.context.state_dir, "exposure", self.context.clock(), True)
        self.last = (socks, fw)
        return socks, fw

    def collect(self, out: MetricSet) -> None:
        try:
            socks, fw = self._evaluate()
            for s in socks:
                port = str(s.port) if s.protocol == "tcp" else f"{s.port}/{s.protocol}"
                labels = {"port": port, "service": s.service, "bind": s.bind, "process": s.process}
                out.add("shaobing_exposed_port", 1, labels)
            if fw is not None and fw.active is not None:
                out.add("shaobing_host_firewall_active", 1 if fw.active else 0)
        finally:
            run_finished(self.context.state_dir, "exposure")

    def report(self) -> Optional[Section]:
        if self.last is None:
            return None
        socks, fw = self.last
        section = Section(self.title)
        filtered = bool(fw and fw.active)
        for s in socks:
            section.findings.append(
                Finding(
                    "warning" if filtered else "critical",
                    f"{s.service} 端口 {s.port}/{s.protocol} "
                    + (f"监听在所有网卡 ({s.bind}, listens on all interfaces)" if s.all_interfaces
                       else f"监听在对外地址 {s.bind} (listens on a non-loopback address)")
                    + f", 进程 {s.process}",
                    "任何能访问本机的主机都可以连接此服务"
                    + (" (已启用主机防火墙, 请确认已限制该端口)." if filtered else ", 且未发现主机防火墙."),
                    f"若只需本机访问, 将服务改为只监听 127.0.0.1; 否则用防火墙仅放行所需来源, 例如: "
                    f"nft add rule inet filter input {s.protocol} dport {s.port} ip saddr != <管理网段> drop",
                )
            )
        if fw is not None:
            if fw.active:
                section.notes.append("主机防火墙已启用 (host firewall active): " + "; ".join(fw.evidence))
            elif fw.active is False:
                section.findings.append(
                    Finding(
                        "warning",
                        "未发现启用的主机防火墙 (no host firewall)",
                        "所有监听端口都直接暴露给网络.",
                        "启用 nftables/firewalld/ufw, 默认拒绝入站, 只放行 SSH 与业务端口.",
                    )
                )
            else:
                section.notes.append("无法判断防火墙状态 (需要 root, 或未安装 nft/iptables/firewalld/ufw).")
        return section
