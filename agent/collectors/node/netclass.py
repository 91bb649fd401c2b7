"""Network interface properties from /sys/class/net/<iface>/, as node_exporter's netclass collector::

    node_network_up{device="eno1"} 1
    node_network_speed_bytes{device="eno1"} 1.25e+08
    node_network_carrier_changes_total{device="eno2"} 7
    node_network_info{address="3c:ec:ef:12:34:56",broadcast="ff:ff:ff:ff:ff:ff",device="eno1",duplex="full",
                      ifalias="",operstate="up"} 1

A file the kernel refuses to read (``speed`` of a link that is down gives EINVAL) leaves that series out.
"""

from __future__ import annotations

import os
from typing import Optional

from agent.catalog import MetricSet, MetricSpec
from agent.collector import NotApplicable
from agent.collectors.node.base import NodeFamily
from agent.compat import Literal

__all__ = ["NetclassCollector"]

# metric suffix, sysfs attribute, type
_FIELDS: tuple[tuple[str, str, Literal["gauge", "counter"]], ...] = (
    ("address_assign_type", "addr_assign_type", "gauge"),
    ("carrier", "carrier", "gauge"),
    ("carrier_changes_total", "carrier_changes", "counter"),
    ("carrier_up_changes_total", "carrier_up_count", "counter"),
    ("carrier_down_changes_total", "carrier_down_count", "counter"),
    ("device_id", "dev_id", "gauge"),
    ("dormant", "dormant", "gauge"),
    ("flags", "flags", "gauge"),
    ("iface_id", "ifindex", "gauge"),
    ("iface_link", "iflink", "gauge"),
    ("iface_link_mode", "link_mode", "gauge"),
    ("mtu_bytes", "mtu", "gauge"),
    ("name_assign_type", "name_assign_type", "gauge"),
    ("net_dev_group", "netdev_group", "gauge"),
    ("speed_bytes", "speed", "gauge"),
    ("transmit_queue_length", "tx_queue_len", "gauge"),
    ("protocol_type", "type", "gauge"),
)
_INFO = ("device", "address", "broadcast", "duplex", "operstate", "ifalias")
_MAX = 4096


def _int(text: Optional[str]) -> Optional[int]:
    if text is None:
        return None
    value = text.strip()
    try:
        return int(value, 16) if value.lower().startswith("0x") else int(value)
    except ValueError:
        return None


class NetclassCollector(NodeFamily):
    name = "netclass"
    title = "网卡属性 (Network interfaces)"
    metrics = (
        MetricSpec("node_network_up", "gauge", "Value is 1 if operstate is 'up', 0 otherwise.", ("device",)),
        MetricSpec("node_network_info", "gauge", "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
                   _INFO),
        *(MetricSpec(f"node_network_{suffix}", typ, f"Network device property: {suffix}", ("device",))
          for suffix, _, typ in _FIELDS),
    )

    def collect(self, out: MetricSet) -> None:
        root = self.sys / "class" / "net"
        try:
            devices = sorted(d for d in os.listdir(root) if (root / d).is_dir())[:_MAX]
        except OSError:
            raise NotApplicable(f"{root} does not exist") from None
        for device in devices:
            base = f"{root}/{device}/"  # a str: ~90 files a cycle, and a Path join costs as much as the read

            def text(attr: str, base: str = base) -> str:
                value = self.read(base + attr)
                return value.strip() if value is not None else ""

            operstate = text("operstate")
            out.add("node_network_up", 1 if operstate == "up" else 0, {"device": device})
            out.add("node_network_info", 1, {"device": device, "address": text("address"),
                                             "broadcast": text("broadcast"), "duplex": text("duplex"),
                                             "operstate": operstate, "ifalias": text("ifalias")})
            for suffix, attr, _ in _FIELDS:
                value = _int(self.read(base + attr))
                if value is None:
                    continue
                if suffix == "speed_bytes":
                    value = int(value * 1000 * 1000 / 8)  # Mbit/s -> bytes/s, as node_exporter
                out.add(f"node_network_{suffix}", value, {"device": device})
