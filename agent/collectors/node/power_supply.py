"""Power supplies (mains, batteries, UPSes), as node_exporter's powersupplyclass collector
(/sys/class/power_supply/<name>/)::

    node_power_supply_online{power_supply="AC"} 1
    node_power_supply_capacity{power_supply="BAT0"} 76
    node_power_supply_voltage_volt{power_supply="BAT0"} 11.893
    node_power_supply_info{power_supply="BAT0",status="Discharging",technology="Li-ion",type="Battery"} 1

Integer attributes as they are, micro-units (µA, µV, µWh, µAh, µW) divided by 1e6, tenths of a degree by 10;
``node_power_supply_info`` carries the text attributes that are present (an absent one is an empty label, which
Prometheus treats as no label). A value that cannot be parsed is left out, never 0.
"""

from __future__ import annotations

import os
import re

from agent.catalog import MetricSet, MetricSpec
from agent.collector import NotApplicable
from agent.collectors.node.base import NodeFamily

__all__ = ["PowerSupplyCollector"]

_MAX = 64
# metric suffix -> (sysfs file, divisor), in node_exporter 1.5's three groups
_PLAIN = {"authentic": "authentic", "calibrate": "calibrate", "capacity": "capacity",
          "capacity_alert_max": "capacity_alert_max", "capacity_alert_min": "capacity_alert_min",
          "cyclecount": "cycle_count", "online": "online", "present": "present",
          "time_to_empty_seconds": "time_to_empty_now", "time_to_full_seconds": "time_to_full_now"}
_MICRO = {"current_boot": "current_boot", "current_max": "current_max", "current_ampere": "current_now",
          "energy_empty": "energy_empty", "energy_empty_design": "energy_empty_design", "energy_full": "energy_full",
          "energy_full_design": "energy_full_design", "energy_watthour": "energy_now", "voltage_boot": "voltage_boot",
          "voltage_max": "voltage_max", "voltage_max_design": "voltage_max_design", "voltage_min": "voltage_min",
          "voltage_min_design": "voltage_min_design", "voltage_volt": "voltage_now", "voltage_ocv": "voltage_ocv",
          "charge_control_limit": "charge_control_limit", "charge_control_limit_max": "charge_control_limit_max",
          "charge_counter": "charge_counter", "charge_empty": "charge_empty",
          "charge_empty_design": "charge_empty_design", "charge_full": "charge_full",
          "charge_full_design": "charge_full_design", "charge_ampere": "charge_now",
          "charge_term_current": "charge_term_current", "constant_charge_current": "constant_charge_current",
          "constant_charge_current_max": "constant_charge_current_max",
          "constant_charge_voltage": "constant_charge_voltage",
          "constant_charge_voltage_max": "constant_charge_voltage_max", "precharge_current": "precharge_current",
          "input_current_limit": "input_current_limit", "power_watt": "power_now"}
_TENTHS = {"temp_celsius": "temp", "temp_alert_max_celsius": "temp_alert_max",
           "temp_alert_min_celsius": "temp_alert_min", "temp_ambient_celsius": "temp_ambient",
           "temp_ambient_max_celsius": "temp_ambient_max", "temp_ambient_min_celsius": "temp_ambient_min",
           "temp_max_celsius": "temp_max", "temp_min_celsius": "temp_min"}
_INFO = ("capacity_level", "charge_type", "health", "manufacturer", "model_name", "serial_number", "status",
         "technology", "type", "usb_type", "scope")
_INT = re.compile(r"-?\d+")


def _spec(name: str) -> MetricSpec:
    return MetricSpec(f"node_power_supply_{name}", "gauge",
                      f"{name} value of /sys/class/power_supply/<power_supply>.", ("power_supply",))


class PowerSupplyCollector(NodeFamily):
    name = "power_supply"
    title = "电源与电池 (Power supplies)"
    metrics = (
        *(_spec(n) for n in (*_PLAIN, *_MICRO, *_TENTHS)),
        MetricSpec("node_power_supply_info", "gauge", "info of /sys/class/power_supply/<power_supply>.",
                   ("power_supply", *_INFO)),
    )

    def collect(self, out: MetricSet) -> None:
        root = self.sys / "class" / "power_supply"
        try:
            supplies = sorted(os.listdir(root))[:_MAX]
        except OSError:
            raise NotApplicable(f"{root} does not exist") from None
        if not supplies:
            raise NotApplicable(f"no power supply under {root}")
        for supply in supplies:
            base = root / supply
            values: dict[str, str] = {}
            try:
                files = sorted(os.listdir(base))[:256]
            except OSError:
                continue
            for f in files:
                if (base / f).is_file():
                    text = self.read(base / f)
                    if text is not None:
                        values[f] = text.strip()
            labels = {"power_supply": supply}
            for group, divisor in ((_PLAIN, 1.0), (_MICRO, 1e6), (_TENTHS, 10.0)):
                for metric, file in group.items():
                    raw = values.get(file)
                    if raw is not None and _INT.fullmatch(raw):
                        out.add(f"node_power_supply_{metric}", int(raw) / divisor, labels)
            out.add("node_power_supply_info", 1, {**labels, **{k: values.get(k, "") for k in _INFO}})
