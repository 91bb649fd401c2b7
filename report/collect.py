"""Prometheus queries → the report's hosts. Every number in the report comes from one of these queries.

Availability is measured on ``up`` (pulled hosts): per minute, the share of failed scrapes is downtime, and an
hour without a single scrape result is *missing data* — neither up nor down, shown as such. Current state
(currency, security) is read at the period's end, and the same queries at its start give "since the last
report" (the previous weekly report ended where this one begins).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from report.model import Availability, Eol, Filesystem, Host, Outage, Security
from report.period import Period
from report.prom import Prometheus, Series

__all__ = ["Scope", "collect_hosts", "RISKY_REASONS", "FS"]

# shaobing_password_accounts reasons that are findings ("locked" is counted by the agent but fine).
RISKY_REASONS = ("empty", "dictionary", "legacy_hash", "uid0_extra", "nopasswd_sudo", "unsupported_hash")
FS = 'fstype!="",mountpoint!=""'
HOUR = 3600.0


@dataclass(frozen=True)
class Scope:
    job: str = "shaobing"
    townships: tuple[str, ...] = ()
    instances: tuple[str, ...] = ()

    @property
    def matcher(self) -> str:
        parts = [f"job={_quote(self.job)}"]
        if self.townships:
            parts.append(f"township=~{_quote(_alternation(self.townships))}")
        if self.instances:
            parts.append(f"instance=~{_quote(_alternation(self.instances))}")
        return ",".join(parts)

    def describe(self) -> str:
        if self.instances:
            return f"{len(self.instances)} 台指定主机"
        if self.townships:
            return "、".join(self.townships)
        return "全县"


def _alternation(values: Iterable[str]) -> str:
    return "|".join(re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", v) for v in values)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _key(s: Series) -> str:
    return s.labels.get("instance", "")


def _window(step: float) -> str:
    """A range selector that covers one step and not the sample that opens it: Prometheus 2 includes both
    ends of [t-w, t], Prometheus 3 only the right one; w = step - 1 s counts each sample in one step on both."""
    return f"{int(step) - 1}s"


def downtime_step(period: Period) -> float:
    """One minute, or coarser for periods too long for Prometheus' 11,000 points per series."""
    return 60.0 * max(1, math.ceil(period.seconds / 60.0 / 10_800))


def chart_step(period: Period) -> float:
    """About 168 points per chart (hourly over a week), never finer than 5 minutes."""
    return max(300.0, round(period.seconds / 168.0 / 60.0) * 60.0)


def collect_hosts(prom: Prometheus, period: Period, scope: Scope) -> list[Host]:
    m = scope.matcher
    start, end, span = period.start, period.end, f"{int(period.seconds)}s"
    seen = prom.instant(f"max by (instance, township) (max_over_time(up{{{m}}}[{span}]))", end)
    hosts = {
        _key(s): Host(s.labels.get("instance", ""), s.labels.get("township", "") or "未分组", _availability(period))
        for s in seen
    }
    pushed = prom.instant(
        f"max by (instance, township) (max_over_time(shaobing_push_last_success_timestamp_seconds{{{m}}}[{span}]))",
        end,
    )
    for s in pushed:
        if _key(s) not in hosts:
            township = s.labels.get("township", "") or "未分组"
            hosts[_key(s)] = Host(s.labels.get("instance", ""), township, _availability(period), push=True)
    if not hosts:
        return []
    _fill_availability(prom, period, m, {k: h for k, h in hosts.items() if not h.push})
    _fill_push_availability(prom, period, m, {k: h for k, h in hosts.items() if h.push})
    step = chart_step(period)
    window = _window(step)
    for s in prom.range(
        f'1 - avg by (instance) (rate(node_cpu_seconds_total{{{m},mode="idle"}}[{window}]))', start + step, end, step
    ):
        if _key(s) in hosts:
            hosts[_key(s)].cpu = _clip(s.points)
    for s in prom.range(
        f"1 - avg_over_time(node_memory_MemAvailable_bytes{{{m}}}[{window}])"
        f" / avg_over_time(node_memory_MemTotal_bytes{{{m}}}[{window}])",
        start + step,
        end,
        step,
    ):
        if _key(s) in hosts:
            hosts[_key(s)].memory = _clip(s.points)
    _fill_filesystems(prom, period, m, hosts)
    _fill_currency(prom, end, m, hosts)
    for host, sec in _security(prom, end, m).items():
        if host in hosts:
            hosts[host].now = sec
    for host, sec in _security(prom, start, m).items():
        if host in hosts:
            hosts[host].before = sec
    return sorted(hosts.values(), key=lambda h: (h.township, h.instance))


def _clip(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(t, min(max(v, 0.0), 1.0)) for t, v in points if not math.isnan(v)]


def _availability(period: Period) -> Availability:
    return Availability(covered_seconds=0.0, missing_seconds=period.seconds)


def _fill_availability(prom: Prometheus, period: Period, m: str, hosts: dict[str, Host]) -> None:
    start, end = period.start, period.end
    hours = [start + HOUR * i for i in range(1, int(period.seconds // HOUR) + 1)]
    hour_step = HOUR if hours else period.seconds
    if not hours:
        hours = [end]
    covered: dict[str, set[float]] = defaultdict(set)
    for s in prom.range(f"count_over_time(up{{{m}}}[{_window(hour_step)}])", hours[0], hours[-1], hour_step):
        covered[_key(s)].update(t for t, v in s.points if v > 0)
    # The tail after the last whole hour (a period that is not whole hours) counts as covered if the
    # last hour is.
    tail = end - hours[-1]
    step = downtime_step(period)
    down: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for s in prom.range(f"(1 - avg_over_time(up{{{m}}}[{_window(step)}])) > 0", start + step, end, step):
        down[_key(s)] = s.points
    now = {_key(s): s.value for s in prom.instant(f"up{{{m}}}", end)}
    for key, host in hosts.items():
        have = covered.get(key, set())
        missing = [t for t in hours if t not in have]
        seconds = len(have) * hour_step + (tail if hours[-1] in have else 0.0)
        avail = Availability(
            covered_seconds=seconds,
            missing_seconds=max(0.0, period.seconds - seconds),
            missing_hours=missing,
            up_now=(now[key] >= 1.0) if key in now else None,
        )
        avail.down_seconds = sum(v for _, v in down.get(key, [])) * step
        avail.outages = _outages(down.get(key, []), step, end, avail.up_now)
        host.availability = avail


# A pushing host counts as up at t when any of its snapshots is stamped within the 5 minutes before t
# (Prometheus' own staleness horizon), so a slower push interval is not downtime.
PUSH_LOOKBACK = 300.0


def _fill_push_availability(prom: Prometheus, period: Period, m: str, hosts: dict[str, Host]) -> None:
    """Hosts behind NAT push buffered data (backfilled after a network outage), so a gap in what arrived means
    the host or its agent was not running: downtime, not missing data."""
    if not hosts:
        return
    step = downtime_step(period)
    present: dict[str, set[float]] = defaultdict(set)
    query = f"count by (instance) (count_over_time(shaobing_build_info{{{m}}}[{_window(PUSH_LOOKBACK)}]))"
    for s in prom.range(query, period.start + step, period.end, step):
        present[_key(s)].update(t for t, _ in s.points)
    steps = [period.start + step * i for i in range(1, int(period.seconds // step) + 1)]
    for key, host in hosts.items():
        have = present.get(key, set())
        absent = [(t, 1.0) for t in steps if t not in have]
        up_now = bool(steps) and steps[-1] in have
        outages = _outages(absent, step, period.end, up_now)
        # Each absent run starts one lookback after the last snapshot: give that time back to the outage.
        for outage in outages:
            outage.start -= PUSH_LOOKBACK - step
            outage.seconds += PUSH_LOOKBACK - step
        host.availability = Availability(
            covered_seconds=period.seconds if have else 0.0,
            missing_seconds=0.0 if have else period.seconds,
            down_seconds=sum(o.seconds for o in outages),
            outages=outages,
            up_now=up_now,
        )


def _outages(points: list[tuple[float, float]], step: float, end: float, up_now: bool | None) -> list[Outage]:
    """Runs of consecutive steps with failed scrapes that hold at least one wholly-down step."""
    runs: list[list[tuple[float, float]]] = []
    for t, v in points:
        if runs and abs(t - runs[-1][-1][0] - step) < 1e-6:
            runs[-1].append((t, v))
        else:
            runs.append([(t, v)])
    out = []
    for run in runs:
        if max(v for _, v in run) < 1.0:
            continue  # a failed scrape here and there: counted as downtime, not an outage
        ongoing = abs(run[-1][0] - end) < step and up_now is False
        out.append(Outage(start=run[0][0] - step, seconds=sum(v for _, v in run) * step, ongoing=ongoing))
    return out


def _fill_filesystems(prom: Prometheus, period: Period, m: str, hosts: dict[str, Host]) -> None:
    end = period.end
    window = f"{int(min(period.seconds, 7 * 86400))}s"
    sel = f"{{{m},{FS}}}"
    by = "max by (instance, mountpoint)"
    size = _by_mount(prom.instant(f"{by} (node_filesystem_size_bytes{sel})", end))
    avail = _by_mount(prom.instant(f"{by} (node_filesystem_avail_bytes{sel})", end))
    slope = _by_mount(prom.instant(f"{by} (deriv(node_filesystem_avail_bytes{sel}[{window}]))", end))
    step = chart_step(period)
    used = {
        (_key(s), s.labels.get("mountpoint", "")): _clip(s.points)
        for s in prom.range(
            f"1 - {by} (node_filesystem_avail_bytes{sel}) / {by} (node_filesystem_size_bytes{sel})",
            period.start + step,
            end,
            step,
        )
    }
    for (inst, mount), total in sorted(size.items()):
        if inst in hosts and (inst, mount) in avail and total > 0:
            key = (inst, mount)
            hosts[inst].filesystems.append(Filesystem(mount, total, avail[key], slope.get(key), used.get(key, [])))


def _by_mount(series: list[Series]) -> dict[tuple[str, str], float]:
    return {(_key(s), s.labels.get("mountpoint", "")): s.value for s in series}


def _fill_currency(prom: Prometheus, at: float, m: str, hosts: dict[str, Host]) -> None:
    for s in prom.instant(f"node_os_info{{{m}}}", at):
        if _key(s) in hosts:
            hosts[_key(s)].os_name = s.labels.get("pretty_name", "") or s.labels.get("name", "")
    for s in prom.instant(f"shaobing_eol_timestamp_seconds{{{m}}}", at):
        if _key(s) in hosts:
            hosts[_key(s)].eol.append(_eol(s, s.value))
    for s in prom.instant(f"shaobing_eol_unknown{{{m}}} == 1", at):
        if _key(s) in hosts:
            hosts[_key(s)].eol.append(_eol(s, None))
    for s in prom.instant(f"shaobing_software_outdated{{{m}}} == 1", at):
        if _key(s) in hosts:
            hosts[_key(s)].outdated.append(s.labels.get("software", ""))
    for s in prom.instant(f"shaobing_security_updates_pending_since_timestamp_seconds{{{m}}}", at):
        if _key(s) in hosts:
            hosts[_key(s)].updates_since = s.value
    for s in prom.instant(f"shaobing_reboot_required_since_timestamp_seconds{{{m}}}", at):
        if _key(s) in hosts:
            hosts[_key(s)].reboot_since = s.value


def _eol(s: Series, value: float | None) -> Eol:
    return Eol(s.labels.get("product", ""), s.labels.get("cycle", ""), s.labels.get("kind", ""), value)


def _security(prom: Prometheus, at: float, m: str) -> dict[str, Security]:
    out: dict[str, Security] = defaultdict(Security)
    reasons = "|".join(RISKY_REASONS)
    # Hosts whose password audit reports at all: every account class and reason, so a host with none is 0.
    for s in prom.instant(f"sum by (instance) (shaobing_password_accounts{{{m}}})", at):
        out[_key(s)].weak = {}
    for s in prom.instant(
        f'sum by (instance, reason, class) (shaobing_password_accounts{{{m},reason=~"{reasons}"}}) > 0', at
    ):
        weak = out[_key(s)].weak
        if weak is not None:
            weak[(s.labels.get("reason", ""), s.labels.get("class", ""))] = int(s.value)
    # The exposure collector's success says the host was checked, so no shaobing_exposed_port is 0 exposed.
    for s in prom.instant(f'shaobing_collector_success{{{m},collector="exposure"}} == 1', at):
        out[_key(s)].exposed = []
    for s in prom.instant(f"shaobing_exposed_port{{{m}}} == 1", at):
        exposed = out[_key(s)].exposed
        if exposed is None:
            exposed = out[_key(s)].exposed = []
        exposed.append((s.labels.get("service", ""), s.labels.get("port", "")))
    for s in prom.instant(f"shaobing_service_weak_credentials{{{m}}}", at):
        sec = out[_key(s)]
        if sec.weak_services is None:
            sec.weak_services = []
        if s.value >= 1:
            sec.weak_services.append((s.labels.get("service", ""), s.labels.get("port", "")))
    for s in prom.instant(f"max by (instance) (shaobing_baseline_pass_ratio{{{m}}})", at):
        out[_key(s)].baseline_ratio = s.value
    for s in prom.instant(f'sum by (instance) (shaobing_baseline_checks{{{m},status="fail"}})', at):
        out[_key(s)].baseline_failed = int(s.value)
    for s in prom.instant(f"shaobing_security_updates_pending{{{m}}}", at):
        out[_key(s)].security_updates = int(s.value)
    return dict(out)
