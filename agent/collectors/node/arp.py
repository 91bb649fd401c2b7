"""ARP table entries per interface, as node_exporter's arp collector (/proc/net/arp)::

    node_arp_entries{device="eth0"} 1
"""

from __future__ import annotations

from agent.catalog import MetricSet, MetricSpec
from agent.collectors.node.base import NodeFamily

__all__ = ["ArpCollector"]

_MAX_LINES = 1 << 16


class ArpCollector(NodeFamily):
    name = "arp"
    title = "ARP 表 (ARP table)"
    requires = "net/arp"
    metrics = (MetricSpec("node_arp_entries", "gauge", "ARP entries by device", ("device",)),)

    def collect(self, out: MetricSet) -> None:
        counts: dict[str, int] = {}
        for line in self.read_required().splitlines()[1:_MAX_LINES]:
            fields = line.split()
            if len(fields) >= 6:
                counts[fields[5]] = counts.get(fields[5], 0) + 1
        for device, count in sorted(counts.items()):
            out.add("node_arp_entries", count, {"device": device})
