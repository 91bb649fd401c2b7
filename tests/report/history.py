"""A known week of agent data, written as OpenMetrics for `promtool tsdb create-blocks-from openmetrics`.

Every fact the report tests assert is planted here (FACTS), so each number in the report can be checked
exactly: outages, a day without data, a filling disk, weak passwords that change mid-week, an exposed Redis
that appears, an EOL OS, pending updates, a due reboot, baseline scores, and a busy CPU window.
Samples every 60 s (STEP) from two hours before the period to its end.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

STEP = 60
DAY = 86400
GIB = 1024**3


@dataclass(frozen=True)
class HostPlan:
    instance: str
    township: str
    os: str = "Debian GNU/Linux 13 (trixie)"
    cpus: int = 2
    # (start offset, end offset) in seconds from the period start: up == 0 for samples in (start, end].
    down: tuple[tuple[int, int], ...] = ()
    # No samples at all in (start, end] (Prometheus recorded nothing for this host).
    missing: tuple[tuple[int, int], ...] = ()
    busy: tuple[int, int, float] | None = None  # (start, end, cpu usage) else 25 %
    fs_avail_start: float = 70 * GIB
    fs_avail_end: float = 70 * GIB
    password_audit: bool = True
    # reason, class -> list of (from offset, value)
    weak: tuple[tuple[str, str, tuple[tuple[int, int], ...]], ...] = ()
    exposed_from: int | None = None  # an exposed Redis from this offset on
    eol_os: bool = False
    updates: int = 0
    updates_since_days: float = 0.0
    reboot_days: float | None = None
    baseline: tuple[float, float] | None = None  # (at start, from mid-week)
    baseline_failed: int = 0
    # Pushes from behind NAT (no `up`; shaobing_build_info and its push timestamp arrive with the data).
    push: bool = False


def plans(period_seconds: int = 7 * DAY) -> list[HostPlan]:
    e = period_seconds
    return [
        HostPlan(
            "cg-01",
            "城关镇",
            weak=(("empty", "root", ((-7200, 1),)), ("dictionary", "human", ((-7200, 2), (3 * DAY, 1)))),
            busy=(4 * DAY, 4 * DAY + 6 * 3600, 0.85),
            baseline=(0.90, 0.95),
            baseline_failed=2,
        ),
        HostPlan(
            "cg-02",
            "城关镇",
            os="CentOS Linux 7 (Core)",
            down=((2 * DAY + 10 * 3600, 2 * DAY + 12 * 3600), (e - 45 * 60, e)),
            exposed_from=5 * DAY,
            eol_os=True,
            updates=12,
            updates_since_days=20,
            reboot_days=10,
        ),
        HostPlan(
            "hk-01",
            "河口乡",
            fs_avail_start=50 * GIB,
            fs_avail_end=40 * GIB,
            baseline=(0.55, 0.55),
            baseline_failed=12,
        ),
        HostPlan("hk-02", "河口乡", missing=((3 * DAY, 4 * DAY),), password_audit=False),
        HostPlan("sq-01", "石桥镇"),
        # A pushing host whose agent was off for an hour on day 6 (nothing arrived, nothing to backfill).
        HostPlan("sq-02", "石桥镇", push=True, missing=((5 * DAY + 8 * 3600, 5 * DAY + 9 * 3600),)),
    ]


def _in(offset: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(a < offset <= b for a, b in ranges)


def _labels(plan: HostPlan, extra: str = "") -> str:
    base = f'instance="{plan.instance}",job="shaobing",township="{plan.township}"'
    return "{" + base + ("," + extra if extra else "") + "}"


def _step_value(steps: tuple[tuple[int, int], ...], offset: int) -> int:
    value = steps[0][1]
    for start, v in steps:
        if offset >= start:
            value = v
    return value


def openmetrics(start: int, period_seconds: int, host_plans: list[HostPlan]) -> Iterator[str]:
    """The whole history, one metric family at a time (promtool wants each family contiguous)."""
    end = start + period_seconds
    offsets = range(-2 * 3600, period_seconds + 1, STEP)

    def family(
        name: str, kind: str, series: Callable[[HostPlan], list[tuple[str, Callable[[int], float | None]]]]
    ) -> Iterator[str]:
        yield f"# TYPE {name} {kind}\n"
        sample = f"{name}_total" if kind == "counter" else name
        for plan in host_plans:
            for labels, value in series(plan):
                for off in offsets:
                    if _in(off, plan.missing):
                        continue
                    v = value(off)
                    if v is not None:
                        yield f"{sample}{labels} {v:.10g} {start + off}\n"

    def cpu_idle(plan: HostPlan, cpu: int) -> tuple[str, Callable[[int], float | None]]:
        def idle(off: int) -> float:
            # Integrate idle seconds minute by minute: 0.75 idle normally, 1 - busy in the busy window.
            base = (off + 2 * 3600) * 0.75
            if plan.busy is not None:
                a, b, usage = plan.busy
                overlap = max(0, min(off, b) - a)
                base -= overlap * (0.75 - (1 - usage))
            return 1000.0 * (cpu + 1) + base

        return _labels(plan, f'cpu="{cpu}",mode="idle"'), idle

    yield from family(
        "up", "gauge", lambda p: [] if p.push else [(_labels(p), lambda off, p=p: 0.0 if _in(off, p.down) else 1.0)]
    )
    yield from family(
        "shaobing_build_info",
        "gauge",
        lambda p: [(_labels(p, 'python="3.11.2",version="0.1.0"'), lambda off: 1.0)],
    )
    yield from family(
        "shaobing_push_last_success_timestamp_seconds",
        "gauge",
        lambda p: [(_labels(p), lambda off: float(start + off - 30))] if p.push else [],
    )
    yield from family("node_cpu_seconds", "counter", lambda p: [cpu_idle(p, c) for c in range(p.cpus)])
    yield from family("node_memory_MemTotal_bytes", "gauge", lambda p: [(_labels(p), lambda off: 8.0 * GIB)])
    yield from family("node_memory_MemAvailable_bytes", "gauge", lambda p: [(_labels(p), lambda off: 4.0 * GIB)])
    fs = 'device="/dev/sda1",fstype="ext4",mountpoint="/"'
    yield from family("node_filesystem_size_bytes", "gauge", lambda p: [(_labels(p, fs), lambda off: 100.0 * GIB)])

    def avail(p: HostPlan) -> Callable[[int], float]:
        return lambda off: p.fs_avail_start + (p.fs_avail_end - p.fs_avail_start) * off / period_seconds

    yield from family("node_filesystem_avail_bytes", "gauge", lambda p: [(_labels(p, fs), avail(p))])
    yield from family("node_os_info", "gauge", lambda p: [(_labels(p, f'pretty_name="{p.os}"'), lambda off: 1.0)])

    def weak(p: HostPlan) -> list[tuple[str, Callable[[int], float | None]]]:
        if not p.password_audit:
            return []
        out: list[tuple[str, Callable[[int], float | None]]] = [
            (_labels(p, 'class="system",reason="locked"'), lambda off: 3.0),
            (_labels(p, 'class="human",reason="ok"'), lambda off: 2.0),
        ]
        for reason, klass, steps in p.weak:
            out.append(
                (_labels(p, f'class="{klass}",reason="{reason}"'), lambda off, s=steps: float(_step_value(s, off)))
            )
        return out

    yield from family("shaobing_password_accounts", "gauge", weak)
    yield from family(
        "shaobing_collector_success",
        "gauge",
        lambda p: [] if not p.password_audit else [(_labels(p, 'collector="exposure"'), lambda off: 1.0)],
    )
    yield from family(
        "shaobing_exposed_port",
        "gauge",
        lambda p: (
            []
            if p.exposed_from is None
            else [
                (
                    _labels(p, 'bind="0.0.0.0",port="6379",process="redis-server",service="redis"'),
                    lambda off, f=p.exposed_from: 1.0 if off >= f else None,
                )
            ]
        ),
    )
    eol_past = 1719763200.0  # CentOS 7: 2024-06-30
    yield from family(
        "shaobing_eol_timestamp_seconds",
        "gauge",
        lambda p: [
            (
                _labels(
                    p, 'cycle="7",kind="os",product="centos"' if p.eol_os else 'cycle="13",kind="os",product="debian"'
                ),
                lambda off, past=p.eol_os: eol_past if past else float(end + 600 * DAY),
            )
        ],
    )
    yield from family(
        "shaobing_security_updates_pending",
        "gauge",
        lambda p: [(_labels(p), lambda off, n=p.updates: float(n))],
    )
    yield from family(
        "shaobing_security_updates_pending_since_timestamp_seconds",
        "gauge",
        lambda p: [] if not p.updates else [(_labels(p), lambda off, d=p.updates_since_days: end - d * DAY)],
    )
    yield from family(
        "shaobing_reboot_required_since_timestamp_seconds",
        "gauge",
        lambda p: [] if p.reboot_days is None else [(_labels(p), lambda off, d=p.reboot_days: end - d * DAY)],
    )
    bl = 'level="3",standard="gbt22239"'
    yield from family(
        "shaobing_baseline_pass_ratio",
        "gauge",
        lambda p: (
            [] if p.baseline is None else [(_labels(p, bl), lambda off, b=p.baseline: b[0] if off < 3 * DAY else b[1])]
        ),
    )
    yield from family(
        "shaobing_baseline_checks",
        "gauge",
        lambda p: (
            []
            if p.baseline is None
            else [(_labels(p, bl + ',status="fail"'), lambda off, n=p.baseline_failed: float(n))]
        ),
    )

    # Prometheus' own record of the rule ShaobingHostDown firing for cg-02's outages (alert history without the
    # relay's store): from two minutes into each outage to its end.
    def alerts(p: HostPlan) -> list[tuple[str, Callable[[int], float | None]]]:
        if not p.down:
            return []
        labels = _labels(p, 'alertname="ShaobingHostDown",alertstate="firing",severity="critical"')
        return [(labels, lambda off, d=p.down: 1.0 if any(a + 120 < off <= b for a, b in d) else None)]

    yield from family("ALERTS", "gauge", alerts)
    yield "# EOF\n"


def build_tsdb(
    data_dir: Path, start: int, period_seconds: int, host_plans: list[HostPlan], work: Path, chunk: int = 0
) -> int:
    """Import the history into a TSDB directory, `chunk` hosts per promtool run (0: all at once); returns the
    number of samples. Chunks become overlapping blocks, which Prometheus merges."""
    data_dir.mkdir(parents=True, exist_ok=True)
    size = chunk or max(1, len(host_plans))
    samples = 0
    for first in range(0, len(host_plans), size):
        source = work / "history.om"
        with source.open("w", encoding="utf-8") as f:
            for line in openmetrics(start, period_seconds, host_plans[first : first + size]):
                samples += not line.startswith("#")
                f.write(line)
        # One block for the whole range: with the default 2 h blocks promtool re-reads the file per block (20x
        # slower).
        subprocess.run(
            [
                "promtool",
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "--max-block-duration=192h",
                str(source),
                str(data_dir),
            ],
            check=True,
            capture_output=True,
            timeout=3600,
        )
        source.unlink()
    return samples
