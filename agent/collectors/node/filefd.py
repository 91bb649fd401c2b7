"""File descriptors of the whole system, as node_exporter's filefd collector (/proc/sys/fs/file-nr)::

    node_filefd_allocated 356
    node_filefd_maximum 2.466116e+06
"""

from __future__ import annotations

from agent.catalog import MetricSet, MetricSpec
from agent.collectors.node.base import NodeFamily

__all__ = ["FilefdCollector"]


class FilefdCollector(NodeFamily):
    name = "filefd"
    title = "文件描述符 (File descriptors)"
    requires = "sys/fs/file-nr"
    metrics = (
        MetricSpec("node_filefd_allocated", "gauge", "File descriptor statistics: allocated."),
        MetricSpec("node_filefd_maximum", "gauge", "File descriptor statistics: maximum."),
    )

    def collect(self, out: MetricSet) -> None:
        # "allocated  unused(always 0 since 2.6)  maximum"
        fields = self.read_required().split()
        if len(fields) != 3 or not all(f.isdigit() for f in fields):
            raise RuntimeError(f"{self.proc / self.requires}: expected three numbers, got {fields[:5]!r}")
        out.add("node_filefd_allocated", float(fields[0]))
        out.add("node_filefd_maximum", float(fields[2]))
