"""安全审计 (security audit): auditd and its rules, syslog, log retention (网络安全法: ≥ 6 months), forwarding,
protection of the logs and of the audit process."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Optional

from agent.baseline.host import HostView
from agent.baseline.model import CheckResult, CheckSpec, Thresholds

__all__ = ["CHECKS", "audit_rule_lines", "logrotate_days"]

DAY = 86400
_PERIOD = {"daily": 1, "weekly": 7, "monthly": 30, "yearly": 365}
_AUTH_LOGS = ("/var/log/secure", "/var/log/auth.log", "/var/log/messages", "/var/log/syslog")


def auditd_running(host: HostView, th: Thresholds) -> CheckResult:
    if host.running("auditd"):
        return CheckResult("pass", ["auditd 正在运行"])
    installed = host.exists("sbin/auditd") or host.exists("usr/sbin/auditd")
    return CheckResult("fail", ["auditd 已安装但未运行" if installed else "未安装 auditd"],
                       ("systemctl enable --now auditd" if installed else
                        "安装 auditd (Debian: apt install auditd; RHEL 系: yum install audit) 并 "
                        "systemctl enable --now auditd"))


def audit_rule_lines(host: HostView) -> list[tuple[str, str]]:
    paths = host.glob("etc/audit/rules.d/*.rules")
    if not paths:
        paths = [host.path("etc/audit/audit.rules")]
    return [x for p in paths for x in host.lines(p)]


# category -> (description, patterns any of which covers it)
_RULE_CATEGORIES = {
    "identity": ("账户与口令文件 (passwd, shadow, group, sudoers) 的修改",
                 (r"-w\s+/etc/(passwd|shadow|group|gshadow)\b", r"-F\s+path=/etc/(passwd|shadow|group|gshadow)\b")),
    "privilege": ("特权使用 (sudo, su, 以 root 执行的命令)",
                  (r"-w\s+/etc/sudoers", r"path=/usr/bin/(sudo|su)\b", r"-w\s+/usr/bin/(sudo|su)\b",
                   r"-S\s+execve.*euid=0", r"euid=0.*-S\s+execve", r"-w\s+/var/log/sudo\.log")),
    "logins": ("登录记录 (lastlog, faillog, faillock, wtmp/btmp)",
               (r"-w\s+/var/log/(lastlog|faillog|wtmp|btmp|tallylog)\b", r"-w\s+/var/run/faillock",
                r"-w\s+/run/faillock")),
}


def audit_rules(host: HostView, th: Thresholds) -> CheckResult:
    lines = audit_rule_lines(host)
    if not host.exists("etc/audit"):
        return CheckResult("fail", ["未安装 auditd, 没有审计规则"], "先安装并启用 auditd")
    evidence, missing = [], []
    for key, (text, patterns) in _RULE_CATEGORIES.items():
        hit = next(((w, t) for w, t in lines if any(re.search(p, t) for p in patterns)), None)
        if hit:
            evidence.append(f"{hit[0]}: {hit[1]}  ({text})")
        elif key == "logins" and host.running("auditd"):
            evidence.append("登录: 由 PAM 写入审计日志 (USER_LOGIN/USER_AUTH), 无需规则")
        else:
            missing.append(text)
    if missing:
        rules = len([t for _, t in lines if t.startswith(("-w", "-a"))])
        return CheckResult("fail", evidence + [f"共 {rules} 条监视规则; 未覆盖: {'; '.join(missing)}"],
                           "新建 /etc/audit/rules.d/shaobing.rules: -w /etc/passwd -p wa -k identity; "
                           "-w /etc/shadow -p wa -k identity; -w /etc/group -p wa -k identity; "
                           "-w /etc/sudoers -p wa -k privilege; -a always,exit -F arch=b64 -S execve -F euid=0 "
                           "-F auid>=1000 -F auid!=unset -k privilege; -w /var/log/lastlog -p wa -k logins; "
                           "然后 augenrules --load")
    return CheckResult("pass", evidence)


def syslog_running(host: HostView, th: Thresholds) -> CheckResult:
    daemons = host.running("rsyslogd", "syslog-ng", "syslogd")
    if daemons:
        return CheckResult("pass", [f"{d} 正在运行" for d in daemons])
    if host.running("systemd-journald"):
        storage = _journald(host).get("storage", ("auto", "默认"))
        persistent = storage[0].lower() == "persistent" or (storage[0].lower() == "auto"
                                                            and host.exists("var/log/journal"))
        evidence = [f"systemd-journald 正在运行, Storage={storage[0]} ({storage[1]})"]
        if persistent:
            return CheckResult("pass", evidence + ["日志持久保存在 /var/log/journal"])
        return CheckResult("fail", evidence + ["日志只在内存中 (/run/log/journal), 重启即丢失"],
                           "mkdir -p /var/log/journal 并在 /etc/systemd/journald.conf 设置 Storage=persistent")
    return CheckResult("fail", ["没有运行中的日志服务 (rsyslog, syslog-ng, journald)"],
        "systemctl enable --now rsyslog")


def _journald(host: HostView) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for path in [host.path("etc/systemd/journald.conf"), *host.glob("etc/systemd/journald.conf.d/*.conf")]:
        for where, line in host.lines(path):
            key, sep, value = line.partition("=")
            if sep:
                out[key.strip().lower()] = (value.strip(), where)
    return out


def _logrotate_blocks(host: HostView) -> tuple[dict[str, str], list[tuple[list[str], dict[str, str], str]]]:
    """The global directives and each stanza (its paths, its directives, where) of logrotate's config."""
    files = [host.path("etc/logrotate.conf")]
    globals_: dict[str, str] = {}
    blocks: list[tuple[list[str], dict[str, str], str]] = []
    seen: set[Path] = set()
    while files and len(seen) < 512:
        path = files.pop(0)
        if path in seen:
            continue
        seen.add(path)
        current: Optional[tuple[list[str], dict[str, str], str]] = None
        in_script = False
        pending: list[str] = []  # log paths before a "{" on a later line (Debian's rsyslog stanza)
        for where, line in host.lines(path):
            word = line.split()[0]
            if in_script:
                in_script = word != "endscript"
                continue
            if word in ("postrotate", "prerotate", "firstaction", "lastaction", "preremove"):
                in_script = True
                continue
            if line.endswith("{"):
                current = (pending + line[:-1].split(), {}, where)
                pending = []
                blocks.append(current)
                continue
            if current is None and word.startswith(("/", '"')):
                pending.extend(p.strip('"') for p in line.split())
                continue
            if line == "}":
                current = None
                continue
            target = current[1] if current is not None else globals_
            parts = line.split()
            if parts[0] in _PERIOD:
                target["period"] = parts[0]
            elif parts[0] in ("rotate", "maxage", "size") and len(parts) > 1:
                target[parts[0]] = parts[1]
            elif parts[0] == "include" and current is None and len(parts) > 1:
                inc = host.path(parts[1])
                files.extend(sorted(p for p in inc.iterdir() if p.is_file())[:512] if inc.is_dir() else [inc])
    return globals_, blocks


def logrotate_days(host: HostView, log: str) -> Optional[tuple[Optional[int], str]]:
    """How many days logrotate keeps ``log`` (None when rotated by size only), and where that is set."""
    globals_, blocks = _logrotate_blocks(host)
    for paths, directives, where in blocks:
        if log not in paths:
            continue
        d = dict(globals_)
        d.update(directives)
        period = _PERIOD.get(d.get("period", ""))
        rotate = int(d["rotate"]) if d.get("rotate", "").lstrip("-").isdigit() else 0
        if period is None:
            return (None, where) if "size" in d else (rotate * 7, where)  # logrotate's own default is weekly
        days = rotate * period if rotate >= 0 else 10 ** 6  # rotate -1 keeps every old log
        if d.get("maxage", "").isdigit():
            days = min(days, int(d["maxage"]))
        return days, where
    return None


def _oldest_days(host: HostView, pattern: str) -> Optional[int]:
    """Age in days of the oldest file matching ``pattern`` (a rotated log, a journal file), None if none."""
    oldest: Optional[float] = None
    for p in host.glob(pattern):
        try:
            m = p.stat().st_mtime
        except OSError:
            continue
        oldest = m if oldest is None else min(oldest, m)
    return None if oldest is None else int((host.now - oldest) // DAY)


def log_retention(host: HostView, th: Thresholds) -> CheckResult:
    evidence = []
    need = th.log_retention_days
    for log in _AUTH_LOGS:
        found = logrotate_days(host, log)
        if found is None:
            continue
        days, where = found
        oldest = _oldest_days(host, log.lstrip("/") + "*")
        evidence.append(f"{where}: {log} 按配置保留 {'按大小轮转, 天数不定' if days is None else f'{days} 天'}"
                        + (f"; 现存最早的一份 {oldest} 天前" if oldest is not None else ""))
        if days is not None and days >= need:
            return CheckResult("pass", evidence + _auditd_retention(host))
        break
    journald = _journald(host)
    if not evidence and not host.running("rsyslogd", "syslog-ng"):
        retention = journald.get("maxretentionsec")
        evidence.append(f"日志只在 journald: MaxRetentionSec={retention[0] if retention else '未设置'}, "
                        f"SystemMaxUse={journald.get('systemmaxuse', ('默认 (磁盘的 10%)', ''))[0]}")
        oldest = _oldest_days(host, "var/log/journal/*/*.journal")
        if oldest is not None:
            evidence.append(f"现存最早的日志文件 {oldest} 天前")
            if oldest >= need:
                return CheckResult("pass", evidence)
        if _forwarding(host):
            return CheckResult("manual", evidence + ["日志已转发到日志服务器, 保留期限需在该服务器上确认"], "")
        return CheckResult("manual" if oldest is None else "fail", evidence + [f"判定阈值: 至少保留 {need} 天"],
                           f"在 /etc/systemd/journald.conf 设置 SystemMaxUse 足够保留 {need} 天, 或安装 rsyslog "
                           f"并转发到日志服务器")
    if not evidence:
        return CheckResult("fail", ["未找到认证日志 (secure / auth.log) 的轮转配置"],
                           f"为 /var/log/secure 或 /var/log/auth.log 配置 logrotate 保留至少 {need} 天")
    if _forwarding(host):
        return CheckResult("manual", evidence + ["日志已转发到日志服务器, 保留期限需在该服务器上确认"], "")
    weeks = -(-need // 7)
    return CheckResult("fail", evidence + [f"判定阈值: 至少保留 {need} 天 (网络安全法第二十一条: 不少于六个月)"]
                       + _auditd_retention(host),
                       f"在该 logrotate 配置中设置 weekly 与 rotate {weeks} (或 daily 与 rotate {need}), "
                       "或转发到日志服务器")


def _auditd_conf(host: HostView) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for where, line in host.lines("etc/audit/auditd.conf"):
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip().lower()] = (value.strip(), where)
    return out


def _auditd_retention(host: HostView) -> list[str]:
    conf = _auditd_conf(host)
    if not conf:
        return []
    size = conf.get("max_log_file", ("8", ""))[0]
    num = conf.get("num_logs", ("5", ""))[0]
    action = conf.get("max_log_file_action", ("ROTATE", ""))[0]
    where = next(iter(conf.values()))[1].rsplit(":", 1)[0]
    return [f"{where}: 审计日志按大小轮转 max_log_file={size} MB × num_logs={num}, max_log_file_action={action}"]


_RSYSLOG_FWD = re.compile(r"^[^#\s]\S*\s+(@@?\(?[^\s;]+)|omfwd|type\s*=\s*\"omrelp\"")


def _forwarding(host: HostView) -> list[str]:
    out = []
    for path in [host.path("etc/rsyslog.conf"), *host.glob("etc/rsyslog.d/*.conf")]:
        for where, line in host.lines(path):
            if _RSYSLOG_FWD.search(line):
                out.append(f"{where}: {line[:120]}")
    for path in [host.path("etc/syslog-ng/syslog-ng.conf"), *host.glob("etc/syslog-ng/conf.d/*.conf")]:
        for where, line in host.lines(path):
            if line.startswith("destination") and re.search(r"\b(network|tcp6?|udp6?|syslog)\s*\(", line):
                out.append(f"{where}: {line[:120]}")
    for plugin in ("etc/audit/plugins.d/au-remote.conf", "etc/audisp/plugins.d/au-remote.conf"):
        for where, line in host.lines(plugin):
            if re.match(r"active\s*=\s*yes\b", line):
                out.append(f"{where}: audisp-remote 已启用")
    unit = host.unit_enabled("systemd-journal-upload.service")
    if unit:
        out.append(f"{unit}: systemd-journal-upload 已启用")
    return out


def remote_log_forwarding(host: HostView, th: Thresholds) -> CheckResult:
    found = _forwarding(host)
    if found:
        return CheckResult("pass", found)
    return CheckResult("fail", ["未发现 rsyslog/syslog-ng 转发、audisp-remote 或 journal-upload"],
                       "在 /etc/rsyslog.d/90-remote.conf 写入 *.* @@<日志服务器>:514 (TCP) 并重启 rsyslog, "
                       "使日志在本机被删改时仍有备份")


def audit_log_protected(host: HostView, th: Thresholds) -> CheckResult:
    bad, seen = [], 0
    targets = [("var/log/audit", stat.S_IRWXO | stat.S_IWGRP)]
    targets += [(str(p.relative_to(host.root)), stat.S_IRWXO | stat.S_IWGRP | stat.S_IXUSR)
                for p in host.glob("var/log/audit/audit.log*")]
    targets += [(log.lstrip("/"), stat.S_IWOTH | stat.S_IWGRP | stat.S_IROTH) for log in _AUTH_LOGS]
    for rel, forbidden in targets:
        st = host.stat(rel)
        if st is None:
            continue
        seen += 1
        mode = stat.S_IMODE(st.st_mode)
        if mode & forbidden or (st.st_uid != 0 and not rel.endswith(("syslog", "auth.log", "messages"))):
            bad.append(f"/{rel}: 权限 {mode:04o}, 属主 uid {st.st_uid}")
    if not seen:
        return CheckResult("manual", ["未找到审计日志或认证日志文件"], "人工确认日志保存位置与权限")
    if bad:
        return CheckResult("fail", bad, "chmod 0700 /var/log/audit; chmod 0600 /var/log/audit/audit.log*; "
                                        "认证日志 chmod 0640 (属组 adm 或 root)")
    return CheckResult("pass", [f"{seen} 个审计与认证日志的权限正确 (他人不可读写)"])


def audit_process_protected(host: HostView, th: Thresholds) -> CheckResult:
    if not host.running("auditd"):
        return CheckResult("fail", ["auditd 未运行"], "先启用 auditd")
    evidence = []
    for path in host.unit_files("auditd.service"):
        for where, line in host.lines(path):
            if re.match(r"RefuseManualStop\s*=\s*(yes|true|1)\b", line, re.I):
                evidence.append(f"{where}: {line}")
    for where, line in audit_rule_lines(host):
        if re.match(r"-e\s+2\b", line):
            evidence.append(f"{where}: {line} (规则不可更改, 改动需重启)")
    if evidence:
        return CheckResult("pass", ["auditd 正在运行"] + evidence)
    return CheckResult("fail", ["auditd 正在运行, 但可被 systemctl stop 停止, 规则也可被修改"],
                       "在 auditd.service 的 drop-in 中设置 RefuseManualStop=yes, "
                       "并在 /etc/audit/rules.d/99-finalize.rules "
                       "写入 -e 2")


CHECKS = (
    CheckSpec("auditd_running", "audit", "a", (2, 3), "安全审计功能已启用 (auditd)", auditd_running),
    CheckSpec("audit_rules", "audit", "a", (2, 3), "审计覆盖重要用户行为与安全事件 (审计规则)", audit_rules),
    CheckSpec("syslog_running", "audit", "a", (2, 3), "系统日志服务运行并持久保存", syslog_running),
    CheckSpec("log_retention", "audit", "c", (2, 3), "日志保留不少于六个月", log_retention),
    CheckSpec("remote_log_forwarding", "audit", "c", (2, 3), "日志定期备份 (转发到日志服务器)", remote_log_forwarding),
    CheckSpec("audit_log_protected", "audit", "c", (2, 3), "审计记录受保护 (文件权限)", audit_log_protected),
    CheckSpec("audit_process_protected", "audit", "d", (3,), "审计进程受保护, 防止未经授权的中断",
        audit_process_protected),
)
