"""Whether a listening service may be logged in to: the agent must never hand a password, or its CPU, to an
impostor -- a local user's process that took a service's port or name.

A listener is trusted when every socket on its port was opened by root or by the service's own system user
(the kernel's socket table says who), and, where the agent can see the process, its executable is a file owned
by root that nobody else may write (package-installed), or one the operator named. Anything else is not tried;
the scan says why, and the metric for it is absent (not checked), never 0 (checked and fine).
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Collection, Mapping
from typing import Optional

__all__ = ["SERVICE_USERS", "untrusted_reason"]

# System users the packages of Debian, RHEL/CentOS, openEuler and Kylin run these services as.
SERVICE_USERS: Mapping[str, frozenset[str]] = {
    "mysql": frozenset({"mysql", "mariadb"}),
    "redis": frozenset({"redis"}),
    "ftp": frozenset({"ftp", "vsftpd"}),
    "postgresql": frozenset({"postgres"}),
    "tomcat": frozenset({"tomcat", "tomcat7", "tomcat8", "tomcat9", "tomcat10", "tomcat11"}),
}


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def untrusted_reason(
    service: str,
    uids: Collection[int],
    exe: Optional[str],
    trusted_executables: Collection[str] = (),
) -> str:
    """'' when the listener may be tried; else why not, in Chinese and English for the scan report."""
    if not uids:
        return "无法确认监听该端口的账户 (owner of the listening socket unknown)"
    allowed = SERVICE_USERS.get(service, frozenset())
    strangers = sorted({_user(u) for u in uids if u != 0 and _user(u) not in allowed})
    if strangers:
        return (f"监听该端口的是普通账户 {', '.join(strangers)}, 不是 root 或服务账户, 未尝试登录 "
                f"(listener owned by {', '.join(strangers)}: not tried)")
    if exe is None:
        return ""  # the socket's owner is root or the service user; the process itself is out of our sight
    if exe in trusted_executables:
        return ""
    try:
        st = os.stat(exe)
    except OSError:
        return f"无法检查程序文件 {exe} (cannot stat the executable)"
    if st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (f"程序文件 {exe} 不属于 root 或可被他人修改, 未尝试登录 "
                f"(executable not root-owned or writable by others: not tried; list it in trusted_executables)")
    return ""
