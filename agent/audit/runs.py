"""When each audit last ran and last completed, shared between the audit collectors.

The four audits run as separate collectors on their own intervals, but one metric family per fact
(``shaobing_audit_last_run_timestamp_seconds{audit}``) must have one owner; the audits record their times
here (a small 0600 JSON file under the state directory, so a restart keeps them) and the ``audit_status``
collector exports them.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from pathlib import Path

from agent.compat import Literal
from agent.state import write_private_json

__all__ = ["AuditName", "AUDITS", "record_run", "read_runs", "expect_run", "run_finished", "wait_first_runs"]

AuditName = Literal["passwords", "ssh", "services", "exposure"]
AUDITS: tuple[AuditName, ...] = ("passwords", "ssh", "services", "exposure")
_FILE = "audit_runs.json"
_lock = threading.Lock()
# In-process first-run tracking: `shaobing agent once` runs every collector at the same time, and the
# status collector should report the runs happening right now, not only those of earlier processes.
_first_runs: dict[tuple[str, str], threading.Event] = {}


def expect_run(state_dir: Path, audit: AuditName) -> None:
    """Called when an audit collector is built: its first run in this process is awaited by the status."""
    with _lock:
        _first_runs.setdefault((str(state_dir), audit), threading.Event())


def run_finished(state_dir: Path, audit: AuditName) -> None:
    """Called when an audit run ends, successfully or not."""
    with _lock:
        ev = _first_runs.setdefault((str(state_dir), audit), threading.Event())
    ev.set()


def wait_first_runs(state_dir: Path, timeout: float) -> None:
    """Wait (bounded) until every audit collector built in this process for ``state_dir`` has run once."""
    deadline = time.monotonic() + timeout
    with _lock:
        events = [ev for (sd, _), ev in _first_runs.items() if sd == str(state_dir)]
    for ev in events:
        ev.wait(max(0.0, deadline - time.monotonic()))


def read_runs(state_dir: Path) -> dict[str, dict[str, float]]:
    """audit -> {"run": ts, "complete": ts}; missing or damaged file -> empty."""
    try:
        raw = json.loads((state_dir / _FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out: dict[str, dict[str, float]] = {}
    if isinstance(raw, dict):
        for audit, val in raw.items():
            if audit in AUDITS and isinstance(val, dict):
                out[audit] = {k: float(v) for k, v in val.items() if k in ("run", "complete")}
    return out


def record_run(state_dir: Path, audit: AuditName, ts: float, complete: bool) -> None:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock_path = state_dir / f".{_FILE}.lock"
    with _lock:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # `shaobing scan` may run beside the agent
            runs = read_runs(state_dir)
            entry = runs.setdefault(audit, {})
            entry["run"] = ts
            if complete:
                entry["complete"] = ts
            write_private_json(state_dir / _FILE, runs, sort_keys=True)
        finally:
            os.close(fd)
