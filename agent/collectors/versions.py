"""End of life of the OS and of software outside the package manager; installed versions; outdated builds.

Sample::

    shaobing_eol_timestamp_seconds{product="centos",cycle="7",kind="os"} 1719705600
    shaobing_eol_unknown{product="centos",cycle="7",kind="os"} 0
    shaobing_eol_unknown{product="kylin",cycle="V10",kind="os"} 1
    shaobing_eol_data_timestamp_seconds 1795737600
    shaobing_software_info{software="nginx",version="1.22.1-9+deb12u11",source="package"} 1
    shaobing_software_info{software="nginx",version="1.20.1",source="binary"} 1
    shaobing_software_outdated{software="nginx"} 1
    shaobing_eol_timestamp_seconds{product="nginx",cycle="1.20",kind="server"} 1653350400

Distro packages get no upstream EOL or baseline verdict: their maintainers backport fixes under the old
upstream version number, so the OS's end of life and its security updates are what count for them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector, CollectorOptions
from agent.compat import Literal
from agent.platform import repo_packages
from agent.platform import software as sw
from agent.platform.baseline import BaselineEntry, load_baseline
from agent.platform.eol_data import EolData, load_eol_data
from agent.platform.os_release import OsIdentity, identify_os
from agent.platform.windows import identity_from_windows, read_windows_version
from agent.report import Finding, Section

__all__ = ["VersionsCollector", "VersionsOptions", "os_eol_fact_keys", "SECTION_TITLE"]

SECTION_TITLE = "版本与生命周期 (Versions and end of life)"
_SOON = 180 * 86400.0

# Debian LTS is free and automatic (same security archive, no enrolment), so it is when a Debian release
# really stops getting fixes. Paid extensions (RHEL ELS, Ubuntu Pro/ESM, Windows ESU) are not assumed.
_EOL_PRODUCT_CHAIN: dict[str, tuple[str, ...]] = {"debian": ("debian-lts", "debian")}


def os_eol_fact_keys(identity: OsIdentity) -> tuple[str, ...]:
    return _EOL_PRODUCT_CHAIN.get(identity.product, (identity.product,))


@dataclass
class VersionsOptions(CollectorOptions):
    # A newer EOL facts file (same CSV columns) without upgrading the agent; default: the vendored one.
    eol_data_file: Optional[str] = None
    eol_overlay_file: Optional[str] = None
    baseline_file: Optional[str] = None
    # Where to look for binaries besides PATH (globs); default: /usr/local, /opt and the like.
    search_paths: Optional[list[str]] = None
    probe_timeout: float = field(default=5.0, metadata={"duration": True, "min": 0.1})
    # apt -o Key=Value options for reading the repositories' package names (an offline mirror's lists).
    apt_options: list[str] = field(default_factory=list)
    command_timeout: float = field(default=60.0, metadata={"duration": True, "min": 0.1})

    def problems(self) -> list[tuple[str, str]]:
        out = []
        for key in ("eol_data_file", "eol_overlay_file", "baseline_file"):
            value = getattr(self, key)
            if value is not None and not Path(value).is_file():
                out.append((key, f"file {value} does not exist"))
        return out


@dataclass(frozen=True)
class _EolResult:
    product: str
    cycle: str
    kind: str
    eol: Optional[float]
    known: bool
    subject: str  # who it is about, for the report: "CentOS Linux 7 (Core)", "/usr/local/nginx/sbin/nginx"
    before: bool = False  # derived: older than the oldest listed cycle, ended no later than ``eol``


@dataclass
class _RunResult:
    identity: Optional[OsIdentity] = None
    eol: list[_EolResult] = field(default_factory=list)
    software: list[sw.Detected] = field(default_factory=list)
    outdated: list[tuple[sw.Detected, BaselineEntry, str]] = field(default_factory=list)
    unjudged: list[sw.Detected] = field(default_factory=list)
    # software -> packages the host's repositories offer for it ([]: none; absent: could not tell)
    distro_packages: dict[str, list[str]] = field(default_factory=dict)
    manager: Optional[Literal["dpkg", "rpm"]] = None
    data_timestamp: float = 0.0
    now: float = 0.0


class VersionsCollector(Collector):
    """OS and software end of life, installed versions, outdated hand-installed software (see module doc)."""

    name = "versions"
    title = SECTION_TITLE
    options_class = VersionsOptions
    default_interval = 6 * 3600.0
    default_timeout = 300.0
    default_jitter = 600.0
    metrics = (
        MetricSpec("shaobing_eol_timestamp_seconds", "gauge",
                   "End-of-life date of a detected OS, runtime or server release (unix time; absent when "
                   "unknown or not announced).", ("product", "cycle", "kind"), "seconds"),
        MetricSpec("shaobing_eol_unknown", "gauge",
                   "1 when no source gives an end-of-life date for a detected product/cycle (never guessed).",
                   ("product", "cycle", "kind")),
        MetricSpec("shaobing_eol_data_timestamp_seconds", "gauge",
                   "Date of the end-of-life data file in use (its data_date).", (), "seconds"),
        MetricSpec("shaobing_software_info", "gauge",
                   "Installed runtime/server versions; source=package (package manager) or binary (outside it).",
                   ("software", "version", "source")),
        MetricSpec("shaobing_software_outdated", "gauge",
                   "1 when software outside the package manager is older than the shipped baseline minimum.",
                   ("software",)),
    )

    def __init__(
        self,
        options: VersionsOptions,
        context: AgentContext,
        *,
        root: Path = Path("/"),
        windows_values: Optional[Mapping[str, str]] = None,
        path_dirs: Optional[Sequence[str]] = None,
        tomcat_globs: Optional[Sequence[str]] = None,
    ) -> None:
        super().__init__(options, context)
        self.opts = options
        self.root = Path(root)
        self.windows_values = windows_values
        self.path_dirs = path_dirs
        self.tomcat_globs = tomcat_globs
        self.last: Optional[_RunResult] = None

    # -- sources -------------------------------------------------------------------------------------------
    def _identity(self) -> Optional[OsIdentity]:
        if self.windows_values is not None:
            return identity_from_windows(self.windows_values)
        if sys.platform == "win32":  # pragma: no cover
            values = read_windows_version()
            return identity_from_windows(values) if values else None
        return identify_os(self.root)

    def _manager(self) -> Optional[Literal["dpkg", "rpm"]]:
        if (self.root / "var/lib/dpkg/status").is_file():
            return "dpkg"
        if (self.root / "var/lib/rpm").is_dir() or (self.root / "usr/lib/sysimage/rpm").is_dir():
            return "rpm"
        return None

    def _software(self) -> list[sw.Detected]:
        manager = self._manager()
        packages = sw.packages_from(manager, self.opts.command_timeout, self.root) if manager else {}
        foreign_root = self.root != Path("/")
        # Never execute binaries of a foreign root (a chroot or a fixture): packages only there.
        return sw.discover(
            manager=manager,
            packages=packages,
            search_globs=() if foreign_root else (self.opts.search_paths or sw.DEFAULT_SEARCH_GLOBS),
            path_dirs=() if foreign_root else self.path_dirs,
            tomcat_globs=() if foreign_root else (self.tomcat_globs or sw.TOMCAT_JAR_GLOBS),
            timeout=self.opts.probe_timeout,
            include_system_dirs=not foreign_root,
        )

    # -- collection ----------------------------------------------------------------------------------------
    def collect(self, out: MetricSet) -> None:
        data = load_eol_data(
            Path(self.opts.eol_data_file) if self.opts.eol_data_file else None,
            Path(self.opts.eol_overlay_file) if self.opts.eol_overlay_file else None,
        )
        baseline = load_baseline(Path(self.opts.baseline_file) if self.opts.baseline_file else None)
        result = _RunResult(data_timestamp=data.data_timestamp, now=self.context.clock())
        out.add("shaobing_eol_data_timestamp_seconds", data.data_timestamp)

        identity = result.identity = self._identity()
        if identity is None:
            self._emit_eol(out, result, data, ("unknown",), "unknown", "unknown", "os", "操作系统 (unidentified OS)")
        else:
            self._emit_eol(out, result, data, os_eol_fact_keys(identity), identity.product, identity.cycle, "os",
                           identity.pretty)

        result.software = self._software()
        worst: dict[str, int] = {}
        for item in result.software:
            out.add("shaobing_software_info", 1, {"software": item.software, "version": item.version,
                                                  "source": item.source})
            if item.source != "binary":
                continue
            spec = sw.spec_for(item.software)
            cycle = sw.eol_cycle(item.software, item.version)
            if cycle is not None and item.software != "openssh":  # OpenSSH publishes no release lifecycle
                product = item.eol_product or item.software
                self._emit_eol(out, result, data, (product,), product, cycle, spec.kind, item.where)
            verdict = baseline.judge(item.software, item.version)
            if verdict is None:
                # Not judged is not "fine": no value, and the scan says why.
                result.unjudged.append(item)
                continue
            worst[item.software] = max(worst.get(item.software, 0), int(verdict.outdated))
            if verdict.outdated and verdict.entry is not None:
                result.outdated.append((item, verdict.entry, verdict.reason))
        for software, flag in worst.items():
            out.add("shaobing_software_outdated", flag, {"software": software})
        result.manager = self._manager()
        if result.manager is not None:
            # Only for what needs a fix text: is there a distro package to move to?
            for software in sorted({item.software for item, _, _ in result.outdated}):
                spec = sw.spec_for(software)
                patterns = spec.dpkg if result.manager == "dpkg" else spec.rpm
                offered = repo_packages.available_packages(result.manager, patterns, self.opts.probe_timeout * 6,
                                                           self.opts.apt_options, self.root)
                if offered is not None:
                    result.distro_packages[software] = offered
        self.last = result

    def _emit_eol(self, out: MetricSet, result: _RunResult, data: EolData, keys: Sequence[str], product: str,
                  cycle: str, kind: str, subject: str) -> None:
        labels = {"product": product, "cycle": cycle, "kind": kind}
        fact = next((f for f in (data.lookup(k, cycle) for k in keys) if f is not None), None)
        if fact is None:
            out.add("shaobing_eol_unknown", 1, labels)
            result.eol.append(_EolResult(product, cycle, kind, None, False, subject))
            return
        out.add("shaobing_eol_unknown", 0, labels)
        if fact.eol is not None:
            out.add("shaobing_eol_timestamp_seconds", fact.eol, labels)
        result.eol.append(_EolResult(product, cycle, kind, fact.eol, True, subject, fact.precision == "before"))

    # -- console report ------------------------------------------------------------------------------------
    def report(self) -> Optional[Section]:
        result = self.last
        if result is None:
            return None
        section = Section(self.title)
        for entry in result.eol:
            section.findings += _eol_findings(entry, result.now)
        grouped: dict[tuple[str, str], tuple[BaselineEntry, str, list[str]]] = {}
        for item, rule, reason in result.outdated:
            grouped.setdefault((item.software, item.version), (rule, reason, []))[2].append(item.where)
        for (software, version), (rule, reason, paths) in sorted(grouped.items()):
            if reason == "unmaintained_branch":
                title = f"{software} {version} 所在分支已停止维护 (unmaintained branch: {', '.join(paths)})"
                why = (f"该分支不在安全基线的维护分支中，不再获得安全修复；最近的维护分支 {rule.branch} "
                       f"要求至少 {rule.minimum} ({rule.advisory}, {rule.url})。")
            else:
                title = f"{software} {version} 低于安全基线 {rule.minimum} (outdated: {', '.join(paths)})"
                why = (f"该软件不由包管理器维护，不会自动获得补丁；{rule.advisory} 在 {rule.minimum} 修复 "
                       f"({rule.url})。")
            fix = _upgrade_fix(software, rule.minimum, result)
            section.findings.append(Finding("warning", title, why, fix))
        for item in result.unjudged:
            section.notes.append(
                f"{item.software} {item.version} ({item.where}): 安全基线没有该版本所在分支的数据, 无法判断是否过时 "
                f"(not judged: newer than every branch the baseline lists; shaobing_software_outdated not exported)"
            )
        for entry in result.eol:
            if entry.kind == "os" and entry.known:
                until = "未公布 (not set)"
                if entry.eol is not None:
                    until = time.strftime("%Y-%m-%d", time.gmtime(entry.eol))
                section.notes.append(f"操作系统 (OS) {entry.subject}: 支持截止 (end of life) {until}")
        day = datetime.fromtimestamp(result.data_timestamp, tz=timezone.utc).strftime("%Y-%m-%d")
        section.notes.append(f"生命周期数据日期 (EOL data date): {day}；过旧时请更新 eol.csv (docs/versions.md)。")
        packaged = sorted({f"{d.software} {d.version}" for d in result.software if d.source == "package"})
        binaries = sorted({f"{d.software} {d.version} ({d.where})" for d in result.software if d.source == "binary"})
        if packaged:
            section.notes.append("包管理器安装 (packages, patched via distro security updates): " + ", ".join(packaged))
        if binaries:
            section.notes.append("包管理器之外 (outside the package manager): " + ", ".join(binaries))
        return section


def _upgrade_fix(software: str, minimum: str, result: _RunResult) -> str:
    """The fix for the host: a distro package only where its repositories offer one."""
    offered = result.distro_packages.get(software)
    if offered and result.manager is not None:
        command = repo_packages.install_command(result.manager, offered[-1])
        return f"升级到 {minimum} 或更高版本，或改用发行版软件包 ({command}，由系统安全更新维护)。"
    if offered == []:
        return (f"升级到 {minimum} 或更高版本 (从官方发布页下载并替换)；本机软件源没有 {software} 软件包 "
                f"(no distro package in the configured repositories)。")
    return f"升级到 {minimum} 或更高版本。"


def _eol_findings(entry: _EolResult, now: float) -> list[Finding]:
    name = f"{entry.product} {entry.cycle}"
    if not entry.known:
        return [Finding(
            "info" if entry.kind != "os" else "warning",
            f"{name} 的生命周期未知 (EOL unknown)",
            f"没有可引用的来源给出 {name} 的停止支持日期；Shaobing 不做猜测。({entry.subject})",
            "向厂商确认支持期限，并在 eol_overlay.csv 中加入带来源的日期 (docs/versions.md)。",
        )]
    if entry.eol is None:
        return []
    day = time.strftime("%Y-%m-%d", time.gmtime(entry.eol))
    if entry.before:
        day = f"{day} 或更早 (older than every listed release: ended no later than this)"
    if entry.eol <= now:
        if entry.kind == "os":
            return [Finding(
                "critical",
                f"操作系统 {name} 已于 {day} 停止支持 (end of life)",
                "厂商不再发布安全更新：此后“待装更新为 0”不代表系统是最新的，只代表不会再有补丁 "
                "(after EOL, 0 pending updates does not mean up to date).",
                "尽快迁移到仍受支持的版本 (e.g. Rocky/AlmaLinux 9, openEuler LTS, Debian 12/13)，或购买厂商延长支持。",
            )]
        return [Finding(
            "warning",
            f"{name} 已于 {day} 停止支持 (end of life: {entry.subject})",
            "上游不再为该版本系列发布安全修复。",
            "升级到仍受支持的版本系列。",
        )]
    if entry.eol - now <= _SOON:
        days = int((entry.eol - now) // 86400)
        return [Finding(
            "warning",
            f"{name} 将于 {day} 停止支持（剩余 {days} 天）(end of life soon: {entry.subject})",
            "到期后将不再有安全更新。",
            "提前规划升级或迁移。",
        )]
    return []
