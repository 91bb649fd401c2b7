"""Weak and empty passwords, legacy hashes, extra UID 0 accounts and passwordless sudo.

Exports counts only (names only when the operator opts in, and then masked)::

    shaobing_password_accounts{class="human",reason="dictionary"} 1
    shaobing_password_accounts{class="root",reason="legacy_hash"} 0
    shaobing_password_accounts_checked 3
    shaobing_password_audit_pending_accounts 0
    shaobing_password_audit_budget_exhausted 0
    shaobing_password_audit_last_hashes_computed 812
    shaobing_password_weak_account{account="a***e",reason="dictionary"} 1   # opt-in only
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from agent.audit.dictionary import DictionaryError, load_dictionary, read_policy
from agent.audit.password_audit import CLASSES, REASONS, AuditPaths, AuditResult, run_password_audit
from agent.audit.runner import DEFAULT_CAPS, ResultCache
from agent.audit.runs import expect_run, record_run, run_finished
from agent.audit.shadow import AccountFileError, mask_name
from agent.audit.site_words import site_stems
from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector, CollectorOptions, NotApplicable
from agent.crypt import LibcryptUnavailable, load, method_of
from agent.report import Finding, Section, Severity

__all__ = ["PasswordsOptions", "PasswordsCollector"]

_RISKY = ("empty", "dictionary", "legacy_hash", "uid0_extra", "nopasswd_sudo", "unsupported_hash")


@dataclass
class PasswordsOptions(CollectorOptions):
    passwd_file: str = "/etc/passwd"
    shadow_file: str = "/etc/shadow"
    group_file: str = "/etc/group"
    login_defs_file: str = "/etc/login.defs"
    # The host's password policy (minlen, minclass): candidates it would refuse are tried last.
    pwquality_file: str = "/etc/security/pwquality.conf"
    sudoers_file: str = "/etc/sudoers"
    # Site-specific candidates, one a line, tried right after the account's own variants.
    extra_wordlist: Optional[str] = None
    # The site's own names besides the agent's labels (城关镇, 南湖街道办事处): their Pinyin (chengguanzhen,
    # chengguan, cgz) with the usual tails (@123, the year) is tried after the host name's variants.
    site_names: list[str] = field(default_factory=list)
    # CPU seconds of hashing per run; accounts not finished resume next run.
    cpu_budget: float = field(default=60.0, metadata={"duration": True, "min": 0.1})
    # Candidates per account by method, over the defaults (yescrypt/bcrypt 300, sha512crypt 3000, …).
    max_candidates: dict[str, int] = field(default_factory=dict)
    default_max_candidates: int = 1000
    # Per-account series with masked names; None follows the agent-wide setting.
    expose_masked_names: Optional[bool] = None

    def problems(self) -> list[tuple[str, str]]:
        out = [(f"max_candidates.{k}", "must be at least 0") for k, v in self.max_candidates.items() if v < 0]
        if self.default_max_candidates < 0:
            out.append(("default_max_candidates", "must be at least 0"))
        return out


class PasswordsCollector(Collector):
    name = "passwords"
    title = "账户与口令 (Accounts and passwords)"
    options_class = PasswordsOptions
    default_interval = 86400.0
    default_timeout = 300.0
    default_jitter = 1800.0
    metrics = (
        MetricSpec(
            "shaobing_password_accounts",
            "gauge",
            "Local accounts by password risk (reason) and account class (root, system, human).",
            ("reason", "class"),
        ),
        MetricSpec(
            "shaobing_password_audit_coverage_ratio",
            "gauge",
            "Share of the candidate corpus the dictionary check has tried so far, averaged over the accounts of "
            "a class (an account found weak counts as done); the rest is untried, not clean.",
            ("class",),
        ),
        MetricSpec(
            "shaobing_password_audit_skipped_lines",
            "gauge",
            "Lines of passwd/shadow the audit could not read (malformed) and skipped; the scan report names them.",
        ),
        MetricSpec(
            "shaobing_password_accounts_checked",
            "gauge",
            "Accounts with a password hash whose dictionary check has finished (cached verdicts).",
        ),
        MetricSpec(
            "shaobing_password_audit_pending_accounts",
            "gauge",
            "Accounts with a password hash still waiting for (the rest of) their dictionary check.",
        ),
        MetricSpec(
            "shaobing_password_audit_budget_exhausted",
            "gauge",
            "1 when the last audit stopped at its CPU budget with accounts left for the next run.",
        ),
        MetricSpec(
            "shaobing_password_audit_last_hashes_computed",
            "gauge",
            "Password hashes computed by the last audit run (0 when every verdict came from the cache).",
        ),
        MetricSpec(
            "shaobing_password_weak_account",
            "gauge",
            "1 per risky account and reason, with a masked account name (only when the operator opts in).",
            ("account", "reason"),
        ),
    )

    def __init__(self, options: PasswordsOptions, context: AgentContext) -> None:
        super().__init__(options, context)
        expect_run(context.state_dir, "passwords")
        self.opts = options
        self.last: Optional[AuditResult] = None
        self.site_note: Optional[str] = None

    def _masked(self) -> bool:
        if self.opts.expose_masked_names is not None:
            return self.opts.expose_masked_names
        return self.context.expose_masked_names

    def run_audit(self) -> AuditResult:
        o = self.opts
        paths = AuditPaths(
            Path(o.passwd_file), Path(o.shadow_file), Path(o.group_file), Path(o.login_defs_file), Path(o.sudoers_file)
        )
        if not paths.passwd.exists():
            raise NotApplicable(f"{paths.passwd} does not exist")
        # Opening is the test that counts: access(2) ignores CAP_DAC_READ_SEARCH, which is all the
        # hardened systemd unit grants the unprivileged agent for reading /etc/shadow.
        try:
            with open(paths.shadow, "rb"):
                pass
        except FileNotFoundError:
            pass
        except PermissionError:
            raise NotApplicable(
                f"cannot read {paths.shadow}: the password audit needs root or CAP_DAC_READ_SEARCH"
            ) from None
        try:
            lib = load()
        except LibcryptUnavailable as exc:
            raise NotApplicable(str(exc)) from exc
        year = time.localtime(self.context.clock()).tm_year
        try:
            policy = read_policy(Path(o.pwquality_file), Path(o.login_defs_file))
            stems, self.site_note = site_stems([*self.context.site_labels, *o.site_names], self.context.state_dir)
            dictionary = load_dictionary(self.context.hostname, year, o.extra_wordlist, policy, stems)
        except DictionaryError as exc:
            raise RuntimeError(str(exc)) from None
        # Leave the scheduler time to take the verdicts even when the child has to be stopped.
        wall = max(2.0, self.timeout - 15.0) if self.timeout > 20 else max(1.0, self.timeout * 0.6)
        try:
            result = run_password_audit(
                paths,
                lib,
                ResultCache(self.context.state_dir),
                dictionary,
                budget=o.cpu_budget,
                wall=wall,
                caps={**DEFAULT_CAPS, **o.max_candidates},
                default_cap=o.default_max_candidates,
            )
        except AccountFileError as exc:
            raise RuntimeError(str(exc)) from None
        record_run(self.context.state_dir, "passwords", self.context.clock(), result.complete)
        self.last = result
        return result

    def collect(self, out: MetricSet) -> None:
        try:
            result = self.run_audit()
            for reason in REASONS:
                for klass in CLASSES:
                    labels = {"reason": reason, "class": klass}
                    out.add("shaobing_password_accounts", result.count(reason, klass), labels)
            out.add("shaobing_password_accounts_checked", result.checked)
            out.add("shaobing_password_audit_skipped_lines", len(result.skipped_lines))
            for class_name, ratio in sorted(result.coverage.items()):
                out.add("shaobing_password_audit_coverage_ratio", round(ratio, 4), {"class": class_name})
            out.add("shaobing_password_audit_pending_accounts", result.pending)
            out.add("shaobing_password_audit_budget_exhausted", 1 if result.budget_exhausted else 0)
            out.add("shaobing_password_audit_last_hashes_computed", result.hashes_computed)
            if self._masked():
                key = ResultCache(self.context.state_dir).secret()
                for acc in result.accounts:
                    for reason in acc.reasons:
                        if reason in _RISKY:
                            masked = {"account": mask_name(acc.name, key), "reason": reason}
                            out.add("shaobing_password_weak_account", 1, masked)
        finally:
            run_finished(self.context.state_dir, "passwords")

    def report(self) -> Optional[Section]:
        result = self.last
        if result is None:
            return None
        section = Section(self.title)
        for acc in sorted(result.accounts, key=lambda a: (a.klass != "root", a.name)):
            who = f"账户 {acc.name} (UID {acc.uid}, {_CLASS_TEXT[acc.klass]})"
            for reason in acc.reasons:
                if reason == "locked":
                    continue
                sev, why, fix = _REASON_TEXT[reason]
                if reason == "nopasswd_sudo" and acc.sudo_rule:
                    why = f"{why} 规则位置: {acc.sudo_rule}"
                if reason in ("legacy_hash", "unsupported_hash") and acc.method:
                    why = f"{why} 当前算法: {acc.method}"
                if reason in ("dictionary", "legacy_hash") and acc.hash_in_passwd:
                    why = f"{why} 且哈希保存在所有人可读的 /etc/passwd 中 (run pwconv)."
                fix = fix.replace("<账户>", acc.name)
                section.findings.append(Finding(sev, f"{who}: {_TITLE[reason]}", why, fix))
        locked = sum(1 for a in result.accounts if "locked" in a.reasons)
        preferred = load().preferred_method()
        if preferred and any(r in a.reasons for a in result.accounts for r in ("legacy_hash", "unsupported_hash")):
            section.notes.append(
                f"本机新设口令默认使用 {method_of(preferred + 'x')} ({preferred}); 用 passwd 重设即可升级旧哈希."
            )
        section.notes.append(
            f"检查了 {len(result.accounts)} 个账户, {result.checked} 个口令哈希已完成字典检查, "
            f"{locked} 个账户已锁定或无口令登录 (checked {result.checked} hashes, {locked} locked)."
        )
        if result.coverage:
            shares = ", ".join(f"{_CLASS_TEXT.get(k, k)} {v:.1%}" for k, v in sorted(result.coverage.items()))
            section.notes.append(f"字典覆盖率 (share of the candidate corpus tried): {shares}; "
                                 "其余候选尚未尝试, 不代表安全 (the rest is untried, not clean).")
        if result.pending:
            section.notes.append(
                f"{result.pending} 个账户因 CPU 预算用尽尚未检查完, 下次运行继续 "
                f"(budget exhausted, {result.pending} accounts resume next run)."
            )
        for problem in result.skipped_lines[:20]:
            section.notes.append(f"跳过无法解析的行, 该行的账户未检查 (skipped a malformed line): {problem}")
        if len(result.skipped_lines) > 20:
            section.notes.append(f"…… 另有 {len(result.skipped_lines) - 20} 行无法解析 (more malformed lines)")
        if result.error:
            section.notes.append(f"口令检查子进程出错 (audit child error): {result.error}")
        if self.site_note:
            section.notes.append(self.site_note)
        return section


_CLASS_TEXT = {"root": "超级用户", "system": "系统账户", "human": "普通用户"}
_TITLE = {
    "empty": "空口令",
    "dictionary": "使用弱口令 (在常见口令字典中)",
    "legacy_hash": "口令使用过时的哈希算法",
    "uid0_extra": "除 root 外另一个 UID 为 0 的账户",
    "nopasswd_sudo": "sudo 无需口令 (NOPASSWD)",
    "unsupported_hash": "口令哈希算法本机 libcrypt 无法识别",
}
_REASON_TEXT: dict[str, tuple[Severity, str, str]] = {
    "empty": (
        "critical",
        "任何人无需口令即可登录此账户 (empty password: anyone can log in).",
        "立即设置强口令: passwd <账户>; 或锁定: usermod -L <账户>.",
    ),
    "dictionary": (
        "critical",
        "口令出现在常见弱口令或账户名变形中, 攻击者几次尝试即可猜中 (dictionary password).",
        "改用 12 位以上、不含账户名和年份的随机口令: passwd <账户>; 远程登录改用 SSH 密钥.",
    ),
    "legacy_hash": (
        "warning",
        "旧算法 (DES/MD5/SHA-256) 可被快速破解, 哈希一旦泄露口令即暴露 (legacy hash method).",
        "重新设置口令, 系统会以默认的 yescrypt/sha512crypt 算法保存: passwd <账户>.",
    ),
    "uid0_extra": (
        "critical",
        "UID 0 即拥有 root 全部权限, 常见于入侵后留下的后门账户 (extra UID 0 account).",
        "确认用途; 若非必要, 用 vipw 删除 /etc/passwd 中该行 (并用 vipw -s 删除 /etc/shadow 中的对应行) "
        "或改为普通 UID. 注意 userdel 对 UID 0 别名无效: 它与 root 同 UID, 总被判定为\"有进程在运行\" "
        "(exit 8); 确需用 userdel 时用 userdel -f <账户>. (Remove the passwd and shadow lines with vipw / vipw -s.)",
    ),
    "nopasswd_sudo": (
        "warning",
        "该账户执行 sudo 无需口令, 账户一旦被盗即可直接获得 root 权限 (passwordless sudo).",
        "在 sudoers 中删除 NOPASSWD 标记 (visudo), 仅保留必要的自动化命令.",
    ),
    "unsupported_hash": (
        "warning",
        "本机 libcrypt 不支持该哈希算法, 无法检查此口令 (unsupported hash method).",
        "重新设置口令: passwd <账户>.",
    ),
}
