"""Memory error counters of the kernel's EDAC drivers, as node_exporter's edac collector
(/sys/devices/system/edac/mc/mc*/ and their csrow*/; Documentation/admin-guide/ras.rst)::

    node_edac_correctable_errors_total{controller="0"} 12
    node_edac_uncorrectable_errors_total{controller="0"} 0
    node_edac_csrow_correctable_errors_total{controller="0",csrow="1"} 12

Correctable (ECC) errors that keep growing are a memory module on its way out; an uncorrectable one has
already corrupted data or crashed a process.
"""

from __future__ import annotations

import re

from agent.catalog import MetricSet, MetricSpec
from agent.collector import NotApplicable
from agent.collectors.node.base import NodeFamily

__all__ = ["EdacCollector"]

_MAX = 256


class EdacCollector(NodeFamily):
    name = "edac"
    title = "内存纠错 (EDAC memory errors)"
    metrics = (
        MetricSpec("node_edac_correctable_errors_total", "counter", "Total correctable memory errors.",
                   ("controller",)),
        MetricSpec("node_edac_uncorrectable_errors_total", "counter", "Total uncorrectable memory errors.",
                   ("controller",)),
        MetricSpec("node_edac_csrow_correctable_errors_total", "counter",
                   "Total correctable memory errors for this csrow.", ("controller", "csrow")),
        MetricSpec("node_edac_csrow_uncorrectable_errors_total", "counter",
                   "Total uncorrectable memory errors for this csrow.", ("controller", "csrow")),
    )

    def _count(self, path: object) -> int:
        text = self.read(path)  # type: ignore[arg-type]
        if text is None or not text.strip().isdigit():
            raise RuntimeError(f"{path}: not readable as a count")
        return int(text)

    def collect(self, out: MetricSet) -> None:
        root = self.sys / "devices" / "system" / "edac" / "mc"
        controllers = sorted((p for p in root.glob("mc[0-9]*") if re.fullmatch(r"mc\d+", p.name)),
                             key=lambda p: int(p.name[2:]))[:_MAX]
        if not controllers:
            raise NotApplicable(f"no EDAC memory controller under {root} (no ECC memory or no EDAC driver)")
        for mc in controllers:
            c = mc.name[2:]
            out.add("node_edac_correctable_errors_total", self._count(mc / "ce_count"), {"controller": c})
            out.add("node_edac_csrow_correctable_errors_total", self._count(mc / "ce_noinfo_count"),
                    {"controller": c, "csrow": "unknown"})
            out.add("node_edac_uncorrectable_errors_total", self._count(mc / "ue_count"), {"controller": c})
            out.add("node_edac_csrow_uncorrectable_errors_total", self._count(mc / "ue_noinfo_count"),
                    {"controller": c, "csrow": "unknown"})
            for row in sorted(p for p in mc.glob("csrow[0-9]*") if re.fullmatch(r"csrow\d+", p.name))[:_MAX]:
                labels = {"controller": c, "csrow": row.name[5:]}
                out.add("node_edac_csrow_correctable_errors_total", self._count(row / "ce_count"), labels)
                out.add("node_edac_csrow_uncorrectable_errors_total", self._count(row / "ue_count"), labels)
