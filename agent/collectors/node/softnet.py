"""Per-CPU network softirq statistics, as node_exporter's softnet collector (/proc/net/softnet_stat, one
hexadecimal line per CPU: processed, dropped, time_squeeze, ...)::

    node_softnet_processed_total{cpu="0"} 8.868677e+06
    node_softnet_dropped_total{cpu="0"} 0
    node_softnet_times_squeezed_total{cpu="1"} 2

Dropped packets here mean the backlog queue (net.core.netdev_max_backlog) overflowed.
"""

from __future__ import annotations

from agent.catalog import MetricSet, MetricSpec
from agent.collectors.node.base import NodeFamily

__all__ = ["SoftnetCollector"]

_MAX_CPUS = 8192


class SoftnetCollector(NodeFamily):
    name = "softnet"
    title = "网络软中断 (Softnet)"
    requires = "net/softnet_stat"
    metrics = (
        MetricSpec("node_softnet_processed_total", "counter", "Number of processed packets", ("cpu",)),
        MetricSpec("node_softnet_dropped_total", "counter", "Number of dropped packets", ("cpu",)),
        MetricSpec("node_softnet_times_squeezed_total", "counter",
                   "Number of times processing packets ran out of quota", ("cpu",)),
    )

    def collect(self, out: MetricSet) -> None:
        for cpu, line in enumerate(self.read_required().splitlines()[:_MAX_CPUS]):
            fields = line.split()
            if len(fields) < 3:
                raise RuntimeError(f"{self.proc / self.requires}:{cpu + 1}: expected at least 3 columns")
            labels = {"cpu": str(cpu)}
            out.add("node_softnet_processed_total", int(fields[0], 16), labels)
            out.add("node_softnet_dropped_total", int(fields[1], 16), labels)
            out.add("node_softnet_times_squeezed_total", int(fields[2], 16), labels)
