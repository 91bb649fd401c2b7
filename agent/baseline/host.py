"""Read-only, bounded access to the host a baseline checks: files under a root, processes, sibling results.

Every path is taken under ``root`` (a fixture tree in tests) and shown without it; every read is capped at
``MAX_FILE_BYTES`` and every listing at ``MAX_LIST``. Nothing here writes, runs a command or opens a socket.
"""

from __future__ import annotations

import glob as _glob
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from agent.catalog import MetricSet
from agent.compat import cached_property

__all__ = ["HostView", "Account", "PamLine", "MAX_FILE_BYTES"]

MAX_FILE_BYTES = 1 << 20
MAX_LIST = 4096
MAX_PIDS = 65536
_PAM_DEPTH = 8


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    home: str
    shell: str
    where: str  # "/etc/passwd:12"
    password_field_empty: bool = False  # passwd's own password field is empty (no "x": no shadow entry needed)

    @property
    def login_shell(self) -> bool:
        return not self.shell.endswith(("/nologin", "/false", "/sync", "/shutdown", "/halt")) and self.shell != ""


@dataclass(frozen=True)
class ShadowEntry:
    name: str
    usable: bool  # a password one can log in with (not locked "!"/"*", not empty)
    empty: bool
    last_change_days: Optional[int]
    max_days: Optional[int]
    expire_days: Optional[int]
    where: str


@dataclass(frozen=True)
class PamLine:
    kind: str  # auth, account, password, session
    control: str
    module: str  # "pam_faillock.so"
    args: tuple[str, ...]
    where: str

    def arg(self, key: str) -> Optional[str]:
        for a in self.args:
            if a == key:
                return ""
            if a.startswith(key + "="):
                return a[len(key) + 1:]
        return None


class HostView:
    def __init__(
        self,
        root: Path = Path("/"),
        proc_root: Optional[Path] = None,
        *,
        peers: Optional[Callable[[str], Optional[MetricSet]]] = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.proc_root = proc_root if proc_root is not None else root / "proc"
        self._peers = peers
        self.now = clock()

    # -- files -------------------------------------------------------------------------------------
    def path(self, p: str) -> Path:
        return self.root / p.lstrip("/")

    def shown(self, path: Path) -> str:
        try:
            return "/" + str(path.relative_to(self.root)).lstrip("./")
        except ValueError:
            return str(path)

    def read(self, p: str | Path) -> Optional[str]:
        path = p if isinstance(p, Path) else self.path(p)
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_FILE_BYTES)
        except OSError:
            return None
        return data.decode("utf-8", errors="replace")

    def lines(self, p: str | Path) -> list[tuple[str, str]]:
        """(where, text) for each non-empty, non-comment line; "where" is "file:line"."""
        path = p if isinstance(p, Path) else self.path(p)
        text = self.read(path)
        if text is None:
            return []
        out = []
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if line and not line.startswith("#"):
                out.append((f"{self.shown(path)}:{n}", line))
        return out

    def glob(self, pattern: str) -> list[Path]:
        out = []
        for i, name in enumerate(sorted(_glob.glob(str(self.path(pattern))))):
            if i >= MAX_LIST:
                break
            out.append(Path(name))
        return out

    def exists(self, p: str) -> bool:
        return os.path.lexists(self.path(p))

    def stat(self, p: str) -> Optional[os.stat_result]:
        try:
            return os.stat(self.path(p))
        except OSError:
            return None

    # -- the OS ------------------------------------------------------------------------------------
    @cached_property
    def os_release(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for _, line in self.lines("etc/os-release") or self.lines("usr/lib/os-release"):
            key, sep, value = line.partition("=")
            if sep:
                out[key] = value.strip().strip('"').strip("'")
        return out

    @property
    def family(self) -> str:
        """"rhel" (CentOS, Kylin, openEuler, UOS server ...), "debian", or "other"."""
        ids = (self.os_release.get("ID", "") + " " + self.os_release.get("ID_LIKE", "")).lower().split()
        if any(i in ("rhel", "centos", "fedora", "openeuler", "kylin", "anolis", "rocky", "almalinux") for i in ids):
            return "rhel"
        if any(i in ("debian", "ubuntu", "uos", "deepin") for i in ids):
            return "debian"
        if self.exists("etc/redhat-release"):
            return "rhel"
        if self.exists("etc/debian_version"):
            return "debian"
        return "other"

    @cached_property
    def accounts(self) -> list[Account]:
        out = []
        for where, line in self.lines("etc/passwd")[:MAX_LIST]:
            f = line.split(":")
            if len(f) < 7 or not f[2].isdigit() or not f[3].isdigit():
                continue
            out.append(Account(f[0], int(f[2]), int(f[3]), f[5], f[6], where, f[1] == ""))
        return out

    @cached_property
    def shadow(self) -> dict[str, ShadowEntry]:
        """Per account whether its password is usable, and the aging fields; the hash itself is not kept."""
        out: dict[str, ShadowEntry] = {}
        for where, line in self.lines("etc/shadow")[:MAX_LIST]:
            f = line.split(":")
            if len(f) < 8:
                continue
            pw = f[1]

            def num(s: str) -> Optional[int]:
                return int(s) if s.strip().isdigit() else None

            out[f[0]] = ShadowEntry(
                f[0], usable=bool(pw) and not pw.startswith(("!", "*")), empty=pw == "",
                last_change_days=num(f[2]), max_days=num(f[4]), expire_days=num(f[7]), where=where,
            )
        return out

    @cached_property
    def login_defs(self) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for where, line in self.lines("etc/login.defs"):
            parts = line.split(None, 1)
            if len(parts) == 2:
                out[parts[0].upper()] = (parts[1].strip(), where)
        return out

    def human_min_uid(self) -> int:
        value = self.login_defs.get("UID_MIN", ("1000", ""))[0]
        return int(value) if value.isdigit() else 1000

    # -- PAM ---------------------------------------------------------------------------------------
    def pam(self, service: str, kind: str) -> list[PamLine]:
        """The ``kind`` lines of /etc/pam.d/<service>, with include, substack and @include expanded."""
        out: list[PamLine] = []
        self._pam_walk(service, kind, out, 0)
        return out

    def _pam_walk(self, service: str, kind: str, out: list[PamLine], depth: int) -> None:
        if depth > _PAM_DEPTH or "/" in service:
            return
        for where, line in self.lines(f"etc/pam.d/{service}"):
            if line.startswith("@include"):
                self._pam_walk(line.split(None, 1)[1].strip() if " " in line else "", kind, out, depth + 1)
                continue
            parts = _pam_split(line)
            if len(parts) < 3:
                continue
            k = parts[0].lstrip("-").lower()
            if k != kind:
                continue
            control, module = parts[1], parts[2]
            if control in ("include", "substack"):
                self._pam_walk(module, kind, out, depth + 1)
                continue
            out.append(PamLine(k, control, os.path.basename(module), tuple(parts[3:]), where))

    @cached_property
    def sshd_config(self) -> list[tuple[str, str, str]]:
        """sshd_config as (keyword lower, value, "file:line"), Includes expanded under the root."""
        from agent.audit.sshd import config_lines

        root = str(self.root).rstrip("/")
        out = []
        for key, value, where in config_lines(self.path("etc/ssh/sshd_config"), base=self.path("etc/ssh"),
                                              root=self.root):
            out.append((key, value, where[len(root):] if root and where.startswith(root + "/") else where))
        return out

    def sshd(self, key: str) -> Optional[tuple[str, str]]:
        """The first value of a global sshd keyword (sshd's rule: first one wins) and where it is."""
        for k, value, where in self.sshd_config:
            if k == "match":
                break
            if k == key:
                return value, where
        return None

    # -- processes and systemd ---------------------------------------------------------------------
    @cached_property
    def processes(self) -> dict[str, str]:
        """Running program names (comm and the executable's base name) -> a pid that runs it."""
        out: dict[str, str] = {}
        try:
            entries = os.scandir(self.proc_root)
        except OSError:
            return out
        with entries:
            for i, entry in enumerate(entries):
                if i >= MAX_PIDS:
                    break
                if not entry.name.isdigit():
                    continue
                base = Path(entry.path)
                try:
                    comm = (base / "comm").read_text(errors="replace").strip()
                except OSError:
                    continue
                out.setdefault(comm, entry.name)
                try:
                    cmd = (base / "cmdline").read_bytes()[:4096].split(b"\0")[0].decode(errors="replace")
                except OSError:
                    cmd = ""
                if cmd:
                    out.setdefault(os.path.basename(cmd.split()[0]), entry.name)
        return out

    def running(self, *names: str) -> list[str]:
        return [n for n in names if n in self.processes]

    def unit_enabled(self, unit: str) -> Optional[str]:
        """Where the unit is enabled (a .wants link under /etc/systemd/system), or None."""
        for link in self.glob(f"etc/systemd/system/*.wants/{unit}"):
            return self.shown(link)
        return None

    def unit_files(self, unit: str) -> list[Path]:
        out = []
        for d in ("etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system"):
            p = self.path(f"{d}/{unit}")
            if p.exists():
                out.append(p)
            out.extend(self.glob(f"{d}/{unit}.d/*.conf"))
        return out

    # -- what the agent's other collectors found ---------------------------------------------------
    def peer(self, collector: str) -> Optional[MetricSet]:
        return self._peers(collector) if self._peers is not None else None


def _pam_split(line: str) -> list[str]:
    """PAM's fields; a control in brackets ("[success=1 default=ignore]") stays one field."""
    parts: list[str] = []
    it: Iterator[str] = iter(line.split())
    for tok in it:
        if tok.startswith("[") and not tok.endswith("]"):
            buf = [tok]
            for more in it:
                buf.append(more)
                if more.endswith("]"):
                    break
            tok = " ".join(buf)
        parts.append(tok)
    return parts
