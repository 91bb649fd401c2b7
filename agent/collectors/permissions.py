"""File modes that hand root to a local user (agent.audit.permissions), counted by check::

    shaobing_permission_findings{check="world_writable"} 1
    shaobing_permission_findings{check="key_file"} 0
    shaobing_permission_findings{check="suid_unpackaged"} 0
    shaobing_permission_findings{check="authorized_keys"} 0

Paths appear only in the root-only ``shaobing scan``, each with its fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from agent.audit.permissions import CHECKS, PermissionResult, check_permissions
from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector, CollectorOptions
from agent.report import Finding, Section, Severity

__all__ = ["PermissionsOptions", "PermissionsCollector"]

_TITLES = {
    "world_writable": "所有人可写",
    "key_file": "关键文件权限",
    "suid_unpackaged": "不属于软件包的 SUID/SGID 程序",
    "authorized_keys": "SSH 密钥文件可被他人修改",
}
REPORT_LIMIT = 50


@dataclass
class PermissionsOptions(CollectorOptions):
    # Where the checked tree starts (tests point it at a temp root).
    root: str = "/"
    max_entries: int = 200_000


class PermissionsCollector(Collector):
    name = "permissions"
    title = "文件权限 (File permissions)"
    options_class = PermissionsOptions
    default_interval = 21600.0
    default_timeout = 120.0
    default_jitter = 900.0
    metrics = (
        MetricSpec("shaobing_permission_findings", "gauge",
                   "Risky file modes by check: world_writable (where root reads or runs files), key_file "
                   "(passwd, shadow, sudoers), suid_unpackaged, authorized_keys.", ("check",)),
        MetricSpec("shaobing_permission_scan_truncated", "gauge",
                   "1 when the check stopped at max_entries: the counts are a lower bound."),
    )

    def __init__(self, options: PermissionsOptions, context: AgentContext) -> None:
        super().__init__(options, context)
        self.opts = options
        self.last: Optional[PermissionResult] = None

    def collect(self, out: MetricSet) -> None:
        result = check_permissions(Path(self.opts.root), self.opts.max_entries, timeout=max(5.0, self.timeout / 2))
        self.last = result
        for check in CHECKS:
            out.add("shaobing_permission_findings", result.count(check), {"check": check})
        out.add("shaobing_permission_scan_truncated", 1 if result.truncated else 0)

    def report(self) -> Optional[Section]:
        if self.last is None:
            return None
        section = Section(self.title)
        for f in self.last.findings[:REPORT_LIMIT]:
            severity: Severity = "critical" if f.check in ("world_writable", "key_file") else "warning"
            section.findings.append(Finding(severity, f"{_TITLES[f.check]}: {f.path}", f.detail, f.fix))
        if len(self.last.findings) > REPORT_LIMIT:
            section.notes.append(f"另有 {len(self.last.findings) - REPORT_LIMIT} 项未列出 (more not listed)")
        section.notes.append(f"检查了 {self.last.looked_at} 个文件和目录 (entries looked at)"
                             + ("; 已到上限, 结果不完整 (truncated)" if self.last.truncated else ""))
        section.notes.extend(self.last.notes)
        return section
