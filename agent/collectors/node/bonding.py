"""Bonded network interfaces, as node_exporter's bonding collector (/sys/class/net/bonding_masters, each
master's bonding/slaves and each slave's bonding_slave/mii_status)::

    node_bonding_slaves{master="bond0"} 2
    node_bonding_active{master="bond0"} 1

A bond with one link down still carries traffic, so the failed cable goes unnoticed until the second one
fails: ShaobingBondSlaveDown fires on ``node_bonding_active < node_bonding_slaves``.
"""

from __future__ import annotations

from agent.catalog import MetricSet, MetricSpec
from agent.collector import NotApplicable
from agent.collectors.node.base import NodeFamily

__all__ = ["BondingCollector"]

_MAX = 256


class BondingCollector(NodeFamily):
    name = "bonding"
    title = "网卡绑定 (Bonding)"
    metrics = (
        MetricSpec("node_bonding_slaves", "gauge", "Number of configured slaves per bonding interface.", ("master",)),
        MetricSpec("node_bonding_active", "gauge", "Number of active slaves per bonding interface.", ("master",)),
    )

    def collect(self, out: MetricSet) -> None:
        net = self.sys / "class" / "net"
        masters = self.read(net / "bonding_masters")
        if masters is None:
            raise NotApplicable(f"{net / 'bonding_masters'} does not exist (bonding module not loaded)")
        for master in masters.split()[:_MAX]:
            slaves = (self.read(net / master / "bonding" / "slaves") or "").split()[:_MAX]
            active = 0
            for slave in slaves:
                # lower_<slave> since 4.x; slave_<slave> before; the slave's own directory as a last resort
                for where in (net / master / f"lower_{slave}", net / master / f"slave_{slave}", net / slave):
                    status = self.read(where / "bonding_slave" / "mii_status")
                    if status is not None:
                        active += status.strip() == "up"
                        break
            out.add("node_bonding_slaves", len(slaves), {"master": master})
            out.add("node_bonding_active", active, {"master": master})
