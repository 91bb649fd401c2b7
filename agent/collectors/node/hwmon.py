"""Hardware sensors (temperatures, fans, voltages, currents, power), as node_exporter's hwmon collector
(/sys/class/hwmon/hwmon*/ and their device/ directories; Documentation/hwmon/sysfs-interface.rst)::

    node_hwmon_temp_celsius{chip="platform_coretemp_0",sensor="temp1"} 45
    node_hwmon_temp_crit_celsius{chip="platform_coretemp_0",sensor="temp1"} 100
    node_hwmon_fan_rpm{chip="it8728",sensor="fan1"} 1250
    node_hwmon_sensor_label{chip="platform_coretemp_0",label="Package id 0",sensor="temp1"} 1

Names follow node_exporter 1.5's rules exactly (``<type>_<property>`` plus the type's unit, alarms, faults and
beeps without one, its ``chip`` naming from the device path). node_exporter builds names from whatever files
a driver has; the catalogue here is fixed, so it holds every property the kernel's sysfs interface documents
for those types, and a driver's undocumented extra file is left out (logged once).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Optional

from agent.catalog import MetricSet, MetricSpec
from agent.collector import NotApplicable
from agent.collectors.node.base import NodeFamily
from agent.compat import Literal

__all__ = ["HwmonCollector", "metric_for", "chip_name"]

log = logging.getLogger(__name__)

_FILENAME = re.compile(r"^(?P<type>[^0-9]+)(?P<id>[0-9]*)?(_(?P<property>.+))?$")
_TYPES = ("vrm", "beep_enable", "update_interval", "in", "cpu", "fan", "pwm", "temp", "curr", "power", "energy",
          "humidity", "intrusion")
_INVALID = re.compile(r"[^a-z0-9:_]")
_MAX_CHIPS = 256
_MAX_FILES = 1024

# The properties Documentation/hwmon/sysfs-interface.rst documents per type ("" = the bare file, e.g. pwm1).
_PROPERTIES: dict[str, tuple[str, ...]] = {
    "in": ("input", "min", "max", "lcrit", "crit", "average", "lowest", "highest", "rated_min", "rated_max",
           "enable", "alarm", "min_alarm", "max_alarm", "lcrit_alarm", "crit_alarm", "beep", "label"),
    "cpu": ("vid",),
    "fan": ("input", "min", "max", "target", "div", "pulses", "enable", "alarm", "min_alarm", "max_alarm", "fault",
            "beep", "label"),
    "pwm": ("", "enable", "mode", "freq", "auto_channels_temp", "label"),
    "temp": ("input", "type", "min", "max", "max_hyst", "min_hyst", "crit", "crit_hyst", "emergency",
             "emergency_hyst", "lcrit", "lcrit_hyst", "offset", "lowest", "highest", "rated_min", "rated_max",
             "enable", "alarm", "min_alarm", "max_alarm", "crit_alarm", "lcrit_alarm", "emergency_alarm", "fault",
             "beep", "label"),
    "curr": ("input", "min", "max", "lcrit", "crit", "average", "lowest", "highest", "rated_min", "rated_max",
             "enable", "alarm", "min_alarm", "max_alarm", "lcrit_alarm", "crit_alarm", "beep", "label"),
    "power": ("input", "average", "average_interval", "average_interval_max", "average_interval_min",
              "average_highest", "average_lowest", "average_max", "average_min", "input_highest", "input_lowest",
              "accuracy", "cap", "cap_hyst", "cap_max", "cap_min", "max", "crit", "rated_min", "rated_max",
              "enable", "alarm", "cap_alarm", "max_alarm", "crit_alarm", "label"),
    "energy": ("input", "enable", "label"),
    "humidity": ("input", "enable", "label"),
    "intrusion": ("alarm", "beep"),
}
_UNIT_TEXT = {"in": "voltage", "cpu": "voltage", "temp": "temperature", "curr": "current"}


def _clean(name: str) -> str:
    return _INVALID.sub("_", name.lower()).strip("_")


def metric_for(sensor_type: str, prop: str, has_bare: bool = False
               ) -> Optional[tuple[str, str, Literal["gauge", "counter"], float]]:
    """(metric name, help, type, scale) for one sensor file, by node_exporter 1.5's rules; None for none."""
    if prop == "label":
        return None
    name = "node_hwmon_" + sensor_type
    if prop == "input":
        if has_bare:
            name += "_input"
    elif prop:
        name += "_" + _clean(prop)
    if prop in ("fault", "alarm"):
        return name, f"Hardware sensor {prop} status ({sensor_type})", "gauge", 1.0
    if prop == "beep":
        return name + "_enabled", "Hardware monitor sensor has beeping enabled", "gauge", 1.0
    if sensor_type in ("in", "cpu"):
        return name + "_volts", f"Hardware monitor for voltage ({prop})", "gauge", 0.001
    if sensor_type == "temp" and prop != "type":
        return name + "_celsius", f"Hardware monitor for temperature ({prop or 'input'})", "gauge", 0.001
    if sensor_type == "curr":
        return name + "_amps", f"Hardware monitor for current ({prop})", "gauge", 0.001
    if sensor_type == "energy":
        return name + "_joule_total", f"Hardware monitor for joules used so far ({prop})", "counter", 1e-6
    if sensor_type == "power" and prop == "accuracy":
        return name, "Hardware monitor power meter accuracy, as a ratio", "gauge", 1e-6
    if sensor_type == "power" and prop in ("average_interval", "average_interval_min", "average_interval_max"):
        return name + "_seconds", f"Hardware monitor power usage update interval ({prop})", "gauge", 0.001
    if sensor_type == "power":
        return name + "_watt", f"Hardware monitor for power usage in watts ({prop})", "gauge", 1e-6
    if sensor_type == "humidity":
        return (name, "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a "
                f"percentage) ({prop})", "gauge", 1e-6)
    if sensor_type == "fan" and prop in ("input", "min", "max", "target"):
        return name + "_rpm", f"Hardware monitor for fan revolutions per minute ({prop})", "gauge", 1.0
    return name, f"Hardware monitor {sensor_type} element {prop}", "gauge", 1.0


def _specs() -> tuple[MetricSpec, ...]:
    labels = ("chip", "sensor")
    specs: dict[str, MetricSpec] = {
        "node_hwmon_chip_names": MetricSpec("node_hwmon_chip_names", "gauge",
                                            "Annotation metric for human-readable chip names", ("chip", "chip_name")),
        "node_hwmon_sensor_label": MetricSpec("node_hwmon_sensor_label", "gauge", "Label for given chip and sensor",
                                              ("chip", "sensor", "label")),
        "node_hwmon_beep_enabled": MetricSpec("node_hwmon_beep_enabled", "gauge", "Hardware beep enabled", labels),
        "node_hwmon_voltage_regulator_version": MetricSpec("node_hwmon_voltage_regulator_version", "gauge",
                                                           "Hardware voltage regulator", labels),
        "node_hwmon_update_interval_seconds": MetricSpec("node_hwmon_update_interval_seconds", "gauge",
                                                         "Hardware monitor update interval", labels, "seconds"),
    }
    for sensor_type, props in _PROPERTIES.items():
        for prop in props:
            for bare in (False, True) if prop == "input" else (False,):
                found = metric_for(sensor_type, prop, bare)
                if found is not None and found[0] not in specs:
                    specs[found[0]] = MetricSpec(found[0], found[2], found[1], labels)
    return tuple(specs.values())


def chip_name(directory: Path) -> Optional[str]:
    """node_exporter's stable chip label: <bus>_<device> of the device path, else the name file, else hwmonN."""
    device = directory / "device"
    if os.path.lexists(device):
        real = os.path.realpath(device)
        prefix, dev_name = os.path.split(real)
        dev_type = os.path.basename(prefix.rstrip("/"))
        if _clean(dev_type) and _clean(dev_name):
            return _clean(dev_type) + "_" + _clean(dev_name)
        if _clean(dev_name):
            return _clean(dev_name)
    try:
        name = (directory / "name").read_text(errors="replace")
        if _clean(name):
            return _clean(name)
    except OSError:
        pass
    return _clean(os.path.basename(os.path.realpath(directory))) or None


class HwmonCollector(NodeFamily):
    name = "hwmon"
    title = "硬件传感器 (Hardware sensors)"
    metrics = _specs()

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._known = {s.name for s in self.metrics}
        self._warned: set[str] = set()

    def _sensor_files(self, directory: Path, data: dict[str, dict[str, str]]) -> None:
        try:
            entries = sorted(os.listdir(directory))[:_MAX_FILES]
        except OSError:
            return
        for filename in entries:
            m = _FILENAME.match(filename)
            if m is None or m.group("type") not in _TYPES:
                continue
            path = directory / filename
            if not path.is_file():
                continue
            try:
                with open(path, "rb", buffering=0) as fh:
                    raw = fh.read(128)  # one read: broken drivers answer EAGAIN forever to a read loop
            except OSError:
                continue
            sensor = m.group("type") + str(int(m.group("id") or "0"))
            data.setdefault(sensor, {})[m.group("property") or ""] = raw.decode("utf-8", "replace").strip("\n")

    def collect(self, out: MetricSet) -> None:
        root = self.sys / "class" / "hwmon"
        try:
            chips = sorted(os.listdir(root))[:_MAX_CHIPS]
        except OSError:
            raise NotApplicable(f"{root} does not exist (no hardware sensors exposed)") from None
        for entry in chips:
            directory = root / entry
            if not directory.is_dir():
                continue
            chip = chip_name(directory)
            if chip is None:
                continue
            data: dict[str, dict[str, str]] = {}
            self._sensor_files(directory, data)
            if (directory / "device").exists():
                self._sensor_files(directory / "device", data)
            try:
                human = _clean((directory / "name").read_text(errors="replace"))
                if human:
                    out.add("node_hwmon_chip_names", 1, {"chip": chip, "chip_name": human})
            except OSError:
                pass
            for sensor, props in data.items():
                self._emit(out, chip, sensor, props)

    def _emit(self, out: MetricSet, chip: str, sensor: str, props: dict[str, str]) -> None:
        labels = {"chip": chip, "sensor": sensor}
        sensor_type = _FILENAME.match(sensor).group("type")  # type: ignore[union-attr]
        if "label" in props:
            out.add("node_hwmon_sensor_label", 1, {**labels, "label": props["label"]})
        specials = {"beep_enable": "node_hwmon_beep_enabled", "vrm": "node_hwmon_voltage_regulator_version",
                    "update_interval": "node_hwmon_update_interval_seconds"}
        if sensor_type in specials:
            try:
                value = float(props.get("", ""))
            except ValueError:
                return
            if sensor_type == "beep_enable":
                value = 1.0 if props.get("") == "1" else 0.0
            elif sensor_type == "update_interval":
                value *= 0.001
            out.add(specials[sensor_type], value, labels)
            return
        for prop, text in props.items():
            found = metric_for(sensor_type, prop, "" in props)
            if found is None:
                continue
            try:
                value = float(text)
            except ValueError:
                continue
            name, _, _, scale = found
            if name not in self._known:
                if name not in self._warned:
                    self._warned.add(name)
                    log.info("hwmon: %s (%s of %s) is not a documented sensor property; left out", name, prop, chip)
                continue
            out.add(name, value * scale, labels)
