"""File modes that let a local user become root or read what only root may: read-only and bounded.

* world-writable files, and world-writable directories without the sticky bit, where root runs what it
  finds: /etc, cron (/etc/cron*, /var/spool/cron), systemd unit and SysV init directories, /etc/profile.d;
* the account and sudo files: /etc/passwd, group (at most 0644), shadow, gshadow (no access for others, owner
  root), sudoers and sudoers.d (owner root, not writable by group or others);
* SUID/SGID programs that no package owns (dpkg's file lists, or one ``rpm -qf`` call for all of them);
* authorized_keys files (and their .ssh folders) writable by anyone but their owner.

Every path is taken under ``root`` (a temp tree in tests); at most ``max_entries`` entries are looked at.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from agent.process import CommandError, run

if TYPE_CHECKING:
    from typing import TypeAlias  # Python 3.10+; aliases are strings so that 3.6-3.8 never evaluate them

__all__ = ["CHECKS", "PermissionFinding", "PermissionResult", "check_permissions"]

Shown: TypeAlias = "Callable[[Path], str]"
Walk: TypeAlias = "Callable[[Path], Iterable[tuple[Path, os.stat_result]]]"

CHECKS = ("world_writable", "key_file", "suid_unpackaged", "authorized_keys")
_ROOT_RUNS = ("etc", "var/spool/cron", "lib/systemd/system", "usr/lib/systemd/system", "etc/systemd/system")
_SUID_DIRS = ("usr/bin", "usr/sbin", "bin", "sbin", "usr/local/bin", "usr/local/sbin", "usr/libexec",
              "usr/lib/openssh", "opt")
# path -> (mode bits others/group must not have, owner must be root, allowed group names)
_KEY_FILES: dict[str, tuple[int, tuple[str, ...]]] = {
    "etc/passwd": (stat.S_IWGRP | stat.S_IWOTH, ()),
    "etc/group": (stat.S_IWGRP | stat.S_IWOTH, ()),
    "etc/shadow": (stat.S_IRWXO | stat.S_IWGRP, ("root", "shadow")),
    "etc/gshadow": (stat.S_IRWXO | stat.S_IWGRP, ("root", "shadow")),
    "etc/sudoers": (stat.S_IWGRP | stat.S_IWOTH, ()),
}


@dataclass(frozen=True)
class PermissionFinding:
    check: str
    path: str  # as on the host (without the test root)
    detail: str
    fix: str


@dataclass
class PermissionResult:
    findings: list[PermissionFinding] = field(default_factory=list)
    looked_at: int = 0
    truncated: bool = False
    notes: list[str] = field(default_factory=list)

    def count(self, check: str) -> int:
        return sum(1 for f in self.findings if f.check == check)


def _mode(st: os.stat_result) -> str:
    return oct(stat.S_IMODE(st.st_mode))[2:].rjust(4, "0")


def _group(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def check_permissions(root: Path = Path("/"), max_entries: int = 200_000, timeout: float = 60.0) -> PermissionResult:
    result = PermissionResult()
    budget = [max_entries]

    def shown(path: Path) -> str:
        return "/" + str(path.relative_to(root)) if root != Path("/") else str(path)

    def walk(top: Path) -> Iterable[tuple[Path, os.stat_result]]:
        for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
            dirnames.sort()
            for name in [*dirnames, *sorted(filenames)]:
                if budget[0] <= 0:
                    result.truncated = True
                    return
                budget[0] -= 1
                result.looked_at += 1
                path = Path(dirpath, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                yield path, st

    seen: set[Path] = set()
    for rel in _ROOT_RUNS:
        top = root / rel
        if not top.is_dir():
            continue
        for path, st in walk(top):
            if path in seen or stat.S_ISLNK(st.st_mode):
                continue
            seen.add(path)
            writable = st.st_mode & stat.S_IWOTH
            sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
            if writable and not sticky_dir and (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                what = "目录" if stat.S_ISDIR(st.st_mode) else "文件"
                result.findings.append(PermissionFinding(
                    "world_writable", shown(path),
                    f"{what}所有人可写 (mode {_mode(st)}), root 会读取或执行这里的内容: "
                    "任何本地用户可借此获得 root",
                    f"chmod o-w {shown(path)}",
                ))
    for rel, (forbidden, groups) in _KEY_FILES.items():
        _key_file(root / rel, shown, forbidden, groups, result)
    sudoers_d = root / "etc/sudoers.d"
    if sudoers_d.is_dir():
        for path in sorted(sudoers_d.iterdir())[:1000]:
            _key_file(path, shown, stat.S_IWGRP | stat.S_IWOTH, (), result)
    _suid(root, shown, walk, timeout, result)
    _authorized_keys(root, shown, result)
    return result


def _key_file(path: Path, shown: Shown, forbidden: int, groups: Sequence[str], result: PermissionResult) -> None:
    try:
        st = os.lstat(path)
    except OSError:
        return
    problems = []
    if st.st_mode & forbidden:
        problems.append(f"mode {_mode(st)}")
    if st.st_uid != 0:
        problems.append(f"owner {_user(st.st_uid)}")
    if groups and _group(st.st_gid) not in groups and st.st_gid != 0:
        problems.append(f"group {_group(st.st_gid)}")
    if problems:
        want = "0640 root:shadow" if groups else ("0440 root:root" if "sudoers" in str(path) else "0644 root:root")
        result.findings.append(PermissionFinding(
            "key_file", shown(path), f"关键文件权限不当: {', '.join(problems)} (expected at most {want})",
            f"chown root {shown(path)} && chmod {want.split()[0]} {shown(path)}",
        ))


def _aliases(path: str) -> set[str]:
    """A path and what merged /usr makes the same file (dpkg lists /bin/su; the disk has /usr/bin/su)."""
    out = {path}
    for short in ("/bin/", "/sbin/", "/lib/"):
        if path.startswith("/usr" + short):
            out.add(path[4:])
        elif path.startswith(short):
            out.add("/usr" + path)
    return out


def _packaged_paths(root: Path) -> Optional[set[str]]:
    info = root / "var/lib/dpkg/info"
    if not info.is_dir():
        return None
    owned: set[str] = set()
    for listing in sorted(info.glob("*.list"))[:20000]:
        try:
            owned.update(line.strip() for line in listing.read_text(encoding="utf-8", errors="replace").splitlines())
        except OSError:
            continue
    return owned


def _suid(root: Path, shown: Shown, walk: Walk, timeout: float, result: PermissionResult) -> None:
    candidates: list[tuple[Path, os.stat_result]] = []
    inodes: set[tuple[int, int]] = set()
    for rel in _SUID_DIRS:
        top = root / rel
        if top.is_dir() and not top.is_symlink():  # merged /usr: /bin is /usr/bin, walked once
            for path, st in walk(top):
                special = stat.S_ISREG(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID)
                if special and (st.st_dev, st.st_ino) not in inodes:
                    inodes.add((st.st_dev, st.st_ino))
                    candidates.append((path, st))
    if not candidates:
        return
    owned = _packaged_paths(root)
    unowned: list[tuple[Path, os.stat_result]] = []
    if owned is not None:
        unowned = [(p, st) for p, st in candidates if not _aliases(shown(p)) & owned]
    elif root == Path("/") and Path("/usr/bin/rpm").exists():
        try:
            out = run(["rpm", "-qf", "--", *[str(p) for p, _ in candidates]], timeout=timeout).stdout
        except CommandError:
            result.notes.append("rpm -qf 未能完成, 未检查 SUID 程序的归属 (could not ask rpm which package owns them)")
            return
        missing = {line.split("file ", 1)[1].split(" is not owned", 1)[0] for line in out.splitlines()
                   if "is not owned by any package" in line}
        unowned = [(p, st) for p, st in candidates if str(p) in missing]
    else:
        result.notes.append("没有 dpkg 或 rpm 的文件清单, 未检查 SUID 程序的归属 (no package database to ask)")
        return
    for path, st in unowned:
        bit = "SUID" if st.st_mode & stat.S_ISUID else "SGID"
        result.findings.append(PermissionFinding(
            "suid_unpackaged", shown(path),
            f"{bit} 程序不属于任何软件包 (owner {_user(st.st_uid)}, mode {_mode(st)}): 常见于后门或遗留的手工安装",
            f"确认来源; 不需要时 chmod u-s,g-s {shown(path)} 或删除",
        ))


def _authorized_keys(root: Path, shown: Shown, result: PermissionResult) -> None:
    homes = [root / "root"]
    try:
        homes += sorted(p for p in (root / "home").iterdir() if p.is_dir())[:5000]
    except OSError:
        pass
    for home in homes:
        ssh = home / ".ssh"
        for path in (ssh, ssh / "authorized_keys", ssh / "authorized_keys2"):
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            try:
                home_owner = os.lstat(home).st_uid
            except OSError:
                home_owner = st.st_uid
            if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or st.st_uid not in (home_owner, 0):
                result.findings.append(PermissionFinding(
                    "authorized_keys", shown(path),
                    f"SSH 登录密钥文件可被他人修改 (owner {_user(st.st_uid)}, mode {_mode(st)}): "
                    "他人可加入自己的密钥登录该账户",
                    f"chown {_user(home_owner)} {shown(path)} && chmod go-w {shown(path)}",
                ))
