"""Memory queued in UDP sockets, as node_exporter's udp_queues collector (/proc/net/udp and udp6: the
``tx_queue:rx_queue`` column summed over sockets)::

    node_udp_queues{ip="v4",queue="rx"} 0
    node_udp_queues{ip="v4",queue="tx"} 0

A growing rx queue is a service (syslog, SNMP traps) that does not keep up with what arrives.
"""

from __future__ import annotations

from agent.catalog import MetricSet, MetricSpec
from agent.collectors.node.base import NodeFamily

__all__ = ["UdpQueuesCollector"]

_MAX_LINES = 1 << 16


class UdpQueuesCollector(NodeFamily):
    name = "udp_queues"
    title = "UDP 队列 (UDP queues)"
    requires = "net/udp"
    metrics = (
        MetricSpec("node_udp_queues", "gauge", "Number of allocated memory in the kernel for UDP datagrams in bytes.",
                   ("ip", "queue")),
    )

    def collect(self, out: MetricSet) -> None:
        for ip, text in (("v4", self.read_required()), ("v6", self.read(self.proc / "net/udp6"))):
            if text is None:
                continue
            tx = rx = 0
            for line in text.splitlines()[1:_MAX_LINES]:
                fields = line.split()
                if len(fields) > 4 and ":" in fields[4]:
                    t, _, r = fields[4].partition(":")
                    tx, rx = tx + int(t, 16), rx + int(r, 16)
            out.add("node_udp_queues", rx, {"ip": ip, "queue": "rx"})
            out.add("node_udp_queues", tx, {"ip": ip, "queue": "tx"})
