"""Whether the host needs a reboot to use installed updates, and since when.

Sample::

    node_reboot_required 1
    shaobing_reboot_required_since_timestamp_seconds 1764144000

Evidence, any one is enough: ``/run/reboot-required`` (Debian/Ubuntu; its mtime is when the need arose),
``needs-restarting -r`` exiting 1 (yum-utils / dnf-utils), or a newer kernel installed than the one running.
``node_reboot_required`` means what the textfile-collector scripts mean by it.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector, CollectorOptions
from agent.collectors.versions import SECTION_TITLE
from agent.platform.first_seen import FirstSeen
from agent.platform.software import version_key
from agent.process import run
from agent.report import Finding, Section

__all__ = ["RebootCollector", "RebootOptions", "newest_kernel"]


@dataclass
class RebootOptions(CollectorOptions):
    # needs-restarting reads the rpm database and /proc of every process; bounded like any command.
    command_timeout: float = field(default=60.0, metadata={"duration": True, "min": 0.1})


def newest_kernel(boot_files: list[str]) -> Optional[str]:
    """``vmlinuz-6.1.0-21-amd64`` ... -> the newest release string (rpm-style comparison of the parts)."""
    releases = [name[len("vmlinuz-"):] for name in boot_files
                if name.startswith("vmlinuz-") and not re.search(r"rescue|\.old$", name)]
    return max(releases, key=version_key) if releases else None


@dataclass
class _Result:
    required: bool = False
    reasons: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    since: Optional[float] = None


class RebootCollector(Collector):
    """Reboot required (see module doc)."""

    name = "reboot"
    title = f"{SECTION_TITLE} · 重启 (reboot)"
    options_class = RebootOptions
    default_interval = 300.0
    default_timeout = 90.0
    default_jitter = 30.0
    metrics = (
        MetricSpec("node_reboot_required", "gauge", "Node reboot is required for software updates.", ()),
        MetricSpec("shaobing_reboot_required_since_timestamp_seconds", "gauge",
                   "Since when a reboot has been required (absent when none is).", (), "seconds"),
    )

    def __init__(
        self,
        options: RebootOptions,
        context: AgentContext,
        *,
        root: Path = Path("/"),
        needs_restarting: Optional[str] = None,
        running_kernel: Optional[str] = None,
    ) -> None:
        super().__init__(options, context)
        self.opts = options
        self.root = Path(root)
        self.needs_restarting = needs_restarting
        self.running_kernel = running_kernel or os.uname().release
        self.first_seen = FirstSeen(context.state_dir / "reboot_required_since.json")
        self.last: Optional[_Result] = None

    def collect(self, out: MetricSet) -> None:
        result = _Result()
        evidence: list[float] = []
        flag = self.root / "run/reboot-required"
        if flag.exists():
            result.required = True
            result.reasons.append("/run/reboot-required")
            try:
                evidence.append(flag.stat().st_mtime)
                pkgs = (self.root / "run/reboot-required.pkgs").read_text(encoding="utf-8", errors="replace")
                result.packages = sorted({line.strip() for line in pkgs.splitlines() if line.strip()})
            except OSError:
                pass
        kernel_time = self._kernel_check(result)
        if kernel_time is not None:
            evidence.append(kernel_time)
        self._needs_restarting(result)
        now = self.context.clock()
        result.since = self.first_seen.update(result.required, now, min(evidence) if evidence else None)
        out.add("node_reboot_required", 1 if result.required else 0)
        if result.since is not None:
            out.add("shaobing_reboot_required_since_timestamp_seconds", result.since)
        self.last = result

    def _kernel_check(self, result: _Result) -> Optional[float]:
        boot = self.root / "boot"
        try:
            names = sorted(os.listdir(boot))
        except OSError:
            return None
        # Only meaningful when the running kernel is one of those installed (not in a container, not kexec'd
        # from elsewhere); otherwise there is nothing to compare.
        if f"vmlinuz-{self.running_kernel}" not in names:
            return None
        newest = newest_kernel(names)
        if newest is None or newest == self.running_kernel:
            return None
        result.required = True
        result.reasons.append(f"kernel {newest} installed, {self.running_kernel} running")
        try:
            return (boot / f"vmlinuz-{newest}").stat().st_mtime
        except OSError:
            return None

    def _needs_restarting(self, result: _Result) -> None:
        # Injected (tests) or found on PATH; never run against a foreign root, it would judge this host.
        if self.needs_restarting is not None:
            exe: Optional[str] = self.needs_restarting
        elif self.root == Path("/"):
            exe = shutil.which("needs-restarting")
        else:
            exe = None
        if exe is None:
            return
        outcome = run([exe, "-r"], self.opts.command_timeout)  # a hang raises CommandError: the run fails
        # 1 = reboot required, 0 = not; anything else (plugin missing, no rpmdb access) is no evidence.
        if outcome.returncode == 1 and "reboot" in (outcome.stdout + outcome.stderr).lower():
            result.required = True
            result.reasons.append("needs-restarting -r")

    def report(self) -> Optional[Section]:
        result = self.last
        if result is None:
            return None
        section = Section(self.title)
        if result.required:
            since = ""
            if result.since is not None:
                since = f"（自 {time.strftime('%Y-%m-%d %H:%M', time.gmtime(result.since))} UTC 起）"
            detail = "已安装的更新（内核或核心库）要重启后才生效：" + "; ".join(result.reasons)
            if result.packages:
                detail += "；涉及软件包: " + ", ".join(result.packages[:10])
            section.findings.append(Finding(
                "warning", f"需要重启以使更新生效{since} (reboot required)", detail,
                "在维护窗口内重启主机 (reboot in a maintenance window)。"))
        return section
