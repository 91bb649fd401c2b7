"""Remember when a condition (a security backlog, a pending reboot) was first seen, across agent restarts.

A small JSON file (mode 0600) under the agent's state directory, written atomically. A corrupt or unreadable
file is treated as "not seen before": the worst case is a later "since", never a crash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from agent.state import write_private_json

__all__ = ["FirstSeen"]


class FirstSeen:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> Optional[float]:
        try:
            value = json.loads(self.path.read_text(encoding="utf-8")).get("since")
        except (OSError, ValueError, AttributeError):
            return None
        return float(value) if isinstance(value, (int, float)) else None

    def update(self, active: bool, now: float, evidence: Optional[float] = None) -> Optional[float]:
        """The time the condition has held since, or None (and the record cleared) when it does not hold.

        ``evidence`` is an earlier time the source itself proves (the mtime of /run/reboot-required); the
        earliest known moment wins.
        """
        if not active:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            return None
        since = self._read()
        candidates = [t for t in (since, evidence) if t is not None]
        first = min(candidates) if candidates else now
        if first != since:
            self._write(first)
        return first

    def _write(self, value: float) -> None:
        write_private_json(self.path, {"since": value})
