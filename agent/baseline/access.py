"""访问控制 (access control): default and shared accounts, root's remote login, idle accounts, sudo, file modes,
security labels (SELinux / AppArmor)."""

from __future__ import annotations

import stat
import struct
import time
from typing import Optional

from agent.baseline.host import HostView
from agent.baseline.model import CheckResult, CheckSpec, Thresholds

__all__ = ["CHECKS", "last_logins"]

DAY = 86400
# struct lastlog (utmp.h): int32 ll_time, char ll_line[32], char ll_host[256] -- 292 bytes on every glibc ABI.
_LASTLOG = struct.Struct("=i32s256s")


def key_file_modes(host: HostView, th: Thresholds) -> CheckResult:
    # path -> (mode bits others/group must not have, owners allowed)
    files = {
        "etc/passwd": stat.S_IWGRP | stat.S_IWOTH,
        "etc/group": stat.S_IWGRP | stat.S_IWOTH,
        "etc/shadow": stat.S_IRWXO | stat.S_IWGRP,
        "etc/gshadow": stat.S_IRWXO | stat.S_IWGRP,
        "etc/sudoers": stat.S_IWGRP | stat.S_IRWXO,
        "etc/ssh/sshd_config": stat.S_IWGRP | stat.S_IWOTH,
        "etc/login.defs": stat.S_IWGRP | stat.S_IWOTH,
    }
    for key in host.glob("etc/ssh/ssh_host_*_key"):
        files[str(key.relative_to(host.root))] = stat.S_IRWXO | stat.S_IWGRP
    bad, seen = [], 0
    for rel, forbidden in files.items():
        st = host.stat(rel)
        if st is None:
            continue
        seen += 1
        mode = stat.S_IMODE(st.st_mode)
        if mode & forbidden or st.st_uid != 0:
            bad.append(f"/{rel}: 权限 {mode:04o}, 属主 uid {st.st_uid}")
    if not seen:
        return CheckResult("manual", ["未找到 /etc/passwd 等关键文件"], "")
    if bad:
        return CheckResult("fail", bad, "chown root; chmod 0644 /etc/passwd /etc/group; chmod 0000 或 0640 "
                                        "/etc/shadow /etc/gshadow; chmod 0440 /etc/sudoers; chmod 0600 主机私钥")
    return CheckResult("pass", [f"{seen} 个关键文件 (passwd, shadow, sudoers, sshd_config, 主机私钥 ...) 权限正确"])


def default_accounts(host: HostView, th: Thresholds) -> CheckResult:
    if not host.shadow:
        return CheckResult("manual", ["无法读取 /etc/shadow (需要 root)"], "以 root 运行检查")
    min_uid = host.human_min_uid()
    usable = [f"{a.name} (uid {a.uid}, {host.shadow[a.name].where}): 系统默认账户可用口令登录"
              for a in host.accounts
              if 0 < a.uid < min_uid and a.name in host.shadow and host.shadow[a.name].usable]
    if usable:
        return CheckResult("fail", usable, "锁定不用的默认账户: passwd -l <账户>; usermod -s /sbin/nologin <账户>")
    system = sum(1 for a in host.accounts if 0 < a.uid < min_uid)
    return CheckResult("pass", [f"{system} 个系统默认账户均已锁定口令"])


def root_remote_login(host: HostView, th: Thresholds) -> CheckResult:
    if not host.exists("etc/ssh/sshd_config"):
        return CheckResult("not_applicable", ["未安装 sshd"])
    found = host.sshd("permitrootlogin")
    value, where = found if found else ("prohibit-password", "/etc/ssh/sshd_config (未设置, OpenSSH 7.0 起默认)")
    evidence = [f"{where}: PermitRootLogin {value}"]
    if value.lower() in ("no", "prohibit-password", "without-password", "forced-commands-only"):
        return CheckResult("pass", evidence)
    return CheckResult("fail", evidence, "在 /etc/ssh/sshd_config 设置 PermitRootLogin no, 管理员用个人账户登录后 "
                                         "sudo, 然后 systemctl reload sshd")


def no_shared_root(host: HostView, th: Thresholds) -> CheckResult:
    extra = [f"{a.name} ({a.where}): UID 0" for a in host.accounts if a.uid == 0 and a.name != "root"]
    if extra:
        return CheckResult("fail", extra,
            "删除或改掉 root 以外的 UID 0 账户 (userdel / usermod -u), 管理员各用个人账户")
    return CheckResult("pass", ["只有 root 的 UID 为 0"])


def last_logins(host: HostView) -> Optional[dict[int, int]]:
    """uid -> last login (unix time) from /var/log/lastlog, or lastlog2's database; None when neither exists."""
    path = host.path("var/log/lastlog")
    out: dict[int, int] = {}
    try:
        with open(path, "rb") as fh:
            for a in host.accounts:
                fh.seek(a.uid * _LASTLOG.size)
                rec = fh.read(_LASTLOG.size)
                if len(rec) == _LASTLOG.size:
                    t = _LASTLOG.unpack(rec)[0]
                    if t > 0:
                        out[a.uid] = t
    except FileNotFoundError:
        return _lastlog2(host)
    except OSError:
        return None
    return out


def _lastlog2(host: HostView) -> Optional[dict[int, int]]:
    path = host.path("var/lib/lastlog/lastlog2.db")
    if not path.exists():
        return None
    try:
        import sqlite3

        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
        try:
            rows = con.execute("SELECT Name, Time FROM Lastlog2 LIMIT 100000").fetchall()
        finally:
            con.close()
    except Exception:  # noqa: BLE001 - an unreadable database is "unknown", never "nobody logged in"
        return None
    uids = {a.name: a.uid for a in host.accounts}
    return {uids[name]: int(t) for name, t in rows if name in uids and t}


def inactive_accounts(host: HostView, th: Thresholds) -> CheckResult:
    if not host.shadow:
        return CheckResult("manual", ["无法读取 /etc/shadow (需要 root)"], "以 root 运行检查")
    logins = last_logins(host)
    if logins is None:
        return CheckResult("manual", ["没有 /var/log/lastlog 或 lastlog2 数据库, 无法判断账户最近登录"],
                           "人工确认多余、过期账户")
    min_uid = host.human_min_uid()
    limit = host.now - th.inactive_account_days * DAY
    stale, people = [], 0
    for a in host.accounts:
        entry = host.shadow.get(a.name)
        if a.uid < min_uid or entry is None or not entry.usable or not a.login_shell:
            continue
        people += 1
        last = logins.get(a.uid)
        if last is not None and last < limit:
            stale.append(f"{a.name}: 最近登录 {time.strftime('%Y-%m-%d', time.localtime(last))} "
                         f"({int((host.now - last) // DAY)} 天前)")
        elif last is None and entry.last_change_days is not None and entry.last_change_days * DAY < limit:
            stale.append(f"{a.name}: 从未登录, 口令设置于 {int((host.now / DAY) - entry.last_change_days)} 天前")
    evidence = [f"{people} 个可登录的人员账户, 超过 {th.inactive_account_days} 天未用: {len(stale)}"] + stale
    if stale:
        return CheckResult("fail", evidence, "删除或锁定离岗、多余账户 (userdel / usermod -L -e 1 <账户>)")
    return CheckResult("pass", evidence)


def sudo_least_privilege(host: HostView, th: Thresholds) -> CheckResult:
    from agent.audit.sudoers import nopasswd_accounts

    sudoers = host.path("etc/sudoers")
    if not sudoers.exists():
        return CheckResult("not_applicable", ["未安装 sudo"])
    groups: dict[str, tuple[int, list[str]]] = {}
    for _, line in host.lines("etc/group"):
        f = line.split(":")
        if len(f) >= 4 and f[2].isdigit():
            groups[f[0]] = (int(f[2]), [m for m in f[3].split(",") if m])
    accounts = [(a.name, a.uid, a.gid) for a in host.accounts]
    try:
        nopasswd = nopasswd_accounts(sudoers, accounts, groups, host.root if str(host.root) != "/" else None)
    except OSError as exc:
        return CheckResult("manual", [f"无法读取 /etc/sudoers: {exc.strerror}"], "以 root 运行检查")
    nopasswd.pop("root", None)
    admins = sorted({m for g in ("sudo", "wheel", "admin") for m in groups.get(g, (0, []))[1]})
    evidence = [f"sudo/wheel 组成员: {', '.join(admins) or '无'}"]
    if nopasswd:
        root = str(host.root).rstrip("/")
        evidence += [f"{name}: 免密 sudo ({where[len(root):] if root and where.startswith(root) else where})"
                     for name, where in sorted(nopasswd.items())]
        return CheckResult("fail", evidence, "去掉 sudoers 中的 NOPASSWD, 只授予所需命令 (如 user ALL=(root) "
                                             "/usr/bin/systemctl restart app)")
    return CheckResult("pass", evidence)


def admin_separation(host: HostView, th: Thresholds) -> CheckResult:
    return CheckResult("manual", ["系统管理员、审计管理员、安全管理员的权限分离无法从主机配置判断"],
                       "人工确认: 管理员各用个人账户, 审计日志的查看与删除不由系统管理员一人掌握")


def security_labels(host: HostView, th: Thresholds) -> CheckResult:
    enforce = host.read("sys/fs/selinux/enforce")
    if enforce is not None:
        if enforce.strip() == "1":
            return CheckResult("pass", ["SELinux: enforcing (/sys/fs/selinux/enforce)"])
        return CheckResult("fail", ["SELinux: permissive (/sys/fs/selinux/enforce = 0)"],
                           "在 /etc/selinux/config 设置 SELINUX=enforcing, 用 setenforce 1 立即生效")
    apparmor = host.read("sys/module/apparmor/parameters/enabled")
    if apparmor is not None and apparmor.strip().upper() == "Y":
        profiles = host.read("sys/kernel/security/apparmor/profiles")
        enforced = sum(1 for line in (profiles or "").splitlines() if line.endswith("(enforce)"))
        if enforced:
            return CheckResult("pass", [f"AppArmor: 已启用, {enforced} 个配置处于 enforce 模式"])
        if profiles is None:
            return CheckResult("manual", ["AppArmor 已启用, 但无法读取已加载的配置 (需要 root)"], "aa-status 人工确认")
        return CheckResult("fail", ["AppArmor 已启用, 但没有 enforce 模式的配置"], "aa-enforce /etc/apparmor.d/*")
    selinux_cfg = [t for _, t in host.lines("etc/selinux/config") if t.startswith("SELINUX=")]
    return CheckResult("fail", ["SELinux 与 AppArmor 均未启用" + (f" ({selinux_cfg[0]})" if selinux_cfg else "")],
                       "RHEL 系: /etc/selinux/config 设置 SELINUX=enforcing 后重启; Debian 系: 启用 AppArmor; "
                       "麒麟可启用 KYSEC")




CHECKS = (
    CheckSpec("key_file_modes", "access", "a", (2, 3), "关键文件的访问权限", key_file_modes),
    CheckSpec("default_accounts", "access", "b", (2, 3), "默认账户已锁定", default_accounts),
    CheckSpec("root_remote_login", "access", "b", (2, 3), "禁止 root 远程口令登录", root_remote_login),
    CheckSpec("no_shared_root", "access", "c", (2, 3), "无共享的 UID 0 账户", no_shared_root),
    CheckSpec("inactive_accounts", "access", "c", (2, 3), "无多余、长期未用的账户", inactive_accounts),
    CheckSpec("sudo_least_privilege", "access", "d", (2, 3), "管理用户最小权限 (无免密 sudo)", sudo_least_privilege),
    CheckSpec("admin_separation", "access", "d", (2, 3), "管理用户的权限分离", admin_separation),
    CheckSpec("security_labels", "access", "g", (3,), "安全标记与强制访问控制 (SELinux / AppArmor)", security_labels),
)
