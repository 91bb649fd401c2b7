"""Netfilter connection tracking, as node_exporter's conntrack collector: the table's fill from
/proc/sys/net/netfilter and the per-CPU statistics of /proc/net/stat/nf_conntrack summed over CPUs::

    node_nf_conntrack_entries 37
    node_nf_conntrack_entries_limit 262144
    node_nf_conntrack_stat_drop 0

A full table drops new connections silently (``nf_conntrack: table full, dropping packet``).
"""

from __future__ import annotations

from agent.catalog import MetricSet, MetricSpec
from agent.collectors.node.base import NodeFamily

__all__ = ["ConntrackCollector"]

# /proc/net/stat/nf_conntrack column -> help (node_exporter's text); the columns are hexadecimal per CPU.
_STATS = {
    "found": "Number of searched entries which were successful.",
    "invalid": "Number of packets seen which can not be tracked.",
    "ignore": "Number of packets seen which are already connected to a conntrack entry.",
    "insert": "Number of entries inserted into the list.",
    "insert_failed": "Number of entries for which list insertion was attempted but failed.",
    "drop": "Number of packets dropped due to conntrack failure.",
    "early_drop": "Number of dropped conntrack entries to make room for new ones, if maximum table size was "
                  "reached.",
    "search_restart": "Number of conntrack table lookups which had to be restarted due to hashtable resizes.",
}
_MAX_CPUS = 8192


class ConntrackCollector(NodeFamily):
    name = "conntrack"
    title = "连接跟踪 (Connection tracking)"
    requires = "sys/net/netfilter/nf_conntrack_count"
    metrics = (
        MetricSpec("node_nf_conntrack_entries", "gauge",
                   "Number of currently allocated flow entries for connection tracking."),
        MetricSpec("node_nf_conntrack_entries_limit", "gauge", "Maximum size of connection tracking table."),
        *(MetricSpec(f"node_nf_conntrack_stat_{k}", "gauge", text) for k, text in _STATS.items()),
    )

    def collect(self, out: MetricSet) -> None:
        out.add("node_nf_conntrack_entries", float(int(self.read_required().strip())))
        limit = self.read(self.proc / "sys/net/netfilter/nf_conntrack_max")
        if limit is not None and limit.strip().isdigit():
            out.add("node_nf_conntrack_entries_limit", float(limit.strip()))
        stats = self.read(self.proc / "net/stat/nf_conntrack")
        if stats is None:
            return
        lines = stats.split("\n")
        header = lines[0].split()
        sums = dict.fromkeys(_STATS, 0)
        for line in lines[1 : _MAX_CPUS + 1]:
            values = line.split()
            if len(values) != len(header):
                continue
            for column, raw in zip(header, values):
                if column in sums:
                    sums[column] += int(raw, 16)
        for column, total in sums.items():
            if column in header:
                out.add(f"node_nf_conntrack_stat_{column}", float(total))
