"""Disk health from SMART (smartmontools >= 7, ``smartctl --json``) under the names of the community's
smartctl_exporter, so its dashboards and the shipped alerts work::

    smartctl_device_smart_status{device="sda"} 1
    smartctl_device_attribute{attribute_id="5",attribute_name="Reallocated_Sector_Ct",attribute_value_type="raw",
                              device="sda",...} 304
    smartctl_device_critical_warning{device="nvme0"} 16
    smartctl_device_media_errors{device="nvme0"} 0

Failing disks are the commonest hardware fault of an old township server. Runs on a slow interval (30 min):
``smartctl --scan-open`` finds the disks (or the ``devices`` option names them), then one
``smartctl --json --info --health --attributes --log=error --nocheck=standby`` per disk, each with its own
timeout. The hardened unit cannot open disks (no CAP_SYS_RAWIO/CAP_SYS_ADMIN, PrivateDevices): there
shaobing-smart.service, a short root job every 30 min, runs the same queries (``shaobing smart-snapshot``) and
this collector reads its snapshot while it is fresh (``snapshot_dir``, ``snapshot_max_age``), else runs smartctl
itself. A disk that cannot be read (no permission, a USB bridge smartctl does not know, a timeout) exports
nothing rather than a healthy 0; ``shaobing_smart_devices_unchecked`` counts them and the scan report says why.
A disk in standby is not woken up and keeps its last values out.

Differences from smartctl_exporter: ``smartctl_device_power_on_seconds`` is a gauge (the catalogue's counters
end in ``_total``); serial numbers are exported as it does (they identify hardware, not people).
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector, CollectorOptions, NotApplicable
from agent.platform.smartctl import device_argv, read_json, scan_devices
from agent.process import CommandError
from agent.report import Finding, Section
from agent.smart_snapshot import Snapshot, read_snapshot

__all__ = ["SmartCollector", "SmartOptions", "device_label", "DeviceHealth", "parse_device"]

log = logging.getLogger(__name__)

_INFO_LABELS = ("device", "interface", "protocol", "model_family", "model_name", "serial_number",
                "ata_additional_product_id", "firmware_version", "ata_version", "sata_version", "form_factor",
                "scsi_vendor", "scsi_product", "scsi_revision", "scsi_version")
_ATTR_LABELS = ("device", "attribute_name", "attribute_flags_short", "attribute_flags_long", "attribute_value_type",
                "attribute_id")
_LONG_FLAGS = ("prefailure", "updated_online", "performance", "error_rate", "event_count", "auto_keep")
# smartctl's exit status bits (smartctl(8) RETURN VALUES): 1 command line, 2 device open failed / standby,
# 4 a SMART command failed; 8 "DISK FAILING", 16 prefail attribute <= threshold, 32 usage attribute was,
# 64 error log has errors, 128 self-test log has errors.
_UNREADABLE = 0b011
_NVME = {
    "critical_warning": "smartctl_device_critical_warning",
    "media_errors": "smartctl_device_media_errors",
    "percentage_used": "smartctl_device_percentage_used",
    "available_spare": "smartctl_device_available_spare",
    "available_spare_threshold": "smartctl_device_available_spare_threshold",
    "num_err_log_entries": "smartctl_device_num_err_log_entries",
}


@dataclass
class SmartOptions(CollectorOptions):
    smartctl: str = "smartctl"
    # Disks to read ("/dev/sda", "/dev/bus/0 -d megaraid,1"); empty: what `smartctl --scan-open` finds.
    devices: list[str] = field(default_factory=list)
    device_timeout: float = field(default=30.0, metadata={"duration": True, "min": 1.0})
    # Where shaobing-smart.service (root, every 30 min) leaves its snapshot for the hardened agent, which
    # cannot open disks itself; used while younger than snapshot_max_age, else smartctl is run directly.
    snapshot_dir: str = "/var/lib/shaobing-smart"
    snapshot_max_age: float = field(default=5400.0, metadata={"duration": True, "min": 60.0})


@dataclass
class DeviceHealth:
    device: str
    info: dict[str, str]
    values: list[tuple[str, dict[str, str], float]]
    passed: Optional[bool]
    exit_status: int
    failing: list[str] = field(default_factory=list)  # what the scan report says, in Chinese


def device_label(name: str, dev_type: str) -> str:
    """smartctl_exporter's device label: /dev/sda -> sda, /dev/bus/0 with -d megaraid,1 -> bus_0_megaraid_1."""
    label = re.sub(r"^/dev/(?:disk/by-id/|disk/by-path/|)", "", name).replace("/", "_")
    return f"{label}_{dev_type.replace(',', '_')}" if "," in dev_type else label


def _num(doc: Any) -> Optional[float]:
    if isinstance(doc, bool):
        return 1.0 if doc else 0.0
    return float(doc) if isinstance(doc, (int, float)) else None


def parse_device(doc: dict[str, Any]) -> DeviceHealth:
    """One ``smartctl --json`` answer (json_format_version 1)."""
    dev = doc.get("device") or {}
    label = device_label(str(dev.get("name", "")), str(dev.get("type", "")))
    model = doc.get("model_name") or doc.get("scsi_model_name") or ""
    raw_info = {
        "interface": dev.get("type", ""), "protocol": dev.get("protocol", ""),
        "model_family": doc.get("model_family", ""), "model_name": model,
        "serial_number": doc.get("serial_number", ""),
        "ata_additional_product_id": doc.get("ata_additional_product_id", ""),
        "firmware_version": doc.get("firmware_version", ""),
        "ata_version": (doc.get("ata_version") or {}).get("string", ""),
        "sata_version": (doc.get("sata_version") or {}).get("string", ""),
        "form_factor": (doc.get("form_factor") or {}).get("name", ""),
        "scsi_vendor": doc.get("scsi_vendor", ""), "scsi_product": doc.get("scsi_product", ""),
        "scsi_revision": doc.get("scsi_revision", ""), "scsi_version": doc.get("scsi_version", ""),
    }
    info = {"device": label, **{k: str(v).strip() for k, v in raw_info.items()}}
    exit_status = int((doc.get("smartctl") or {}).get("exit_status", 0))
    values: list[tuple[str, dict[str, str], float]] = []
    d = {"device": label}
    passed = (doc.get("smart_status") or {}).get("passed")
    health = DeviceHealth(label, info, values, passed if isinstance(passed, bool) else None, exit_status)
    if health.passed is not None:
        values.append(("smartctl_device_smart_status", d, 1.0 if health.passed else 0.0))
        if not health.passed:
            health.failing.append("SMART 自检结论为 FAILED (overall-health self-assessment failed)")
    values.append(("smartctl_device_smartctl_exit_status", d, float(exit_status)))
    for attr in ((doc.get("ata_smart_attributes") or {}).get("table") or [])[:256]:
        flags = attr.get("flags") or {}
        labels = {**d, "attribute_name": str(attr.get("name", "")).strip(),
                  "attribute_flags_short": str(flags.get("string", "")).strip(),
                  "attribute_flags_long": ",".join(f for f in _LONG_FLAGS if flags.get(f) is True),
                  "attribute_id": str(attr.get("id", ""))}
        for kind, value in (("value", attr.get("value")), ("worst", attr.get("worst")),
                            ("thresh", attr.get("thresh")), ("raw", (attr.get("raw") or {}).get("value"))):
            number = _num(value)
            if number is not None:
                values.append(("smartctl_device_attribute", {**labels, "attribute_value_type": kind}, number))
        when_failed = str(attr.get("when_failed", "")).strip()
        if when_failed in ("now", "past"):
            health.failing.append(f"属性 {labels['attribute_name']} 低于阈值 ({when_failed})")
        raw = _num((attr.get("raw") or {}).get("value"))
        if attr.get("id") in (5, 197, 198) and raw:
            health.failing.append(f"{labels['attribute_name']} = {int(raw)}")
    pot = doc.get("power_on_time") or {}
    if pot:
        values.append(("smartctl_device_power_on_seconds", d,
                       float(pot.get("hours", 0)) * 3600 + float(pot.get("minutes", 0)) * 60))
    for key, value in (doc.get("temperature") or {}).items():
        number = _num(value)
        if number is not None:
            values.append(("smartctl_device_temperature", {**d, "temperature_type": str(key)}, number))
    nvme = doc.get("nvme_smart_health_information_log") or {}
    for key, name in _NVME.items():
        number = _num(nvme.get(key))
        if number is not None:
            values.append((name, d, number))
    if nvme.get("critical_warning"):
        health.failing.append(f"NVMe critical_warning = {nvme['critical_warning']}")
    if nvme.get("media_errors"):
        health.failing.append(f"NVMe media_errors = {nvme['media_errors']}")
    grown = _num(doc.get("scsi_grown_defect_list"))
    if grown is not None:
        values.append(("smartctl_scsi_grown_defect_list", d, grown))
        if grown:
            health.failing.append(f"SCSI grown defect list = {int(grown)}")
    for direction in ("read", "write"):
        errors = _num(((doc.get("scsi_error_counter_log") or {}).get(direction) or {}).get("total_uncorrected_errors"))
        if errors is not None:
            values.append((f"smartctl_{direction}_total_uncorrected_errors", d, errors))
    return health


class SmartCollector(Collector):
    name = "smart"
    title = "磁盘健康 (Disk SMART health)"
    options_class = SmartOptions
    default_interval = 1800.0
    default_timeout = 600.0
    default_jitter = 120.0
    metrics = (
        MetricSpec("smartctl_devices", "gauge", "Number of devices configured or dynamically discovered"),
        MetricSpec("smartctl_device", "gauge", "Device info", _INFO_LABELS),
        MetricSpec("smartctl_device_smart_status", "gauge", "General smart status", ("device",)),
        MetricSpec("smartctl_device_smartctl_exit_status", "gauge", "Exit status of smartctl on device", ("device",)),
        MetricSpec("smartctl_device_attribute", "gauge", "Device attributes", _ATTR_LABELS),
        MetricSpec("smartctl_device_power_on_seconds", "gauge", "Device power on seconds", ("device",), "seconds"),
        MetricSpec("smartctl_device_temperature", "gauge", "Device temperature celsius",
                   ("device", "temperature_type")),
        MetricSpec("smartctl_device_critical_warning", "gauge",
                   "This field indicates critical warnings for the state of the controller", ("device",)),
        MetricSpec("smartctl_device_media_errors", "gauge",
                   "Contains the number of occurrences where the controller detected an unrecovered data integrity "
                   "error. Errors such as uncorrectable ECC, CRC checksum failure, or LBA tag mismatch are included "
                   "in this field", ("device",)),
        MetricSpec("smartctl_device_percentage_used", "gauge", "Device write percentage used", ("device",)),
        MetricSpec("smartctl_device_available_spare", "gauge",
                   "Normalized percentage (0 to 100%) of the remaining spare capacity available", ("device",)),
        MetricSpec("smartctl_device_available_spare_threshold", "gauge",
                   "When the Available Spare falls below the threshold indicated in this field, an asynchronous "
                   "event completion may occur. The value is indicated as a normalized percentage (0 to 100%)",
                   ("device",)),
        MetricSpec("smartctl_device_num_err_log_entries", "gauge",
                   "Contains the number of Error Information log entries over the life of the controller",
                   ("device",)),
        MetricSpec("smartctl_scsi_grown_defect_list", "gauge", "Device SCSI grown defect list counter", ("device",)),
        MetricSpec("smartctl_read_total_uncorrected_errors", "gauge", "Read Total Uncorrected Errors", ("device",)),
        MetricSpec("smartctl_write_total_uncorrected_errors", "gauge", "Write Total Uncorrected Errors", ("device",)),
        MetricSpec("shaobing_smart_devices_unchecked", "gauge",
                   "Disks smartctl could not read this run (permission, unknown bridge, timeout, standby); their "
                   "SMART series are absent, not healthy. The scan report says why."),
    )

    def __init__(self, options: SmartOptions, context: AgentContext) -> None:
        super().__init__(options, context)
        self.opts = options
        self.last: list[DeviceHealth] = []
        self.notes: list[str] = []

    def _fresh_snapshot(self) -> Optional[Snapshot]:
        """The root helper's snapshot when it is fresh enough to stand for this run, else None."""
        if not self.opts.snapshot_dir:
            return None
        directory = Path(self.opts.snapshot_dir)
        try:
            snap = read_snapshot(directory)
        except ValueError as exc:
            self.notes.append(f"SMART 快照损坏, 改为直接读取 (snapshot unusable: {exc})")
            return None
        if snap is None:
            return None
        age = self.context.clock() - snap.time
        if not -300 <= age <= self.opts.snapshot_max_age:
            self.notes.append(f"SMART 快照已 {age / 60:.0f} 分钟未更新 (snapshot in {directory} is stale: is "
                              "shaobing-smart.timer running?); 改为直接读取 (reading the disks directly)")
            return None
        return snap

    def _direct(self) -> list[tuple[list[str], Optional[dict[str, Any]], str]]:
        smartctl = shutil.which(self.opts.smartctl)
        if smartctl is None:
            raise NotApplicable(f"{self.opts.smartctl} not found (install smartmontools >= 7)")
        out: list[tuple[list[str], Optional[dict[str, Any]], str]] = []
        for dev in scan_devices(smartctl, self.opts.devices, self.opts.device_timeout):
            try:
                out.append((dev, read_json(device_argv(smartctl, dev), self.opts.device_timeout), ""))
            except CommandError as exc:
                out.append((dev, None, str(exc)))
        return out

    def collect(self, out: MetricSet) -> None:
        self.last, self.notes = [], []
        snap = self._fresh_snapshot()
        answers = snap.devices if snap is not None else self._direct()
        if not answers:
            raise NotApplicable("smartctl --scan-open found no disks (virtual machine or no SMART-capable disk)")
        if snap is not None:
            self.notes.append(f"读取 root 助手的快照 (read the snapshot {self.opts.snapshot_dir} of "
                              f"{time.strftime('%H:%M', time.localtime(snap.time))})")
        unchecked = 0
        for dev, doc, error in answers:
            if doc is None:
                unchecked += 1
                self.notes.append(f"{dev[0]}: 无法读取 SMART, 结果未知 (could not check: {error})")
                continue
            health = parse_device(doc)
            if health.exit_status & _UNREADABLE or ("smart_status" not in doc and "ata_smart_attributes" not in doc
                                                    and "nvme_smart_health_information_log" not in doc):
                unchecked += 1
                messages = "; ".join(str(m.get("string", "")) for m in (doc.get("smartctl") or {}).get("messages", [])
                                     if isinstance(m, dict))[:300]
                self.notes.append(f"{dev[0]}: 无法读取 SMART, 结果未知 (exit status {health.exit_status}: "
                                  f"{messages or 'no SMART data'})")
                continue
            self.last.append(health)
            out.add("smartctl_device", 1, health.info)
            for name, labels, value in health.values:
                out.add(name, value, labels)
        out.add("smartctl_devices", len(answers))
        out.add("shaobing_smart_devices_unchecked", unchecked)

    def report(self) -> Optional[Section]:
        if not self.last and not self.notes:
            return None
        section = Section(self.title)
        for h in self.last:
            if h.failing:
                where = f"{h.device} ({h.info.get('model_name') or '?'}, SN {h.info.get('serial_number') or '?'})"
                section.findings.append(Finding(
                    "critical" if h.passed is False else "warning",
                    f"磁盘 {where} 有故障迹象 (disk health): {'; '.join(h.failing[:5])}",
                    "磁盘自我诊断报告了坏扇区、介质错误或整体失败：数据随时可能丢失。",
                    "立即备份该盘数据并安排更换；若在 RAID 中, 先确认阵列冗余 (cat /proc/mdstat)。",
                ))
        section.notes.extend(self.notes)
        return section
