"""The relay's own metrics in the Prometheus text format.

Counters live in memory (they restart at zero, as Prometheus expects); queue gauges are read from
the store at scrape time so they can never go stale.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from relay import __version__
from relay.store import ChannelStats, HeartbeatState

__all__ = ["Metrics", "OUTCOMES", "CATALOGUE"]

OUTCOMES = ("success", "retry", "permanent_failure", "rate_limited", "unknown", "dead_letter")
RECONCILE_RESULTS = ("delivered", "failed", "absent", "pending", "unsupported")

# name -> (type, help); the docs (docs/relay.md) list the same names.
CATALOGUE: dict[str, tuple[str, str]] = {
    "shaobing_relay_alerts_received_total": ("counter", "Alerts received from Alertmanager, by route."),
    "shaobing_relay_alerts_duplicate_total": ("counter", "Received alerts dropped as duplicates, by route."),
    "shaobing_relay_deliveries_total": ("counter", "Delivery attempts by channel and outcome."),
    "shaobing_relay_queue_depth": ("gauge", "Alert messages not yet delivered (pending, sending, folded, unknown)."),
    "shaobing_relay_oldest_pending_age_seconds": ("gauge", "Age of the oldest undelivered message."),
    "shaobing_relay_deferred_messages": ("gauge", "Messages held back by quiet hours (not backlog: not due yet)."),
    "shaobing_relay_dead_letters": ("gauge", "Messages that could not be delivered (current count)."),
    "shaobing_relay_unknown_deliveries": ("gauge", "SMS sends with an unknown outcome awaiting reconciliation."),
    "shaobing_relay_review_required": ("gauge", "Sends an operator must check (reconciliation gave up)."),
    "shaobing_relay_reconciliations_total": ("counter", "Reconciliation checks by channel and result."),
    "shaobing_relay_digests_total": ("counter", "Digest messages formed because a channel was over budget."),
    "shaobing_relay_http_requests_total": ("counter", "Ingest requests by HTTP status code."),
    "shaobing_relay_store_errors_total": ("counter", "Store (SQLite) operations that failed."),
    "shaobing_relay_heartbeat_last_timestamp_seconds": (
        "gauge",
        "When the last heartbeat (ShaobingWatchdog) of a source arrived; tracking start if none yet.",
    ),
    "shaobing_relay_heartbeat_missing": ("gauge", "1 while a source's heartbeat is overdue (alert path down)."),
    "shaobing_relay_escalations_total": (
        "counter",
        "Escalation steps by route and level (level=exhausted: every level was told, nobody acknowledged).",
    ),
    "shaobing_relay_acknowledgements_total": ("counter", "Incidents acknowledged through a link, by route."),
    "shaobing_relay_silence_failures_total": ("counter", "Acknowledgements whose Alertmanager silence failed."),
    "shaobing_relay_incidents": (
        "gauge",
        "Critical alert groups by state: open (unacknowledged), acked, exhausted (nobody acknowledged), resolved.",
    ),
    "shaobing_relay_modem_reports_total": (
        "counter",
        "SMS status reports from GSM modems by result (delivered to the handset, or failed for good).",
    ),
    "shaobing_relay_modem_up": ("gauge", "1 while the GSM modem of a channel is connected and answering."),
    "shaobing_relay_modem_sim_ready": ("gauge", "1 when the modem's SIM is ready (+CPIN: READY); absent if unknown."),
    "shaobing_relay_modem_registered": ("gauge", "1 when the modem is registered on a network (home or roaming)."),
    "shaobing_relay_modem_signal_dbm": ("gauge", "The modem's signal strength in dBm (from +CSQ); absent if unknown."),
    "shaobing_relay_build_info": ("gauge", "Always 1; the version label says which relay runs."),
}
_HEARTBEAT_GAUGES = ("shaobing_relay_heartbeat_last_timestamp_seconds", "shaobing_relay_heartbeat_missing")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return f"{{{inner}}}" if inner else ""


class Metrics:
    def __init__(self, channels: Iterable[str] = (), routes: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self.channels = sorted(channels)
        self._counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = {
            name: {} for name, (kind, _) in CATALOGUE.items() if kind == "counter"
        }
        for route in routes:
            self.inc("shaobing_relay_alerts_received_total", 0, route=route)
            self.inc("shaobing_relay_alerts_duplicate_total", 0, route=route)
        for channel in self.channels:
            for outcome in OUTCOMES:
                self.inc("shaobing_relay_deliveries_total", 0, channel=channel, outcome=outcome)
            self.inc("shaobing_relay_digests_total", 0, channel=channel)
        self.inc("shaobing_relay_store_errors_total", 0)

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._counters[name]
            series[key] = series.get(key, 0.0) + amount

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._counters[name].get(tuple(sorted(labels.items())), 0.0)

    def render(
        self,
        stats: Mapping[str, ChannelStats] | None,
        now: float | None = None,
        heartbeats: Iterable[HeartbeatState] = (),
        incidents: Mapping[str, int] | None = None,
        modems: Mapping[str, Any] | None = None,
    ) -> str:
        now = time.time() if now is None else now
        lines: list[str] = []
        with self._lock:
            counters = {name: dict(series) for name, series in self._counters.items()}
        for name, (kind, help_text) in CATALOGUE.items():
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            if kind == "counter":
                for key, value in sorted(counters[name].items()):
                    lines.append(f"{name}{_labels(key)} {value:g}")
            elif name == "shaobing_relay_build_info":
                lines.append(f"{name}{_labels([('version', __version__)])} 1")
            elif name.startswith("shaobing_relay_modem_"):
                field = name[len("shaobing_relay_modem_") :]
                for channel, health in sorted((modems or {}).items()):
                    reading = getattr(health, field, None)
                    if reading is not None:
                        lines.append(f"{name}{_labels([('channel', channel)])} {float(reading):g}")
            elif name == "shaobing_relay_incidents":
                for state in ("open", "acked", "exhausted", "resolved") if incidents is not None else ():
                    lines.append(f"{name}{_labels([('state', state)])} {(incidents or {}).get(state, 0)}")
            elif name in _HEARTBEAT_GAUGES:
                for beat in heartbeats:
                    shown = f"{beat.last_at:.3f}" if name.endswith("timestamp_seconds") else str(int(beat.down))
                    lines.append(f"{name}{_labels([('source', beat.source)])} {shown}")
            elif stats is not None:
                for channel in sorted(set(self.channels) | set(stats)):
                    lines.append(f"{name}{_labels([('channel', channel)])} {_gauge(name, stats.get(channel), now):g}")
        return "\n".join(lines) + "\n"


def _gauge(name: str, stats: ChannelStats | None, now: float) -> float:
    if stats is None:
        return 0.0
    if name == "shaobing_relay_queue_depth":
        return float(stats.queue_depth)
    if name == "shaobing_relay_oldest_pending_age_seconds":
        return max(now - stats.oldest_ready_at, 0.0) if stats.oldest_ready_at is not None else 0.0
    if name == "shaobing_relay_deferred_messages":
        return float(stats.deferred)
    if name == "shaobing_relay_dead_letters":
        return float(stats.dead)
    if name == "shaobing_relay_unknown_deliveries":
        return float(stats.unknown)
    return float(stats.review)
