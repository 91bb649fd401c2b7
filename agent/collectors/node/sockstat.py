"""Socket counts by protocol, as node_exporter's sockstat collector (/proc/net/sockstat, sockstat6)::

    node_sockstat_sockets_used 299
    node_sockstat_TCP_inuse 5
    node_sockstat_TCP_tw 1
    node_sockstat_TCP_mem_bytes 4096

``mem`` is in pages; ``*_mem_bytes`` multiplies it by the page size, as node_exporter does.
"""

from __future__ import annotations

import os

from agent.catalog import MetricSet, MetricSpec
from agent.collectors.node.base import NodeFamily

__all__ = ["SockstatCollector"]

# (protocol, field) pairs the kernel writes (net/ipv4/proc.c, net/ipv6/proc.c).
_FIELDS: tuple[tuple[str, str], ...] = (
    ("TCP", "inuse"), ("TCP", "orphan"), ("TCP", "tw"), ("TCP", "alloc"), ("TCP", "mem"), ("TCP", "mem_bytes"),
    ("UDP", "inuse"), ("UDP", "mem"), ("UDP", "mem_bytes"), ("UDPLITE", "inuse"), ("RAW", "inuse"),
    ("FRAG", "inuse"), ("FRAG", "memory"),
    ("TCP6", "inuse"), ("UDP6", "inuse"), ("UDPLITE6", "inuse"), ("RAW6", "inuse"), ("FRAG6", "inuse"),
    ("FRAG6", "memory"),
)


class SockstatCollector(NodeFamily):
    name = "sockstat"
    title = "套接字统计 (Socket statistics)"
    requires = "net/sockstat"
    metrics = (
        MetricSpec("node_sockstat_sockets_used", "gauge", "Number of IPv4 sockets in use."),
        *(MetricSpec(f"node_sockstat_{p}_{f}", "gauge", f"Number of {p} sockets in state {f}.") for p, f in _FIELDS),
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._known = set(_FIELDS)

    def collect(self, out: MetricSet) -> None:
        texts = [self.read_required(), self.read(self.proc / "net/sockstat6") or ""]
        for text in texts:
            for line in text.splitlines()[:64]:
                proto, _, rest = line.partition(":")
                values = rest.split()
                pairs = dict(zip(values[::2], values[1::2]))
                if proto == "sockets":
                    if pairs.get("used", "").isdigit():
                        out.add("node_sockstat_sockets_used", float(pairs["used"]))
                    continue
                for key, raw in pairs.items():
                    if (proto, key) in self._known and raw.isdigit():
                        out.add(f"node_sockstat_{proto}_{key}", float(raw))
                        if key == "mem" and (proto, "mem_bytes") in self._known:
                            out.add(f"node_sockstat_{proto}_mem_bytes", float(raw) * self._page)
