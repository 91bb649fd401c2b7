"""Thermal zones and cooling devices, as node_exporter's thermal_zone collector (/sys/class/thermal)::

    node_thermal_zone_temp{type="x86_pkg_temp",zone="0"} 52
    node_cooling_device_cur_state{name="0",type="Processor"} 0
    node_cooling_device_max_state{name="0",type="Processor"} 10
"""

from __future__ import annotations

import os
import re

from agent.catalog import MetricSet, MetricSpec
from agent.collector import NotApplicable
from agent.collectors.node.base import NodeFamily

__all__ = ["ThermalZoneCollector"]

_MAX = 512


class ThermalZoneCollector(NodeFamily):
    name = "thermal_zone"
    title = "温度区域 (Thermal zones)"
    metrics = (
        MetricSpec("node_thermal_zone_temp", "gauge", "Zone temperature in Celsius", ("zone", "type")),
        MetricSpec("node_cooling_device_cur_state", "gauge", "Current throttle state of the cooling device",
                   ("name", "type")),
        MetricSpec("node_cooling_device_max_state", "gauge", "Maximum throttle state of the cooling device",
                   ("name", "type")),
    )

    def collect(self, out: MetricSet) -> None:
        root = self.sys / "class" / "thermal"
        try:
            entries = sorted(os.listdir(root))[:_MAX]
        except OSError:
            raise NotApplicable(f"{root} does not exist") from None
        zones = [e for e in entries if re.fullmatch(r"thermal_zone\d+", e)]
        devices = [e for e in entries if re.fullmatch(r"cooling_device\d+", e)]
        if not zones and not devices:
            raise NotApplicable(f"no thermal zone or cooling device under {root}")
        for entry in zones:
            kind, temp = self.read(root / entry / "type"), self.read(root / entry / "temp")
            if kind is None or temp is None or not temp.strip().lstrip("-").isdigit():
                continue  # a zone whose sensor cannot be read right now (EIO/ENODATA): no value, not 0
            out.add("node_thermal_zone_temp", int(temp) / 1000.0,
                    {"zone": entry[len("thermal_zone"):], "type": kind.strip()})
        for entry in devices:
            kind = self.read(root / entry / "type")
            cur, top = self.read(root / entry / "cur_state"), self.read(root / entry / "max_state")
            if kind is None:
                continue
            labels = {"name": entry[len("cooling_device"):], "type": kind.strip()}
            if cur is not None and cur.strip().isdigit():
                out.add("node_cooling_device_cur_state", float(cur), labels)
            if top is not None and top.strip().isdigit():
                out.add("node_cooling_device_max_state", float(top), labels)
