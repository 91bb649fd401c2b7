"""What a report says, as plain data: collected from Prometheus and the relay, then judged and rendered.

None means "no data" throughout — never 0. A host whose agent never sent a metric has None there, and
the report shows 无数据, not a clean bill of health.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Outage",
    "Availability",
    "Filesystem",
    "Eol",
    "Security",
    "Host",
    "AlertCount",
    "Alerts",
    "Todo",
    "Township",
    "Report",
]

Points = list[tuple[float, float]]


@dataclass
class Outage:
    start: float
    seconds: float
    ongoing: bool = False


@dataclass
class Availability:
    covered_seconds: float
    missing_seconds: float
    down_seconds: float = 0.0
    outages: list[Outage] = field(default_factory=list)
    up_now: bool | None = None
    # Hours (end time of each hour) without a single scrape result: Prometheus did not record this host.
    missing_hours: list[float] = field(default_factory=list)

    @property
    def uptime_ratio(self) -> float | None:
        if self.covered_seconds <= 0:
            return None
        return max(0.0, 1.0 - self.down_seconds / self.covered_seconds)


@dataclass
class Filesystem:
    mountpoint: str
    size_bytes: float
    avail_bytes: float
    # Linear trend of free space over the trend window, bytes per second (negative: filling).
    slope: float | None = None
    # Used share over the period, for the chart.
    points: Points = field(default_factory=list)

    @property
    def used_ratio(self) -> float:
        return 1.0 - self.avail_bytes / self.size_bytes if self.size_bytes > 0 else 0.0

    @property
    def days_to_full(self) -> float | None:
        if self.slope is None or self.slope >= 0:
            return None
        return self.avail_bytes / -self.slope / 86400.0


@dataclass
class Eol:
    product: str
    cycle: str
    kind: str
    eol_at: float | None  # None: no source gives a date


@dataclass
class Security:
    """One moment's security findings on a host; None fields: the agent did not report them."""

    weak: dict[tuple[str, str], int] | None = None  # (reason, class) -> accounts
    exposed: list[tuple[str, str]] | None = None  # (service, port)
    weak_services: list[tuple[str, str]] | None = None  # (service, port)
    baseline_ratio: float | None = None
    baseline_failed: int | None = None
    security_updates: int | None = None

    @property
    def weak_total(self) -> int | None:
        return None if self.weak is None else sum(self.weak.values())


@dataclass
class Host:
    instance: str
    township: str
    availability: Availability
    os_name: str = ""
    # Pushes from behind NAT: no `up`; availability is whether its data arrived (see collect.py).
    push: bool = False
    cpu: Points = field(default_factory=list)
    memory: Points = field(default_factory=list)
    filesystems: list[Filesystem] = field(default_factory=list)
    eol: list[Eol] = field(default_factory=list)
    outdated: list[str] = field(default_factory=list)
    updates_since: float | None = None
    reboot_since: float | None = None
    now: Security = field(default_factory=Security)
    before: Security = field(default_factory=Security)

    @staticmethod
    def _stats(points: Points) -> tuple[float | None, float | None]:
        values = [v for _, v in points]
        if not values:
            return None, None
        return sum(values) / len(values), max(values)

    @property
    def cpu_stats(self) -> tuple[float | None, float | None]:
        return self._stats(self.cpu)

    @property
    def memory_stats(self) -> tuple[float | None, float | None]:
        return self._stats(self.memory)

    def eol_past(self, at: float) -> list[Eol]:
        return [e for e in self.eol if e.eol_at is not None and e.eol_at <= at]


@dataclass
class AlertCount:
    name: str
    severity: str
    count: int
    resolved: int = 0
    # Medians in seconds, None where not known.
    to_notify: float | None = None
    to_resolve: float | None = None
    acknowledged: int = 0
    to_acknowledge: float | None = None


@dataclass
class Alerts:
    source: str  # "relay" (delivery history), "prometheus" (ALERTS series) or "" (none available)
    counts: list[AlertCount] = field(default_factory=list)
    by_day: dict[str, dict[str, int]] = field(default_factory=dict)  # local date -> severity -> count
    still_firing: int = 0
    note: str = ""

    def total(self, severity: str | None = None) -> int:
        return sum(c.count for c in self.counts if severity is None or c.severity == severity)


@dataclass
class Todo:
    risk: int  # higher first
    township: str
    instance: str
    what: str
    action: str


@dataclass
class Township:
    name: str
    hosts: list[Host]
    verdict: str = "green"  # green / yellow / red / grey (no data)
    reasons: list[str] = field(default_factory=list)


@dataclass
class Report:
    title: str
    scope: str
    start: float
    end: float
    generated_at: float
    townships: list[Township]
    alerts: Alerts
    todos: list[Todo] = field(default_factory=list)
    queries: int = 0

    @property
    def hosts(self) -> list[Host]:
        return [h for t in self.townships for h in t.hosts]
