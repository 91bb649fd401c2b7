"""Risky sshd settings, from ``sshd -T`` (Match blocks included) or, failing that, sshd_config itself::

    shaobing_ssh_risky_setting{setting="permit_root_login"} 1
    shaobing_ssh_risky_setting{setting="password_authentication"} 1
    shaobing_ssh_risky_setting{setting="permit_empty_passwords"} 0
    shaobing_ssh_risky_setting{setting="max_auth_tries"} 0
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from agent.audit.runs import expect_run, record_run, run_finished
from agent.audit.shadow import read_groups
from agent.audit.sshd import SSH_SETTINGS, SshResult, SshRisk, assess, effective_settings
from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector, CollectorOptions, NotApplicable
from agent.report import Finding, Section, Severity

__all__ = ["SshOptions", "SshCollector"]


@dataclass
class SshOptions(CollectorOptions):
    config_file: str = "/etc/ssh/sshd_config"
    # The sshd binary for `sshd -T`; empty: search PATH and /usr/sbin. "none": parse the file only.
    sshd: str = ""
    host_keys: list[str] = field(default_factory=list)  # passed as -h (only needed without host keys in place)
    group_file: str = "/etc/group"
    # MaxAuthTries above this is risky (OpenSSH's default is 6).
    max_auth_tries_limit: int = 6

    def problems(self) -> list[tuple[str, str]]:
        return [("max_auth_tries_limit", "must be at least 1")] if self.max_auth_tries_limit < 1 else []


class SshCollector(Collector):
    name = "ssh"
    title = "SSH 服务配置 (sshd settings)"
    options_class = SshOptions
    default_interval = 3600.0
    default_timeout = 30.0
    default_jitter = 300.0
    metrics = (
        MetricSpec(
            "shaobing_ssh_risky_setting",
            "gauge",
            "1 when an effective sshd setting (in any Match context) makes password guessing easier, else 0.",
            ("setting",),
        ),
    )

    def __init__(self, options: SshOptions, context: AgentContext) -> None:
        super().__init__(options, context)
        expect_run(context.state_dir, "ssh")
        self.opts = options
        self.last: Optional[tuple[SshResult, list[SshRisk]]] = None

    def _sshd(self) -> Optional[str]:
        if self.opts.sshd == "none":
            return None
        if self.opts.sshd:
            return self.opts.sshd
        return shutil.which("sshd") or shutil.which("sshd", path="/usr/sbin:/usr/local/sbin")

    def _evaluate(self) -> tuple[dict[str, int], SshResult, list[SshRisk]]:
        config = Path(self.opts.config_file)
        sshd = self._sshd()
        if not config.exists():
            raise NotApplicable(f"{config} does not exist (no OpenSSH server)")
        groups = {name: members for name, (_, members) in read_groups(Path(self.opts.group_file)).items()}
        result = effective_settings(
            config, sshd, self.opts.host_keys, groups, timeout=max(2.0, self.timeout / 4)
        )
        flags, risks = assess(result, self.opts.max_auth_tries_limit)
        record_run(self.context.state_dir, "ssh", self.context.clock(), True)
        self.last = (result, risks)
        return flags, result, risks

    def collect(self, out: MetricSet) -> None:
        try:
            flags, _, _ = self._evaluate()
            for label in SSH_SETTINGS:
                out.add("shaobing_ssh_risky_setting", flags[label], {"setting": label})
        finally:
            run_finished(self.context.state_dir, "ssh")

    def report(self) -> Optional[Section]:
        if self.last is None:
            return None
        result, risks = self.last
        section = Section(self.title)
        for risk in risks:
            sev, title, why, fix = _TEXT[risk.setting]
            fix = fix.replace("<重载sshd>", _reload_command())
            where = "全局" if risk.context == "global" else risk.context
            section.findings.append(
                Finding(sev, f"{title} ({where}: {risk.value})", why, fix)
            )
        section.notes.append(f"来源 (source): {result.source}")
        section.notes.extend(result.notes)
        return section


def _reload_command() -> str:
    """How this host reloads sshd: systemd's unit name differs by family (ssh on Debian, sshd on RHEL), and a
    host without systemd (containers, old SysV hosts) uses its init script or a HUP."""
    if Path("/run/systemd/system").is_dir():
        unit = "ssh" if Path("/lib/systemd/system/ssh.service").exists() or Path(
            "/usr/lib/systemd/system/ssh.service").exists() else "sshd"
        return f"systemctl reload {unit}"
    for script in ("/etc/init.d/ssh", "/etc/init.d/sshd"):
        if Path(script).exists():
            return f"{script} reload"
    return "kill -HUP $(cat /run/sshd.pid 2>/dev/null || pgrep -o sshd)"


_TEXT: dict[str, tuple[Severity, str, str, str]] = {
    "permit_root_login": (
        "critical",
        "允许 root 通过 SSH 口令登录 (PermitRootLogin yes)",
        "root 是暴力破解的首要目标, 口令一旦被猜中即完全失陷.",
        "在 sshd_config 设置 PermitRootLogin no (或 prohibit-password), 用普通账户登录后再 sudo; "
        "然后 <重载sshd>.",
    ),
    "password_authentication": (
        "warning",
        "SSH 允许口令登录 (PasswordAuthentication yes)",
        "口令登录可被远程暴力猜测; 弱口令账户会因此失陷.",
        "为管理员配置 SSH 密钥后, 设置 PasswordAuthentication no; 或至少限制来源地址并启用 fail2ban.",
    ),
    "permit_empty_passwords": (
        "critical",
        "SSH 允许空口令登录 (PermitEmptyPasswords yes)",
        "空口令账户可被任何人直接远程登录.",
        "设置 PermitEmptyPasswords no, 并为所有账户设置口令.",
    ),
    "max_auth_tries": (
        "warning",
        "SSH 单次连接允许的认证尝试次数过多 (MaxAuthTries)",
        "每个连接可尝试更多口令, 暴力破解更快.",
        "设置 MaxAuthTries 4 (不超过 6).",
    ),
}
