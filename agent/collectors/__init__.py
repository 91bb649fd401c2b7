"""The collectors, one module per concern. ``registry()`` lists their classes in a stable order."""

from __future__ import annotations

import importlib

from agent.collector import Collector

__all__ = ["registry", "by_name"]

# Module name -> class name. Adding a collector means adding its line here.
_COLLECTORS: tuple[tuple[str, str], ...] = (
    ("health", "HealthCollector"),
    ("node.filefd", "FilefdCollector"),
    ("node.entropy", "EntropyCollector"),
    ("node.pressure", "PressureCollector"),
    ("node.conntrack", "ConntrackCollector"),
    ("node.sockstat", "SockstatCollector"),
    ("node.netstat", "NetstatCollector"),
    ("node.mdadm", "MdadmCollector"),
    ("node.bonding", "BondingCollector"),
    ("node.netclass", "NetclassCollector"),
    ("node.softnet", "SoftnetCollector"),
    ("node.arp", "ArpCollector"),
    ("node.udp_queues", "UdpQueuesCollector"),
    ("node.hwmon", "HwmonCollector"),
    ("node.thermal_zone", "ThermalZoneCollector"),
    ("node.edac", "EdacCollector"),
    ("node.power_supply", "PowerSupplyCollector"),
    ("node.systemd", "SystemdCollector"),
    ("node.textfile", "TextfileCollector"),
    ("smart", "SmartCollector"),
    ("services", "ServicesCollector"),
    ("probes", "ProbesCollector"),
    ("self_metrics", "SelfCollector"),
    ("versions", "VersionsCollector"),
    ("updates", "UpdatesCollector"),
    ("reboot", "RebootCollector"),
    ("metadata_refresh", "MetadataRefreshCollector"),
    ("passwords", "PasswordsCollector"),
    ("ssh", "SshCollector"),
    ("service_credentials", "ServiceCredentialsCollector"),
    ("exposure", "ExposureCollector"),
    ("pii", "PiiCollector"),
    ("permissions", "PermissionsCollector"),
    ("audit_status", "AuditStatusCollector"),
    ("baseline", "BaselineCollector"),
)


def registry() -> list[type[Collector]]:
    classes = []
    for module, cls_name in _COLLECTORS:
        mod = importlib.import_module(f"agent.collectors.{module}")
        classes.append(getattr(mod, cls_name))
    return classes


def by_name() -> dict[str, type[Collector]]:
    return {cls.name: cls for cls in registry()}
