"""The bounded, incremental walk over served and shared folders.

Bounds: files per run, bytes per file, CPU seconds per run (the scanning thread's own CPU time) and, before
the first file, the lowest CPU priority for that thread. Incremental: each file's fingerprint (size, mtime,
inode) is kept under a keyed hash, with its counts; an unchanged file is not read again. The state file
(0600) holds only keyed BLAKE2b digests (agent.digest) of paths and fingerprints and the counts: no path, no
name, no number.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from agent.compat import native_thread_id, thread_time
from agent.digest import keyed
from agent.pii.detectors import KINDS, Found, scan_text
from agent.pii.locations import Location
from agent.pii.readers import is_dump, read_text, readable
from agent.state import host_key, write_private_json

__all__ = ["Limits", "FileHit", "ScanResult", "PiiState", "scan_locations"]

_STATE_FORMAT = 1


@dataclass(frozen=True)
class Limits:
    min_records: int = 5  # validated records of one kind that make a file a finding
    max_file_bytes: int = 20 << 20
    max_files: int = 50_000
    cpu_budget: float = 30.0


@dataclass
class FileHit:
    """A file that is a finding (kept in memory for the scan report only, never persisted)."""

    location: Location
    path: str
    counts: dict[str, int]
    samples: dict[str, list[str]]
    dump: bool


@dataclass
class ScanResult:
    files: dict[tuple[str, str], int] = field(default_factory=dict)  # (location kind, data kind) -> files
    records: dict[tuple[str, str], int] = field(default_factory=dict)
    dumps: dict[str, int] = field(default_factory=dict)  # location kind -> dumps and backups
    hits: list[FileHit] = field(default_factory=list)
    read: int = 0
    cached: int = 0
    unread: dict[str, int] = field(default_factory=lambda: {"too_large": 0, "format": 0, "pending": 0, "error": 0})
    bytes_read: int = 0
    budget_exhausted: bool = False
    locations: dict[str, int] = field(default_factory=dict)


class PiiState:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "pii_scan.json"
        self.key_path = state_dir / "pii_scan.key"
        self.state_dir = state_dir
        self._secret: Optional[bytes] = None

    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = host_key(self.key_path)
        return self._secret

    def digest(self, text: str) -> str:
        return keyed(self.secret()[:64], text.encode("utf-8", "surrogateescape"), 16).hex()

    def load(self) -> dict[str, dict[str, object]]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(doc, dict) or doc.get("format") != _STATE_FORMAT or not isinstance(doc.get("files"), dict):
            return {}
        return {str(k): v for k, v in doc["files"].items() if isinstance(v, dict)}

    def save(self, files: dict[str, dict[str, object]]) -> None:
        write_private_json(self.path, {"format": _STATE_FORMAT, "files": files}, separators=(",", ":"))


def _lower_priority() -> None:
    tid = native_thread_id()
    if tid is None:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, tid, 19)  # this thread only (Linux)
    except OSError:
        pass


def scan_locations(locations: Sequence[Location], state: PiiState, limits: Limits) -> ScanResult:
    """Walk every location once (call it on a thread of its own: it lowers that thread's priority)."""
    _lower_priority()
    result = ScanResult()
    known = state.load()
    kept: dict[str, dict[str, object]] = {}
    cpu0 = thread_time()
    seen_files = 0
    judged: set[tuple[int, int]] = set()  # (device, inode): a file under two locations is judged once
    # Deepest folders first: a file under an nginx alias inside the site root is reported with its alias.
    for loc in sorted(locations, key=lambda loc: -loc.path.count(os.sep)):
        result.locations[loc.kind] = result.locations.get(loc.kind, 0) + 1
        for dirpath, dirnames, filenames in os.walk(loc.path, followlinks=False):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                seen_files += 1
                if seen_files > limits.max_files or result.budget_exhausted:
                    result.unread["pending"] += 1
                    continue
                try:
                    st = os.lstat(path)
                except OSError:
                    result.unread["error"] += 1
                    continue
                if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in judged:
                    continue
                judged.add((st.st_dev, st.st_ino))
                _scan_file(loc, Path(path), st, state, known, kept, limits, result)
                if thread_time() - cpu0 >= limits.cpu_budget:
                    result.budget_exhausted = True
    # Entries of files not seen this run (deleted, or not reached) are kept only if not reached.
    if result.unread["pending"]:
        for key, value in known.items():
            kept.setdefault(key, value)
    state.save(kept)
    return result


def _scan_file(
    loc: Location,
    path: Path,
    st: os.stat_result,
    state: PiiState,
    known: dict[str, dict[str, object]],
    kept: dict[str, dict[str, object]],
    limits: Limits,
    result: ScanResult,
) -> None:
    dump = is_dump(path)
    if dump:
        result.dumps[loc.kind] = result.dumps.get(loc.kind, 0) + 1
    if not readable(path):
        if not dump:
            result.unread["format"] += 1
        if dump:
            result.hits.append(FileHit(loc, str(path), dict.fromkeys(KINDS, 0), {k: [] for k in KINDS}, True))
        return
    if st.st_size > limits.max_file_bytes:
        result.unread["too_large"] += 1
        if dump:
            result.hits.append(FileHit(loc, str(path), dict.fromkeys(KINDS, 0), {k: [] for k in KINDS}, True))
        return
    key = state.digest(str(path))
    fingerprint = state.digest(f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}")
    entry = known.get(key)
    found = Found()
    if entry is not None and entry.get("f") == fingerprint and isinstance(entry.get("c"), dict):
        result.cached += 1
        counts = entry["c"]
        assert isinstance(counts, dict)
        for kind in KINDS:
            found.counts[kind] = int(counts.get(kind, 0))
    else:
        try:
            text, nbytes = read_text(path, limits.max_file_bytes)
        except OSError:
            result.unread["error"] += 1
            return
        result.bytes_read += nbytes
        if text is None:
            result.unread["too_large" if nbytes else "format"] += 1
            return
        result.read += 1
        scan_text(text, found)
    kept[key] = {"f": fingerprint, "c": {k: v for k, v in found.counts.items() if v}}
    flagged = {k: n for k, n in found.counts.items() if n >= limits.min_records}
    for kind, n in flagged.items():
        result.files[(loc.kind, kind)] = result.files.get((loc.kind, kind), 0) + 1
        result.records[(loc.kind, kind)] = result.records.get((loc.kind, kind), 0) + n
    if flagged or dump:
        result.hits.append(FileHit(loc, str(path), dict(found.counts), found.samples, dump))
