"""The mount table and a statvfs that cannot hang the agent.

node_exporter's defaults decide which mounts count as filesystems (pseudo filesystems and container
storage are excluded). ``BoundedStatfs`` runs each statvfs(2) in a daemon thread and waits at most its
timeout: a dead NFS server makes statvfs block in the kernel, and a blocked thread cannot be killed, so a
mount whose earlier call is still stuck is not tried again (no thread pile-up) until that call returns.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from agent.compat import Protocol
from agent.workers import WORKERS

__all__ = [
    "MOUNT_POINTS_EXCLUDE",
    "FS_TYPES_EXCLUDE",
    "Mount",
    "StatvfsResult",
    "FsUsage",
    "parse_mounts",
    "BoundedStatfs",
]

log = logging.getLogger(__name__)

# node_exporter's defaults (collector/filesystem_linux.go, defMountPointsExcluded / defFSTypesExcluded).
MOUNT_POINTS_EXCLUDE = r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
FS_TYPES_EXCLUDE = (
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs"
    r"|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$"
)


@dataclass(frozen=True)
class Mount:
    device: str
    mountpoint: str
    fstype: str
    options: tuple[str, ...]

    @property
    def readonly(self) -> bool:
        return "ro" in self.options


class StatvfsResult(Protocol):
    """The fields of ``os.statvfs_result`` we read (tests pass their own objects)."""

    @property
    def f_frsize(self) -> int: ...
    @property
    def f_blocks(self) -> int: ...
    @property
    def f_bfree(self) -> int: ...
    @property
    def f_bavail(self) -> int: ...
    @property
    def f_files(self) -> int: ...
    @property
    def f_ffree(self) -> int: ...


@dataclass(frozen=True)
class FsUsage:
    size: float
    free: float
    avail: float
    files: float | None  # None where the platform has no inode counts (Windows)
    files_free: float | None

    @classmethod
    def from_statvfs(cls, st: StatvfsResult) -> FsUsage:
        # Block counts are in f_frsize units (statvfs(3)); df computes sizes the same way.
        return cls(
            size=float(st.f_blocks) * st.f_frsize,
            free=float(st.f_bfree) * st.f_frsize,
            avail=float(st.f_bavail) * st.f_frsize,
            files=float(st.f_files),
            files_free=float(st.f_ffree),
        )


def _unescape(field: str) -> str:
    # The kernel escapes space, tab, newline and backslash in mount fields as octal (\040 ...), see fstab(5).
    if "\\" not in field:
        return field
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text: str) -> Iterator[Mount]:
    """Parse /proc/mounts (fstab format): ``/dev/vda / ext4 rw,relatime 0 0``."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        yield Mount(_unescape(parts[0]), _unescape(parts[1]), parts[2], tuple(parts[3].split(",")))


def select_mounts(
    mounts: Sequence[Mount], mount_points_exclude: re.Pattern[str], fs_types_exclude: re.Pattern[str]
) -> list[Mount]:
    """The mounts node_exporter would report: excludes applied, exact duplicates dropped."""
    seen: set[tuple[str, str, str]] = set()
    out: list[Mount] = []
    for m in mounts:
        key = (m.device, m.mountpoint, m.fstype)
        if key in seen or mount_points_exclude.search(m.mountpoint) or fs_types_exclude.search(m.fstype):
            continue
        seen.add(key)
        out.append(m)
    return out


class _Call:
    """One statfs call on a kept worker thread (agent.workers): a hung one keeps its thread, not the caller."""

    def __init__(self, fn: Callable[[str], FsUsage], path: str) -> None:
        self.result: FsUsage | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        WORKERS.submit(lambda: self._run(fn, path), f"statfs {path}")

    def _run(self, fn: Callable[[str], FsUsage], path: str) -> None:
        try:
            self.result = fn(path)
        except BaseException as exc:  # noqa: B036 - reported to the caller, never raised in the thread
            self.error = exc
        finally:
            self.done.set()


class BoundedStatfs:
    """statfs for many mounts at once, each bounded by ``timeout`` seconds, stuck mounts remembered.

    ``stat_all`` runs each mount's call on a thread of its own (kept between cycles) and waits for all of them
    until one shared deadline, so the whole call takes at most ``timeout`` however many mounts hang. The
    result per mount is an ``FsUsage`` or an error text (``"timeout"``, ``"stuck"``, or the OSError).
    """

    def __init__(self, statfs: Callable[[str], FsUsage], timeout: float) -> None:
        self._statfs = statfs
        self.timeout = timeout
        self._stuck: dict[str, _Call] = {}

    def stuck(self) -> list[str]:
        return sorted(self._stuck)

    def stat_all(self, paths: Sequence[str]) -> dict[str, FsUsage | str]:
        out: dict[str, FsUsage | str] = {}
        calls: dict[str, _Call] = {}
        for path in paths:
            old = self._stuck.get(path)
            if old is not None:
                if not old.done.is_set():
                    out[path] = "stuck"
                    continue
                del self._stuck[path]
                log.info("mount %s answers statfs again; monitoring resumes", path)
            calls[path] = _Call(self._statfs, path)
        deadline = time.monotonic() + self.timeout
        for path, call in calls.items():
            if not call.done.wait(max(0.0, deadline - time.monotonic())):
                self._stuck[path] = call
                log.warning(
                    "statfs(%s) did not return within %gs (dead network mount?); skipped until it returns",
                    path,
                    self.timeout,
                )
                out[path] = "timeout"
            elif call.error is not None:
                log.debug("statfs(%s) failed: %s", path, call.error)
                out[path] = str(call.error) or type(call.error).__name__
            elif call.result is not None:
                out[path] = call.result
        return out


def statvfs_usage(path: str) -> FsUsage:
    """The default statfs: os.statvfs where it exists, psutil.disk_usage elsewhere (Windows)."""
    if hasattr(os, "statvfs"):
        return FsUsage.from_statvfs(os.statvfs(path))
    from agent.optional import psutil

    du = psutil.disk_usage(path)
    # Windows reports no inode counts; free space for the caller is what the volume grants this user.
    return FsUsage(float(du.total), float(du.free), float(du.free), files=None, files_free=None)
