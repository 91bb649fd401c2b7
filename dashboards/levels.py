"""Alert thresholds that more than one dashboard draws: how full a host may get, and how late it may fall.

``thresholds.yml`` states the disk and memory alerts as the share still *free*; panels show the share *used*.
The conversion lives here once, so the fleet table and the host detail colour a full disk the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboards.panels import GREEN, ORANGE, RED, YELLOW, Step, steps, worse_above, worse_below
from dashboards.thresholds import Thresholds

__all__ = ["Currency", "Usage", "pct"]


def pct(ratio: float) -> str:
    """A 0-1 ratio as percent text for titles and descriptions: 0.9 -> "90"."""
    return f"{ratio * 100:g}"


def _used(t: Thresholds, free_percent_key: str) -> float:
    # Rounded so JSON stays stable (0.95, not 0.95000000000000001).
    return round(1 - t.percent_to_ratio(free_percent_key), 6)


@dataclass(frozen=True)
class Usage:
    """CPU, memory and disk levels as shares used (0-1); ``disk_almost_full`` is the overview's recording rule."""

    disk_almost_full: float
    disk_warn: float
    disk_crit: float
    cpu_warn: float
    memory_warn: float
    memory_crit: float

    @classmethod
    def read(cls, t: Thresholds) -> Usage:
        return cls(
            disk_almost_full=t.number("records.filesystem_usage_ratio"),
            disk_warn=_used(t, "filesystem.space_almost_full_warning_avail_percent"),
            disk_crit=_used(t, "filesystem.space_almost_full_critical_avail_percent"),
            cpu_warn=t.number("cpu.utilisation_warning_ratio"),
            memory_warn=_used(t, "memory.available_warning_percent"),
            memory_crit=_used(t, "memory.available_critical_percent"),
        )

    def disk_steps(self) -> list[Step]:
        """Yellow from the overview's "almost full" count, then the alert levels."""
        return steps(GREEN, (self.disk_almost_full, YELLOW), (self.disk_warn, ORANGE), (self.disk_crit, RED))

    def cpu_steps(self) -> list[Step]:
        return worse_above(self.cpu_warn)

    def memory_steps(self) -> list[Step]:
        return worse_above(self.memory_warn, self.memory_crit)


@dataclass(frozen=True)
class Currency:
    """Days: how soon before end of life to warn, and how long a security update may wait."""

    eol_warn: float
    updates_warn: float
    updates_crit: float

    @classmethod
    def read(cls, t: Thresholds) -> Currency:
        return cls(
            eol_warn=t.number("currency.eol_warning_days"),
            updates_warn=t.number("currency.security_updates_warning_days"),
            updates_crit=t.number("currency.security_updates_critical_days"),
        )

    def eol_steps(self) -> list[Step]:
        """Days of support left: red once past end of life (< 0), orange inside the warning window."""
        return worse_below(self.eol_warn, 0)

    def update_age_steps(self) -> list[Step]:
        return worse_above(self.updates_warn, self.updates_crit)
