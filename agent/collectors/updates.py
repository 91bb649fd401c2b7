"""Pending package updates, security updates among them, and the age of the metadata they come from.

Sample (Debian)::

    apt_upgrades_pending{origin="Debian-Security:12/stable-security",arch="amd64"} 3
    apt_package_cache_timestamp_seconds 1764230400
    shaobing_package_metadata_timestamp_seconds{manager="apt"} 1764230400
    shaobing_security_updates_supported 1
    shaobing_security_updates_pending 3
    shaobing_security_updates_pending_since_timestamp_seconds 1764144000

Sample (CentOS 7: no advisory data, so the security count is absent, not 0)::

    yum_upgrades_pending{origin="updates"} 41
    shaobing_security_updates_supported 0

Reads only the metadata already on disk (``apt-get -s``, ``dnf -C``); refreshing it is the system's own timer's
job or the optional ``metadata_refresh`` collector's, never this one's: a refresh can take minutes and needs
the network. A package manager that hangs is killed at ``command_timeout`` and this run fails alone.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector, CollectorOptions, NotApplicable
from agent.collectors.versions import SECTION_TITLE, os_eol_fact_keys
from agent.compat import Literal
from agent.platform import apt, rpm
from agent.platform.eol_data import EolDataError, load_eol_data
from agent.platform.first_seen import FirstSeen
from agent.platform.os_release import OsIdentity, identify_os
from agent.report import Finding, Section

__all__ = ["UpdatesCollector", "UpdatesOptions"]

Manager = Literal["apt", "dnf", "yum"]

DEFAULT_RPM_CACHE_GLOBS = (
    "/var/cache/dnf/*/repodata/repomd.xml",
    "/var/cache/yum/*/*/*/repomd.xml",
    "/var/cache/yum/*/repomd.xml",
)
_STALE = 7 * 86400.0


@dataclass
class UpdatesOptions(CollectorOptions):
    manager: Literal["auto", "apt", "dnf", "yum"] = "auto"
    # Extra apt configuration ("Key=Value", passed as -o): an offline mirror's lists, a sandbox in tests.
    apt_options: list[str] = field(default_factory=list)
    # Extra dnf/yum arguments, e.g. ["--setopt=reposdir=/etc/yum.repos.local"].
    rpm_options: list[str] = field(default_factory=list)
    rpm_cache_globs: Optional[list[str]] = None
    command_timeout: float = field(default=240.0, metadata={"duration": True, "min": 0.1})


@dataclass
class _Summary:
    manager: Manager
    total: int = 0
    security: Optional[int] = None  # None: no advisory data, unknown
    since: Optional[float] = None
    metadata_time: Optional[float] = None
    identity: Optional[OsIdentity] = None
    now: float = 0.0


class UpdatesCollector(Collector):
    """Pending updates (apt/dnf/yum) from existing metadata; see the module doc."""

    name = "updates"
    title = f"{SECTION_TITLE} · 待装更新 (pending updates)"
    options_class = UpdatesOptions
    default_interval = 3600.0
    default_timeout = 300.0
    default_jitter = 300.0
    metrics = (
        MetricSpec("apt_upgrades_pending", "gauge", "Apt package pending updates by origin.", ("origin", "arch")),
        MetricSpec("apt_package_cache_timestamp_seconds", "gauge",
                   "Apt update last run time (pkgcache.bin, else the newest list file).", (), "seconds"),
        MetricSpec("yum_upgrades_pending", "gauge", "Yum/dnf package pending updates by origin (repository).",
                   ("origin",)),
        MetricSpec("shaobing_security_updates_pending", "gauge",
                   "Packages with a pending security update (absent when the package manager has no advisory "
                   "data).", ()),
        MetricSpec("shaobing_security_updates_supported", "gauge",
                   "1 when the package manager has security advisory data for this host's repositories.", ()),
        MetricSpec("shaobing_security_updates_pending_since_timestamp_seconds", "gauge",
                   "When the current non-zero security update backlog was first seen (absent when none).", (),
                   "seconds"),
        MetricSpec("shaobing_package_metadata_timestamp_seconds", "gauge",
                   "When the package metadata read was last refreshed (apt lists / dnf, yum cache).", ("manager",),
                   "seconds"),
    )

    def __init__(
        self,
        options: UpdatesOptions,
        context: AgentContext,
        *,
        executables: Optional[Mapping[str, str]] = None,
        identity: Optional[OsIdentity] = None,
        root: Path = Path("/"),
    ) -> None:
        super().__init__(options, context)
        self.opts = options
        self.exe = {"apt-get": "apt-get", "apt-config": "apt-config", "dnf": "dnf", "yum": "yum",
                    **(executables or {})}
        self.identity_override = identity
        self.root = Path(root)
        self.first_seen = FirstSeen(context.state_dir / "security_updates_since.json")
        self.last: Optional[_Summary] = None

    def _which(self, name: str) -> Optional[str]:
        exe = self.exe[name]
        return exe if os.path.isabs(exe) and os.access(exe, os.X_OK) else shutil.which(exe)

    def _manager(self) -> Manager:
        if self.opts.manager != "auto":
            return self.opts.manager
        if self._which("apt-get") and (self.root / "var/lib/dpkg/status").is_file():
            return "apt"
        if self._which("dnf"):
            return "dnf"
        if self._which("yum"):
            return "yum"
        raise NotApplicable("no apt-get, dnf or yum on this host")

    def collect(self, out: MetricSet) -> None:
        manager = self._manager()
        now = self.context.clock()
        identity = self.identity_override or identify_os(self.root)
        summary = _Summary(manager, identity=identity, now=now)
        if manager == "apt":
            self._collect_apt(out, summary)
        else:
            self._collect_rpm(out, summary, "dnf" if manager == "dnf" else "yum", identity)
        if summary.security is None:
            self.first_seen.update(False, now)
            out.add("shaobing_security_updates_supported", 0)
        else:
            out.add("shaobing_security_updates_supported", 1)
            out.add("shaobing_security_updates_pending", summary.security)
            summary.since = self.first_seen.update(summary.security > 0, now)
            if summary.since is not None:
                out.add("shaobing_security_updates_pending_since_timestamp_seconds", summary.since)
        if summary.metadata_time is not None:
            out.add("shaobing_package_metadata_timestamp_seconds", summary.metadata_time, {"manager": manager})
        self.last = summary

    def _collect_apt(self, out: MetricSet, summary: _Summary) -> None:
        timeout = self.opts.command_timeout
        paths = apt.apt_paths(self.opts.apt_options, timeout, self.exe["apt-config"])
        upgrades = apt.simulate_upgrades(self.opts.apt_options, timeout, self.exe["apt-get"])
        counts = apt.count_by_origin(upgrades)
        if not counts:
            out.add("apt_upgrades_pending", 0, {"origin": "", "arch": ""})  # as apt.sh: an explicit zero
        for (origin, arch), count in sorted(counts.items()):
            out.add("apt_upgrades_pending", count, {"origin": origin, "arch": arch})
        lists_time = apt.newest_mtime(paths.lists)
        cache_time: Optional[float] = None
        if paths.pkgcache is not None:
            try:
                cache_time = paths.pkgcache.stat().st_mtime
            except OSError:
                cache_time = None
        # Containers often switch pkgcache.bin off; the lists' own age is the same fact then.
        cache_or_lists = cache_time if cache_time is not None else lists_time
        if cache_or_lists is not None:
            out.add("apt_package_cache_timestamp_seconds", cache_or_lists)
        summary.metadata_time = lists_time
        summary.total = len(upgrades)
        if apt.security_sources(paths.lists):
            summary.security = sum(1 for u in upgrades if u.security)

    def _collect_rpm(self, out: MetricSet, summary: _Summary, manager: Literal["dnf", "yum"],
                     identity: Optional[OsIdentity]) -> None:
        timeout = self.opts.command_timeout
        tool = self.exe[manager]
        updates = rpm.check_update(tool, timeout, self.opts.rpm_options)
        counts = rpm.count_by_repo(updates)
        if not counts:
            out.add("yum_upgrades_pending", 0, {"origin": ""})
        for repo, count in sorted(counts.items()):
            out.add("yum_upgrades_pending", count, {"origin": repo})
        summary.total = len(updates)
        repomds = rpm.repomd_files(self.opts.rpm_cache_globs or DEFAULT_RPM_CACHE_GLOBS)
        summary.metadata_time = rpm.newest_mtime(repomds)
        no_advisories = identity is not None and identity.product in rpm.NO_ADVISORY_PRODUCTS
        if not no_advisories and rpm.has_updateinfo(repomds):
            summary.security = len(rpm.security_updates(tool, manager, timeout, self.opts.rpm_options))

    # -- console report ------------------------------------------------------------------------------------
    def report(self) -> Optional[Section]:
        summary = self.last
        if summary is None:
            return None
        section = Section(self.title)
        upgrade_cmd = "apt-get upgrade" if summary.manager == "apt" else f"{summary.manager} upgrade --security"
        eol_passed = self._os_eol_passed(summary)
        if eol_passed is not None:
            section.findings.append(Finding(
                "critical",
                f"系统已于 {eol_passed} 停止支持：待装更新数不代表安全 (0 pending does not mean up to date)",
                "停止支持后厂商不再发布补丁，软件源里不会出现新的安全更新；“0 个待装更新”只说明没有补丁可装。",
                "迁移到受支持的操作系统版本；在此之前隔离该主机并减少暴露的服务。",
            ))
        if summary.security is None:
            section.findings.append(Finding(
                "warning",
                "无法统计安全更新 (no security advisory data)",
                "该系统的软件源不提供安全公告 (updateinfo) 数据（如 CentOS 7 / CentOS Stream），"
                "或未配置安全更新源；安全更新数未知，不是 0。",
                "配置发行版的安全更新源，或迁移到提供安全公告的发行版 (Rocky/AlmaLinux/RHEL/openEuler)。",
            ))
        elif summary.security > 0:
            since = ""
            if summary.since is not None:
                since = f"，自 {time.strftime('%Y-%m-%d %H:%M', time.gmtime(summary.since))} UTC 起"
            section.findings.append(Finding(
                "critical" if summary.since is not None and summary.now - summary.since > _STALE else "warning",
                f"{summary.security} 个软件包有待安装的安全更新{since} (security updates pending)",
                "已公开的漏洞修复尚未安装。",
                f"安装更新: {upgrade_cmd}；之后检查是否需要重启。",
            ))
        if summary.metadata_time is None:
            section.findings.append(Finding(
                "warning", "没有软件包元数据 (no package metadata)",
                "从未刷新过软件源，待装更新无从得知。", "刷新软件源 (apt-get update / dnf makecache)。"))
        elif summary.now - summary.metadata_time > _STALE:
            days = int((summary.now - summary.metadata_time) // 86400)
            section.findings.append(Finding(
                "warning", f"软件包元数据已 {days} 天未刷新 (package metadata is stale)",
                "待装更新基于过期的元数据，实际可能更多。",
                "启用系统的定时刷新 (apt-daily.timer / dnf-makecache.timer) 或 metadata_refresh 采集器。"))
        section.notes.append(f"待装更新共 {summary.total} 个 (all pending updates, {summary.manager})。")
        return section

    def _os_eol_passed(self, summary: _Summary) -> Optional[str]:
        if summary.identity is None:
            return None
        try:
            data = load_eol_data()
        except EolDataError:
            return None
        for key in os_eol_fact_keys(summary.identity):
            fact = data.lookup(key, summary.identity.cycle)
            if fact is not None:
                if fact.eol is not None and fact.eol <= summary.now:
                    return time.strftime("%Y-%m-%d", time.gmtime(fact.eol))
                return None
        return None
