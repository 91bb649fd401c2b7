"""The process table, as the services collector needs it: name, command line, user, resident memory.

On Linux /proc is read directly, and only what the configured watches need (the command line only when a
pattern is configured, the user only when a watch names one): about four times cheaper than psutil's
generic per-process work. Elsewhere psutil supplies the same fields.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcInfo", "iter_processes", "iter_processes_psutil", "iter_processes_procfs"]

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_COMM_LEN = 15  # TASK_COMM_LEN - 1: longer names are cut in /proc/<pid>/stat


@dataclass(frozen=True)
class ProcInfo:
    """What the matcher needs of one process (tests build these directly)."""

    pid: int
    name: str
    cmdline: tuple[str, ...]
    username: str
    rss: float  # bytes


def iter_processes(need_cmdline: bool = True, need_user: bool = True, proc_root: str = "/proc") -> Iterator[ProcInfo]:
    """Every live, non-zombie process."""
    if Path(proc_root, "self", "stat").is_file():
        return iter_processes_procfs(proc_root, need_cmdline, need_user)
    return iter_processes_psutil()


def iter_processes_psutil() -> Iterator[ProcInfo]:
    from agent.optional import psutil

    for p in psutil.process_iter(["name", "cmdline", "username", "status", "memory_info"]):
        info = p.info
        if info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        mem = info.get("memory_info")
        yield ProcInfo(
            pid=p.pid,
            name=info.get("name") or "",
            cmdline=tuple(info.get("cmdline") or ()),
            username=info.get("username") or "",
            rss=float(mem.rss) if mem is not None else 0.0,
        )


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:  # the process exited meanwhile, or hidepid
        return None


def iter_processes_procfs(proc_root: str, need_cmdline: bool, need_user: bool) -> Iterator[ProcInfo]:
    import pwd  # Unix only

    users: dict[int, str] = {}
    for entry in os.scandir(proc_root):
        if not entry.name.isdigit():
            continue
        base = f"{proc_root}/{entry.name}"
        stat = _read(f"{base}/stat")
        if not stat:
            continue
        # "pid (comm) state ppid ..." - comm may itself contain spaces and parentheses, so split at the last ")".
        head, _, rest = stat.rpartition(b") ")
        fields = rest.split()
        if len(fields) < 22 or fields[0] == b"Z":
            continue
        name = head.partition(b" (")[2].decode("utf-8", "replace")
        cmdline: tuple[str, ...] = ()
        if need_cmdline or len(name) >= _COMM_LEN:
            raw = _read(f"{base}/cmdline") or b""
            cmdline = tuple(raw.decode("utf-8", "replace").rstrip("\0").split("\0")) if raw else ()
            if len(name) >= _COMM_LEN and cmdline:
                # The kernel cut the name; the executable's base name is the full one (psutil does the same).
                full = os.path.basename(cmdline[0])
                if full.startswith(name):
                    name = full
        username = ""
        if need_user:
            try:
                uid = entry.stat().st_uid
            except OSError:
                continue
            if uid not in users:
                try:
                    users[uid] = pwd.getpwuid(uid).pw_name
                except KeyError:
                    users[uid] = str(uid)
            username = users[uid]
        # Field 24 of stat (rss, in pages) is the 22nd after "state".
        yield ProcInfo(int(entry.name), name, cmdline, username, float(int(fields[21]) * _PAGE_SIZE))
