"""udev's database of block devices (/run/udev/data/b<major>:<minor>), as node_exporter's diskstats reads it.

Only the device properties (``E:KEY=VALUE`` lines) matter; a record is capped at 64 KiB and 1,024 lines. A
missing or unreadable record is an empty mapping: node_exporter then reports the disk with empty labels.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["block_device_properties"]

_MAX_BYTES = 64 << 10
_MAX_LINES = 1024


def block_device_properties(data_dir: Path, major: str, minor: str) -> dict[str, str]:
    try:
        with open(data_dir / f"b{major}:{minor}", "rb") as fh:
            text = fh.read(_MAX_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines()[:_MAX_LINES]:
        if line.startswith("E:"):
            key, sep, value = line[2:].partition("=")
            if sep:
                out[key] = value
    return out
