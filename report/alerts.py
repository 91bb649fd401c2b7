"""Alert handling over the period: from the relay's delivery history (what was notified, when, and when it
was resolved), or, without one, from Prometheus' own ALERTS series (counts and durations, no delivery times).

An alert occurrence is one (fingerprint, startsAt); the relay stores it once per route, so it is counted once.
Time to acknowledge comes from the relay's incidents (who confirmed through the link or an SMS reply, and
when); Prometheus' ALERTS know nothing of it, and without the relay store it is shown as not recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from report.collect import Scope, downtime_step
from report.model import AlertCount, Alerts
from report.period import TZ, Period
from report.prom import Prometheus, ReportError

__all__ = ["from_relay", "from_prometheus"]

IGNORED = frozenset({"ShaobingWatchdog"})
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def _epoch(text: Any) -> float | None:
    if not isinstance(text, str) or not text or text.startswith("0001-"):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _in_scope(labels: dict[str, Any], scope: Scope) -> bool:
    if scope.townships and labels.get("township") not in scope.townships:
        return False
    return not (scope.instances and labels.get("instance") not in scope.instances)


def from_relay(db: Path, period: Period, scope: Scope) -> Alerts:
    if not db.is_file():
        raise ReportError(f"{db}: relay database not found (--relay-db)")
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise ReportError(f"{db}: cannot open the relay database: {exc}") from None
    try:
        # Notices received up to a week after the period are read too, for resolutions of its alerts.
        rows = conn.execute(
            "SELECT a.body, (SELECT MIN(m.updated_at) FROM messages m"
            " WHERE m.alert_id = a.id AND m.state = 'delivered') FROM alerts a"
            " WHERE a.received_at >= ? AND a.received_at < ? ORDER BY a.id",
            (period.start - 7 * 86400, period.end + 7 * 86400),
        ).fetchall()
        acks = _acknowledged(conn)
    except sqlite3.Error as exc:
        raise ReportError(f"{db}: not a readable relay database: {exc}") from None
    finally:
        conn.close()
    firing: dict[tuple[str, str], dict[str, Any]] = {}
    notified: dict[tuple[str, str], float] = {}
    resolved: dict[tuple[str, str], float] = {}
    for raw, delivered_at in rows:
        try:
            body = json.loads(raw)
        except ValueError:
            continue
        labels = body.get("labels") or {}
        if not isinstance(labels, dict) or labels.get("alertname") in IGNORED or not _in_scope(labels, scope):
            continue
        key = (str(body.get("fingerprint", "")), str(body.get("startsAt", "")))
        if body.get("status") == "firing":
            firing.setdefault(key, body)
            if delivered_at is not None and int(body.get("reminder", 0) or 0) == 0:
                notified[key] = min(notified.get(key, delivered_at), delivered_at)
        elif body.get("status") == "resolved":
            ends = _epoch(body.get("endsAt"))
            if ends is not None:
                resolved[key] = ends
    groups: dict[tuple[str, str], list[tuple[float, float | None, float | None, float | None]]] = defaultdict(list)
    alerts = Alerts(source="relay")
    for key, body in firing.items():
        starts = _epoch(body.get("startsAt"))
        if starts is None or not period.start <= starts < period.end:
            continue
        labels = body["labels"]
        name, severity = str(labels.get("alertname", "")), str(labels.get("severity", ""))
        ends = resolved.get(key)
        if ends is not None and ends > period.end:
            ends = None
        to_notify = notified[key] - starts if key in notified else None
        to_ack = acks[key] - starts if key in acks and acks[key] >= starts else None
        groups[(name, severity)].append((starts, ends, to_notify, to_ack))
        day = dt.datetime.fromtimestamp(starts, TZ).strftime("%m-%d")
        alerts.by_day.setdefault(day, {}).setdefault(severity, 0)
        alerts.by_day[day][severity] += 1
        if ends is None:
            alerts.still_firing += 1
    for (name, severity), items in groups.items():
        notify = [n for _, _, n, _ in items if n is not None]
        resolve = [e - s for s, e, _, _ in items if e is not None]
        acked = [a for _, _, _, a in items if a is not None]
        alerts.counts.append(
            AlertCount(
                name,
                severity,
                len(items),
                resolved=len(resolve),
                to_notify=statistics.median(notify) if notify else None,
                to_resolve=statistics.median(resolve) if resolve else None,
                acknowledged=len(acked),
                to_acknowledge=statistics.median(acked) if acked else None,
            )
        )
    _sort(alerts)
    return alerts


def _acknowledged(conn: sqlite3.Connection) -> dict[tuple[str, str], float]:
    """(fingerprint, startsAt) -> when someone acknowledged it (the relay's incidents, relay/oncall.py); the
    earliest acknowledgement of the alert wins. Empty for a relay without acknowledgement."""
    try:
        rows = conn.execute("SELECT alerts, acked_at FROM oncall WHERE acked_at IS NOT NULL").fetchall()
    except sqlite3.OperationalError:
        return {}  # a relay from before acknowledgement existed
    out: dict[tuple[str, str], float] = {}
    for raw, acked_at in rows:
        try:
            items = json.loads(raw)
        except ValueError:
            continue
        for alert in items if isinstance(items, list) else []:
            key = (str(alert.get("fingerprint", "")), str(alert.get("startsAt", "")))
            out[key] = min(out.get(key, float(acked_at)), float(acked_at))
    return out


def from_prometheus(prom: Prometheus, period: Period, scope: Scope) -> Alerts:
    matchers = ['alertstate="firing"']
    scoped = Scope(job="", townships=scope.townships, instances=scope.instances).matcher.split(",")[1:]
    matchers += scoped
    step = downtime_step(period)
    # count_over_time over one step, not the bare series: no 5-minute lookback stretching each episode.
    selector = f"ALERTS{{{','.join(matchers)}}}"
    series = prom.range(f"count_over_time({selector}[{int(step) - 1}s])", period.start + step, period.end, step)
    alerts = Alerts(
        source="prometheus", note="未配置告警中继记录（--relay-db），通知耗时未知；以下按 Prometheus 告警记录统计。"
    )
    groups: dict[tuple[str, str], list[tuple[float, float | None]]] = defaultdict(list)
    for s in series:
        name, severity = s.labels.get("alertname", ""), s.labels.get("severity", "")
        if name in IGNORED:
            continue
        run_start: float | None = None
        last = None
        for t, _ in s.points:
            if run_start is None or last is None or t - last > step + 1e-6:
                if run_start is not None and last is not None:
                    groups[(name, severity)].append((run_start, last))
                run_start = t - step
            last = t
        if run_start is not None and last is not None:
            ongoing = period.end - last < step + 1e-6
            groups[(name, severity)].append((run_start, None if ongoing else last))
    for (name, severity), items in groups.items():
        for starts, ends in items:
            day = dt.datetime.fromtimestamp(starts, TZ).strftime("%m-%d")
            alerts.by_day.setdefault(day, {}).setdefault(severity, 0)
            alerts.by_day[day][severity] += 1
            alerts.still_firing += ends is None
        resolve = [e - s for s, e in items if e is not None]
        alerts.counts.append(
            AlertCount(name, severity, len(items), len(resolve), None, statistics.median(resolve) if resolve else None)
        )
    _sort(alerts)
    return alerts


def _sort(alerts: Alerts) -> None:
    alerts.counts.sort(key=lambda c: (SEVERITY_ORDER.get(c.severity, 9), -c.count, c.name))
