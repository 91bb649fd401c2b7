"""Network protocol counters, as node_exporter's netstat collector: /proc/net/netstat and /proc/net/snmp
(header line, value line per protocol) and /proc/net/snmp6 (``Ip6InOctets 256``), kept to node_exporter's
default ``--collector.netstat.fields``::

    node_netstat_Tcp_CurrEstab 12
    node_netstat_TcpExt_ListenDrops 51
    node_netstat_Udp_RcvbufErrors 0

node_exporter exposes these untyped; here they are gauges (the catalogue knows gauge and counter, and a
counter's name must end in ``_total``), the same deliberate difference as ``node_vmstat_*``.
"""

from __future__ import annotations

import re

from agent.catalog import MetricSet, MetricSpec
from agent.collectors.node.base import NodeFamily

__all__ = ["NetstatCollector", "DEFAULT_FIELDS"]

DEFAULT_FIELDS = (
    r"^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|"
    r"TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|"
    r"Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|"
    r"Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$"
)
# Every kernel counter the default fields select (net/ipv4/proc.c, net/ipv6/proc.c).
NAMES: tuple[str, ...] = (
    "Icmp6_InErrors", "Icmp6_InMsgs", "Icmp6_OutMsgs", "Icmp_InErrors", "Icmp_InMsgs", "Icmp_OutMsgs",
    "Ip6_InOctets", "Ip6_OutOctets", "IpExt_InOctets", "IpExt_OutOctets", "Ip_Forwarding",
    "TcpExt_ListenDrops", "TcpExt_ListenOverflows", "TcpExt_SyncookiesFailed", "TcpExt_SyncookiesRecv",
    "TcpExt_SyncookiesSent", "TcpExt_TCPSynRetrans", "TcpExt_TCPTimeouts", "Tcp_ActiveOpens", "Tcp_CurrEstab",
    "Tcp_InErrs", "Tcp_InSegs", "Tcp_OutRsts", "Tcp_OutSegs", "Tcp_PassiveOpens", "Tcp_RetransSegs",
    "Udp6_InDatagrams", "Udp6_InErrors", "Udp6_NoPorts", "Udp6_OutDatagrams", "Udp6_RcvbufErrors",
    "Udp6_SndbufErrors", "UdpLite6_InErrors", "UdpLite_InErrors", "Udp_InDatagrams", "Udp_InErrors",
    "Udp_NoPorts", "Udp_OutDatagrams", "Udp_RcvbufErrors", "Udp_SndbufErrors",
)
_SNMP6 = re.compile(r"^(Ip6|Icmp6|UdpLite6|Udp6)(\w+)$")
_MAX_LINES = 512


class NetstatCollector(NodeFamily):
    name = "netstat"
    title = "网络协议计数 (Network protocol statistics)"
    requires = "net/snmp"
    metrics = tuple(MetricSpec(f"node_netstat_{n}", "gauge", f"Statistic {n.replace('_', '')}.") for n in NAMES)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._wanted = frozenset(NAMES)

    def _pairs(self, text: str) -> dict[str, str]:
        """``Tcp: RtoAlgorithm ...`` / ``Tcp: 1 ...`` line pairs -> {"Tcp_RtoAlgorithm": "1", ...}."""
        out: dict[str, str] = {}
        lines = text.splitlines()[:_MAX_LINES]
        for header, values in zip(lines[::2], lines[1::2]):
            keys, nums = header.split(), values.split()
            if not keys or keys[0] != nums[0] or len(keys) != len(nums):
                continue
            proto = keys[0].rstrip(":")
            out.update({f"{proto}_{k}": v for k, v in zip(keys[1:], nums[1:])})
        return out

    def collect(self, out: MetricSet) -> None:
        stats = self._pairs(self.read_required())
        stats.update(self._pairs(self.read(self.proc / "net/netstat") or ""))
        for line in (self.read(self.proc / "net/snmp6") or "").splitlines()[:_MAX_LINES]:
            parts = line.split()
            m = _SNMP6.match(parts[0]) if len(parts) == 2 else None
            if m:
                stats[f"{m.group(1)}_{m.group(2)}"] = parts[1]
        for key, raw in stats.items():
            if key in self._wanted:
                try:
                    out.add(f"node_netstat_{key}", float(raw))
                except ValueError:
                    continue
