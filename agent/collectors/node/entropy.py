"""The kernel's entropy pool, as node_exporter's entropy collector (/proc/sys/kernel/random)::

    node_entropy_available_bits 256
    node_entropy_pool_size_bits 256
"""

from __future__ import annotations

from agent.catalog import MetricSet, MetricSpec
from agent.collectors.node.base import NodeFamily

__all__ = ["EntropyCollector"]


class EntropyCollector(NodeFamily):
    name = "entropy"
    title = "熵池 (Entropy)"
    requires = "sys/kernel/random/entropy_avail"
    metrics = (
        MetricSpec("node_entropy_available_bits", "gauge", "Bits of available entropy."),
        MetricSpec("node_entropy_pool_size_bits", "gauge", "Bits of entropy pool."),
    )

    def collect(self, out: MetricSet) -> None:
        out.add("node_entropy_available_bits", _number(self.read_required(), self.requires))
        pool = self.read(self.proc / "sys/kernel/random/poolsize")
        if pool is not None:
            out.add("node_entropy_pool_size_bits", _number(pool, "sys/kernel/random/poolsize"))


def _number(text: str, where: str) -> float:
    try:
        return float(int(text.strip()))
    except ValueError:
        raise RuntimeError(f"{where}: not a number: {text.strip()[:40]!r}") from None
