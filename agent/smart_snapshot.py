"""SMART snapshots for a hardened agent: ``shaobing smart-snapshot --output DIR`` (run as root by
deploy/systemd/shaobing-smart.service every 30 min) writes each disk's ``smartctl --json`` answer and an index;
the smart collector reads them when they are fresh instead of needing CAP_SYS_RAWIO/CAP_SYS_ADMIN itself.

Layout of DIR (mode 0750, group shaobing; files 0640)::

    index.json   {"format": 1, "time": <unix>, "devices": [{"argv": [...], "file": "sda.json"} |
                                                          {"argv": [...], "error": "..."}]}
    sda.json     smartctl's own JSON for that disk, at most 4 MiB

Every file is replaced in one rename, the index last, so a reader sees a whole snapshot or the previous one.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from agent.compat import unlink_missing
from agent.platform.smartctl import MAX_DEVICES, MAX_OUTPUT, device_argv, read_json, scan_devices
from agent.process import CommandError

__all__ = ["Snapshot", "write_snapshot", "read_snapshot"]

FORMAT = 1


@dataclass
class Snapshot:
    time: float
    # (the device's argv, its smartctl document or None, the error when there is none)
    devices: list[tuple[list[str], Optional[dict[str, Any]], str]] = field(default_factory=list)


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o640)
    os.replace(tmp, path)


def write_snapshot(out_dir: Path, smartctl: str, configured: list[str], timeout: float,
                   clock: Any = time.time) -> Snapshot:
    out_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    snap = Snapshot(clock())
    entries: list[dict[str, Any]] = []
    keep = {"index.json"}
    for n, dev in enumerate(scan_devices(smartctl, configured, timeout)):
        try:
            doc = read_json(device_argv(smartctl, dev), timeout)
        except CommandError as exc:
            snap.devices.append((dev, None, str(exc)))
            entries.append({"argv": dev, "error": str(exc)[:500]})
            continue
        name = f"{n:03d}-{re.sub(r'[^A-Za-z0-9_.-]', '_', dev[0])[-60:]}.json"
        _atomic(out_dir / name, json.dumps(doc))
        keep.add(name)
        snap.devices.append((dev, doc, ""))
        entries.append({"argv": dev, "file": name})
    _atomic(out_dir / "index.json", json.dumps({"format": FORMAT, "time": snap.time, "devices": entries}))
    for old in out_dir.glob("*.json"):
        if old.name not in keep:
            unlink_missing(old)
    return snap


def read_snapshot(directory: Path) -> Optional[Snapshot]:
    """The snapshot in ``directory``, or None when there is none; a damaged one raises ValueError."""
    try:
        with open(directory / "index.json", encoding="utf-8") as fh:
            index = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{directory / 'index.json'}: {exc}") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT or not isinstance(index.get("devices"), list):
        raise ValueError(f"{directory / 'index.json'}: not a format-{FORMAT} SMART snapshot")
    snap = Snapshot(float(index.get("time", 0)))
    for entry in index["devices"][:MAX_DEVICES]:
        argv = [str(a) for a in entry.get("argv", [])][:8] if isinstance(entry, dict) else []
        if not argv:
            continue
        name = entry.get("file")
        if not name:
            snap.devices.append((argv, None, str(entry.get("error", "unknown error"))))
            continue
        path = directory / os.path.basename(str(name))
        try:
            with open(path, "rb") as fh:
                doc = json.loads(fh.read(MAX_OUTPUT))
        except (OSError, ValueError) as exc:
            snap.devices.append((argv, None, f"{path}: {exc}"))
            continue
        snap.devices.append((argv, doc if isinstance(doc, dict) else None, "" if isinstance(doc, dict) else
                             f"{path}: unexpected JSON"))
    return snap
