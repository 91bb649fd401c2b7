"""Running smartctl (smartmontools >= 7, ``--json``): finding the disks and reading one, bounded.

Shared by the smart collector (which runs it itself where it may: as root, or with CAP_SYS_RAWIO) and by
``shaobing smart-snapshot`` (run as root by shaobing-smart.service, writing what the hardened agent reads).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agent.process import CommandError, run

__all__ = ["MAX_DEVICES", "MAX_OUTPUT", "read_json", "scan_devices", "device_argv"]

MAX_DEVICES = 128
MAX_OUTPUT = 4 << 20


def read_json(argv: Sequence[str], timeout: float) -> dict[str, Any]:
    result = run(list(argv), timeout)
    text = result.stdout[:MAX_OUTPUT]
    try:
        doc = json.loads(text)
    except ValueError:
        raise CommandError(f"{' '.join(argv)}: not JSON (smartmontools >= 7 needed): {text[:80]!r}") from None
    if not isinstance(doc, dict):
        raise CommandError(f"{' '.join(argv)}: unexpected JSON")
    return doc


def scan_devices(smartctl: str, configured: Sequence[str], timeout: float) -> list[list[str]]:
    """The configured disks ("/dev/sda", "/dev/bus/0 -d megaraid,1"), else what ``--scan-open`` finds."""
    if configured:
        return [d.split() for d in configured[:MAX_DEVICES]]
    doc = read_json([smartctl, "--scan-open", "--json=c"], timeout)
    out = []
    for dev in (doc.get("devices") or [])[:MAX_DEVICES]:
        name, dev_type = str(dev.get("name", "")), str(dev.get("type", ""))
        if name:
            out.append([name, "-d", dev_type] if dev_type else [name])
    return out


def device_argv(smartctl: str, dev: Sequence[str]) -> list[str]:
    """One disk's health, attributes and error log; a disk in standby is not woken up."""
    return [smartctl, "--json=c", "--info", "--health", "--attributes", "--log=error", "--nocheck=standby", *dev]
