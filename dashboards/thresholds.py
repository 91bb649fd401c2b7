"""The alerting thresholds, read from ``alert_rules/thresholds.yml`` so panels draw the lines the alerts use.

The file belongs to the alert rules; this module only reads it. A missing or malformed key is an error that
names the file and the key, never a silent default: a dashboard line that disagrees with the alert is worse
than no line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["THRESHOLDS_FILE", "Thresholds", "ThresholdsError", "load_thresholds"]

_DURATION_RE = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")

THRESHOLDS_FILE = Path(__file__).resolve().parent.parent / "alert_rules" / "thresholds.yml"


class ThresholdsError(Exception):
    """The thresholds file is missing, unreadable, or lacks a key the dashboards need."""


@dataclass(frozen=True)
class Thresholds:
    """Read-only access by dotted key, e.g. ``t.number("probes.tls_expiry_warning_days")``."""

    source: Path
    data: Mapping[str, Any]

    def _lookup(self, key: str) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise ThresholdsError(f"{self.source}: key {key!r} not found (needed by the dashboards)")
            node = node[part]
        return node

    def number(self, key: str) -> float:
        node = self._lookup(key)
        if isinstance(node, bool) or not isinstance(node, (int, float)):
            raise ThresholdsError(f"{self.source}: key {key!r} is {node!r}, expected a number")
        return node

    def duration(self, key: str) -> str:
        """A Prometheus duration such as ``15m``, checked for shape so it can be spliced into PromQL."""
        node = self._lookup(key)
        if not isinstance(node, str) or not _DURATION_RE.match(node):
            raise ThresholdsError(f"{self.source}: key {key!r} is {node!r}, expected a duration such as 15m")
        return node

    def percent_to_ratio(self, key: str) -> float:
        """A ``*_percent`` key as a 0-1 ratio, rounded so JSON stays stable (5 -> 0.05, not 0.050000000000000003)."""
        return round(self.number(key) / 100.0, 6)


def load_thresholds(path: Path = THRESHOLDS_FILE) -> Thresholds:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ThresholdsError(f"cannot read thresholds file {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ThresholdsError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise ThresholdsError(f"{path}: expected a mapping at the top level")
    return Thresholds(path, data)
