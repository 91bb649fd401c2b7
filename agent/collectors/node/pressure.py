"""Pressure stall information (PSI), as node_exporter's pressure collector (/proc/pressure/{cpu,io,memory};
Linux >= 4.20 with PSI enabled)::

    node_pressure_cpu_waiting_seconds_total 499.862294
    node_pressure_io_waiting_seconds_total 78.823918
    node_pressure_io_stalled_seconds_total 66.693606

``some`` is time at least one task waited, ``full`` time all non-idle tasks were stalled; ``total`` is in
microseconds (Documentation/accounting/psi.rst).
"""

from __future__ import annotations

import re

from agent.catalog import MetricSet, MetricSpec
from agent.collectors.node.base import NodeFamily

__all__ = ["PressureCollector"]

_LINE = re.compile(r"^(some|full)\s+avg10=[\d.]+\s+avg60=[\d.]+\s+avg300=[\d.]+\s+total=(\d+)\s*$", re.M)
# (resource, line) -> metric; node_exporter 1.5 exports cpu "some" only.
_METRICS = {
    ("cpu", "some"): "node_pressure_cpu_waiting_seconds_total",
    ("io", "some"): "node_pressure_io_waiting_seconds_total",
    ("io", "full"): "node_pressure_io_stalled_seconds_total",
    ("memory", "some"): "node_pressure_memory_waiting_seconds_total",
    ("memory", "full"): "node_pressure_memory_stalled_seconds_total",
}


class PressureCollector(NodeFamily):
    name = "pressure"
    title = "资源压力 (Pressure stall information)"
    requires = "pressure/cpu"
    metrics = (
        MetricSpec("node_pressure_cpu_waiting_seconds_total", "counter",
                   "Total time in seconds that processes have waited for CPU time", (), "seconds"),
        MetricSpec("node_pressure_io_waiting_seconds_total", "counter",
                   "Total time in seconds that processes have waited due to IO congestion", (), "seconds"),
        MetricSpec("node_pressure_io_stalled_seconds_total", "counter",
                   "Total time in seconds no process could make progress due to IO congestion", (), "seconds"),
        MetricSpec("node_pressure_memory_waiting_seconds_total", "counter",
                   "Total time in seconds that processes have waited for memory", (), "seconds"),
        MetricSpec("node_pressure_memory_stalled_seconds_total", "counter",
                   "Total time in seconds no process could make progress due to memory congestion", (), "seconds"),
    )

    def collect(self, out: MetricSet) -> None:
        self.read_required()
        for resource in ("cpu", "io", "memory"):
            text = self.read(self.proc / "pressure" / resource)
            if text is None:
                continue
            for kind, total in _LINE.findall(text):
                name = _METRICS.get((resource, kind))
                if name is not None:
                    out.add(name, int(total) / 1e6)
