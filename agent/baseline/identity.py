"""身份鉴别 (identification and authentication): unique identities, passwords, lockout, timeout, remote access."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Optional

from agent.baseline.host import HostView, PamLine
from agent.baseline.model import CheckResult, CheckSpec, Thresholds

__all__ = ["CHECKS"]

_WEAK_REASONS = ("empty", "dictionary", "legacy_hash")


def unique_ids(host: HostView, th: Thresholds) -> CheckResult:
    by_uid: dict[int, list[str]] = defaultdict(list)
    by_name: dict[str, list[str]] = defaultdict(list)
    for a in host.accounts:
        by_uid[a.uid].append(f"{a.name} ({a.where})")
        by_name[a.name].append(a.where)
    if not host.accounts:
        return CheckResult("manual", ["无法读取 /etc/passwd"], "以 root 运行检查")
    dup = [f"UID {uid}: {', '.join(names)}" for uid, names in sorted(by_uid.items()) if len(names) > 1]
    dup += [f"用户名 {name} 重复: {', '.join(w)}" for name, w in sorted(by_name.items()) if len(w) > 1]
    if dup:
        return CheckResult("fail", dup, "为每个账户分配唯一的 UID 和用户名 (usermod -u), 不共用身份标识")
    return CheckResult("pass", [f"/etc/passwd: {len(host.accounts)} 个账户, UID 与用户名均唯一"])


def no_empty_password(host: HostView, th: Thresholds) -> CheckResult:
    if not host.shadow:
        return CheckResult("manual", ["无法读取 /etc/shadow (需要 root)"], "以 root 运行检查")
    empty = [f"{e.name} ({e.where}): 口令为空" for e in host.shadow.values() if e.empty]
    empty += [f"{a.name} ({a.where}): passwd 中口令字段为空" for a in host.accounts
              if a.name not in host.shadow and a.password_field_empty]
    if empty:
        return CheckResult("fail", empty, "为这些账户设置口令或锁定: passwd -l <账户>")
    return CheckResult("pass", [f"/etc/shadow: {len(host.shadow)} 个账户均无空口令"])


def no_weak_password(host: HostView, th: Thresholds) -> CheckResult:
    metrics = host.peer("passwords")
    if metrics is None:
        return CheckResult("manual", ["口令审计 (passwords) 尚无结果: 未启用, 或首轮审计未完成"],
                           "启用 collectors.passwords 并等待首轮审计完成 (shaobing scan 会运行它)")
    counts: dict[str, float] = defaultdict(float)
    for s in metrics.samples("shaobing_password_accounts"):
        counts[s.label("reason")] += s.value
    weak = {r: int(counts[r]) for r in _WEAK_REASONS if counts.get(r)}
    ratios = [x.value for x in metrics.samples("shaobing_password_audit_coverage_ratio")]
    coverage = min(ratios) if ratios else None
    evidence = [f"口令审计: {r} {n} 个账户" for r, n in weak.items()] or ["口令审计: 未发现空口令、弱口令或过时哈希"]
    if weak:
        return CheckResult("fail", evidence, "按 shaobing scan 的“口令审计”一节逐个修改这些账户的口令")
    if coverage is not None and coverage < 1:
        return CheckResult("manual", evidence + [f"审计覆盖率 {coverage:.0%}: 仍有账户未检查完"],
                           "等待口令审计覆盖全部账户后再看")
    return CheckResult("pass", evidence)


def _pwquality_settings(host: HostView) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for path in [host.path("etc/security/pwquality.conf"), *host.glob("etc/security/pwquality.conf.d/*.conf")]:
        for where, line in host.lines(path):
            key, sep, value = line.partition("=")
            if sep:
                out[key.strip().lower()] = (value.strip(), where)
    return out


def _password_stack(host: HostView) -> list[PamLine]:
    for service in ("passwd", "common-password", "system-auth"):
        stack = host.pam(service, "password")
        if stack:
            return stack
    return []


def _int(value: Optional[str]) -> Optional[int]:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def password_complexity(host: HostView, th: Thresholds) -> CheckResult:
    stack = _password_stack(host)
    quality = [p for p in stack if p.module in ("pam_pwquality.so", "pam_cracklib.so", "pam_passwdqc.so")]
    if not stack:
        return CheckResult("manual", ["未找到 /etc/pam.d/passwd (或 common-password / system-auth)"],
                           "人工确认口令修改时的复杂度检查")
    if not quality:
        return CheckResult("fail", [f"{stack[0].where}: 口令栈中没有 pam_pwquality / pam_cracklib"],
                           _complexity_fix(host, th))
    q = quality[0]
    if q.module == "pam_passwdqc.so":
        return CheckResult("manual", [f"{q.where}: 使用 pam_passwdqc, 其 min= 规则需人工确认"], "")
    settings = _pwquality_settings(host) if q.module == "pam_pwquality.so" else {}
    # Module arguments override pwquality.conf; each default as the module documents it.
    default_minlen = 9 if q.module == "pam_cracklib.so" else 8

    def value(key: str, default: int) -> tuple[int, str]:
        arg = q.arg(key)
        if arg is not None and _int(arg) is not None:
            return _int(arg) or 0, q.where
        if key in settings and _int(settings[key][0]) is not None:
            return _int(settings[key][0]) or 0, settings[key][1]
        return default, "默认值"

    minlen, minlen_at = value("minlen", default_minlen)
    minclass, minclass_at = value("minclass", 0)
    required = sum(1 for k in ("dcredit", "ucredit", "lcredit", "ocredit") if value(k, 0)[0] < 0)
    classes = max(minclass, required)
    evidence = [f"{q.where}: {q.module}", f"minlen={minlen} ({minlen_at})",
                f"字符类别要求 {classes} 类 (minclass={minclass} ({minclass_at}); 负值 credit {required} 项)"]
    problems = []
    if minlen < th.password_min_length:
        problems.append(f"最短 {minlen} 位, 要求至少 {th.password_min_length} 位")
    if classes < th.password_min_classes:
        problems.append(f"只要求 {classes} 类字符, 要求至少 {th.password_min_classes} 类")
    if problems:
        return CheckResult("fail", evidence + problems, _complexity_fix(host, th))
    return CheckResult("pass", evidence)


def _complexity_fix(host: HostView, th: Thresholds) -> str:
    where = "/etc/pam.d/common-password" if host.family == "debian" else "/etc/pam.d/system-auth 与 password-auth"
    return (f"安装 pam_pwquality (Debian: libpam-pwquality), 在 {where} 的 password 栈启用 pam_pwquality.so, "
            f"并在 /etc/security/pwquality.conf 设置 minlen = {th.password_min_length}, "
            f"minclass = {th.password_min_classes}")


def password_expiry(host: HostView, th: Thresholds) -> CheckResult:
    evidence, problems = [], []
    value, where = host.login_defs.get("PASS_MAX_DAYS", ("99999", "/etc/login.defs (未设置, 默认 99999)"))
    max_days = _int(value)
    evidence.append(f"{where}: PASS_MAX_DAYS {value}")
    if max_days is None or max_days > th.password_max_days or max_days < 0:
        problems.append(f"新账户口令有效期 {value} 天, 要求不超过 {th.password_max_days} 天")
    min_uid = host.human_min_uid()
    for a in host.accounts:
        entry = host.shadow.get(a.name)
        if entry is None or not entry.usable or not (a.uid == 0 or a.uid >= min_uid):
            continue
        if entry.max_days is None or entry.max_days > th.password_max_days:
            shown = "不过期" if entry.max_days is None or entry.max_days >= 99999 else f"{entry.max_days} 天"
            problems.append(f"{a.name} ({entry.where}): 口令有效期 {shown}")
    if not host.shadow:
        return CheckResult("manual", evidence + ["无法读取 /etc/shadow"], "以 root 运行检查")
    if problems:
        return CheckResult("fail", evidence + problems,
                           f"在 /etc/login.defs 设置 PASS_MAX_DAYS {th.password_max_days}, 并对已有账户执行 "
                           f"chage -M {th.password_max_days} <账户>")
    return CheckResult("pass", evidence)


def _faillock_conf(host: HostView) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for where, line in host.lines("etc/security/faillock.conf"):
        key, sep, value = line.partition("=")
        out[key.strip().lower()] = (value.strip() if sep else "", where)
    return out


def login_lockout(host: HostView, th: Thresholds) -> CheckResult:
    """Every login path (sshd, console login) locks after few failures: pam_faillock or pam_tally2."""
    evidence: list[str] = []
    checked = 0
    failed = False
    for svc in ("sshd", "login"):
        stack = host.pam(svc, "auth")
        if not stack:
            continue
        checked += 1
        mods = [p for p in stack if p.module in ("pam_faillock.so", "pam_tally2.so", "pam_tally.so")]
        if not mods:
            evidence.append(f"/etc/pam.d/{svc}: auth 栈中没有 pam_faillock / pam_tally2")
            failed = True
            continue
        p = mods[0]
        conf = _faillock_conf(host) if p.module == "pam_faillock.so" else {}
        # pam_faillock: deny 3 and unlock_time 600 by default; pam_tally2 locks nothing without deny=.
        faillock = p.module == "pam_faillock.so"
        deny_s = p.arg("deny") or conf.get("deny", ("3" if faillock else "", ""))[0]
        unlock_s = p.arg("unlock_time") or conf.get("unlock_time", ("600" if faillock else "0", ""))[0]
        deny, unlock = _int(deny_s), _int(unlock_s)
        evidence.append(f"{p.where}: {p.module} deny={deny_s or '(未设置)'} unlock_time={unlock_s} (/etc/pam.d/{svc})")
        if not (deny is not None and 0 < deny <= th.lockout_max_tries
                and (unlock == 0 or (unlock is not None and unlock >= th.lockout_min_unlock_seconds))):
            failed = True
    if not checked:
        return CheckResult("manual", ["未找到 /etc/pam.d/sshd 与 /etc/pam.d/login"], "人工确认登录失败处理")
    if failed:
        evidence.append(f"判定阈值: 连续失败不超过 {th.lockout_max_tries} 次即锁定, 锁定至少 "
                        f"{th.lockout_min_unlock_seconds} 秒 (或直到管理员解锁)")
        return CheckResult("fail", evidence, _lockout_fix(host, th))
    return CheckResult("pass", evidence)


def _lockout_fix(host: HostView, th: Thresholds) -> str:
    if host.family == "rhel":
        return (f"authselect enable-feature with-faillock (CentOS 7: pam_tally2.so deny={th.lockout_max_tries} "
                f"unlock_time={th.lockout_min_unlock_seconds}), 在 /etc/security/faillock.conf 设置 "
                f"deny = {th.lockout_max_tries}, unlock_time = {th.lockout_min_unlock_seconds}")
    return (f"在 /etc/pam.d/common-auth 加入 pam_faillock.so (preauth / authfail) 与 common-account 的 "
            f"pam_faillock.so, 在 /etc/security/faillock.conf 设置 deny = {th.lockout_max_tries}, "
            f"unlock_time = {th.lockout_min_unlock_seconds}")


_TMOUT = re.compile(r"^(?:(?:export|readonly|declare\s+-[rx]+|typeset\s+-[rx]+)\s+)?TMOUT=(\d+)\b")


def session_timeout(host: HostView, th: Thresholds) -> CheckResult:
    files = [host.path(p) for p in ("etc/profile", "etc/bashrc", "etc/bash.bashrc")]
    files += host.glob("etc/profile.d/*.sh")
    evidence = []
    for path in files:
        for where, line in host.lines(path):
            for part in re.split(r"[;&|]", line):
                m = _TMOUT.match(part.strip())
                if m:
                    seconds = int(m.group(1))
                    ok = 0 < seconds <= th.session_timeout_max_seconds
                    evidence.append(f"{where}: TMOUT={seconds}")
                    if ok:
                        return CheckResult("pass", evidence)
    for key, value, where in host.sshd_config:
        if key == "channeltimeout":
            m = re.search(r"session(?::\S+)?=(\d+)([smhd]?)", value)
            if m:
                seconds = int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
                evidence.append(f"{where}: ChannelTimeout {value}")
                if 0 < seconds <= th.session_timeout_max_seconds:
                    return CheckResult("pass", evidence)
    evidence.append("未设置有效的 TMOUT (ClientAliveInterval 只断开失去响应的客户端, 不结束空闲会话)")
    return CheckResult("fail", evidence,
                       f"新建 /etc/profile.d/tmout.sh: readonly TMOUT={th.session_timeout_max_seconds}; export TMOUT")


_PLAIN_UNITS = ("telnet.socket", "rlogin.socket", "rsh.socket", "rexec.socket", "telnetd.service")
_PLAIN_PROCS = ("telnetd", "in.telnetd", "in.rlogind", "in.rshd", "in.rexecd", "rlogind", "rshd")
_PLAIN_SERVICES = ("telnet", "rlogin", "rsh", "rexec", "login", "shell", "exec")


def remote_admin_encrypted(host: HostView, th: Thresholds) -> CheckResult:
    bad = [f"{host.unit_enabled(u)}: {u} 已启用" for u in _PLAIN_UNITS if host.unit_enabled(u)]
    bad += [f"进程 {p} 正在运行" for p in host.running(*_PLAIN_PROCS)]
    for path in host.glob("etc/xinetd.d/*"):
        lines = host.lines(path)
        if any(re.match(r"disable\s*=\s*no\b", t) for _, t in lines) and path.name in _PLAIN_SERVICES:
            bad.append(f"{host.shown(path)}: xinetd 启用了 {path.name}")
    for where, line in host.lines("etc/inetd.conf"):
        if line.split()[0] in ("telnet", "login", "shell", "exec"):
            bad.append(f"{where}: inetd 启用了 {line.split()[0]}")
    vsftpd = _vsftpd(host)
    if vsftpd is not None and vsftpd.get("local_enable", ("no", ""))[0].lower() == "yes" \
            and vsftpd.get("ssl_enable", ("no", ""))[0].lower() != "yes":
        bad.append(f"{vsftpd['local_enable'][1]}: vsftpd 允许本地账户以明文 FTP 登录 (ssl_enable 未启用)")
    exposure = host.peer("exposure")
    if exposure is not None:
        for s in exposure.samples("shaobing_exposed_port"):
            if s.label("service") == "telnet":
                bad.append(f"端口 {s.label('port')} 上有 telnet 服务对外监听")
    if bad:
        return CheckResult("fail", bad,
            "停用 telnet/rsh/rlogin 等明文远程管理 (systemctl disable --now telnet.socket), "
                                        "只用 SSH; FTP 改用 SFTP 或为 vsftpd 启用 ssl_enable=YES")
    sshd = host.running("sshd")
    return CheckResult("pass", ["未发现 telnet、rsh、rlogin 或明文 FTP 登录"]
                       + (["远程管理经 sshd (加密)"] if sshd else []))


def _vsftpd(host: HostView) -> Optional[dict[str, tuple[str, str]]]:
    for p in ("etc/vsftpd.conf", "etc/vsftpd/vsftpd.conf"):
        lines = host.lines(p)
        if lines:
            out: dict[str, tuple[str, str]] = {}
            for where, line in lines:
                key, sep, value = line.partition("=")
                if sep:
                    out.setdefault(key.strip().lower(), (value.strip(), where))
            return out
    return None


_MFA_MODULES = ("pam_google_authenticator.so", "pam_oath.so", "pam_u2f.so", "pam_yubico.so", "pam_radius_auth.so",
                "pam_duo.so", "pam_sss.so")


def multi_factor(host: HostView, th: Thresholds) -> CheckResult:
    evidence = [f"{p.where}: {p.module}" for p in host.pam("sshd", "auth")
                if p.module in _MFA_MODULES and p.module != "pam_sss.so"]
    for key, value, where in host.sshd_config:
        if key == "authenticationmethods" and any("," in m for m in value.split()):
            evidence.append(f"{where}: AuthenticationMethods {value}")
    if evidence:
        return CheckResult("pass", evidence)
    return CheckResult("manual", ["本机未见双因素鉴别 (PAM 动态口令/U2F 模块, 或 sshd AuthenticationMethods 组合)"],
                       "若经堡垒机或统一认证实现口令+密码技术的双因素登录, 请人工确认并留存证据; 否则为 sshd 配置 "
                       "AuthenticationMethods publickey,password 或动态口令")


CHECKS = (
    CheckSpec("unique_ids", "identity", "a", (2, 3), "身份标识唯一 (UID、用户名不重复)", unique_ids),
    CheckSpec("no_empty_password", "identity", "a", (2, 3), "不存在空口令账户", no_empty_password),
    CheckSpec("no_weak_password", "identity", "a", (2, 3), "不存在弱口令账户 (口令审计结果)", no_weak_password),
    CheckSpec("password_complexity", "identity", "a", (2, 3), "口令复杂度要求 (长度与字符类别)", password_complexity),
    CheckSpec("password_expiry", "identity", "a", (2, 3), "口令定期更换 (最长有效期)", password_expiry),
    CheckSpec("login_lockout", "identity", "b", (2, 3), "登录失败处理 (限制非法登录次数并锁定)", login_lockout),
    CheckSpec("session_timeout", "identity", "b", (2, 3), "登录连接超时自动退出", session_timeout),
    CheckSpec("remote_admin_encrypted", "identity", "c", (2, 3), "远程管理防窃听 (无明文远程登录)",
              remote_admin_encrypted),
    CheckSpec("multi_factor", "identity", "d", (3,), "两种或以上组合的鉴别技术", multi_factor),
)
