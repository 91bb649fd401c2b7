"""The dead man's switch: every Alertmanager posts the always-firing ShaobingWatchdog alert to the
heartbeat route every few minutes. A source (one county Prometheus, named by a label on the alert) that
stays silent for `timeout_seconds` means the alert path itself is broken -- Prometheus down, Alertmanager
down, rules not evaluating, or the network between them -- and silence from it no longer means "nothing
is wrong". The relay then says so on the configured channels, and again when the heartbeat is back.

State lives in the store (last heartbeat, down since), so a relay restart neither forgets an outage nor
announces it twice; the announcements are alerts the relay makes itself, queued like received ones.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from relay.config.model import Config, HeartbeatConfig
from relay.ingest import dest_key
from relay.store import HeartbeatState, NewMessage, Store
from relay.templates import duration_zh

__all__ = ["HeartbeatWatch", "heartbeat_sources", "WATCHDOG_ALERTNAME", "PATH_DOWN_ALERTNAME"]

log = logging.getLogger("relay.heartbeat")
WATCHDOG_ALERTNAME = "ShaobingWatchdog"
PATH_DOWN_ALERTNAME = "ShaobingAlertPathDown"
DEFAULT_SOURCE = "default"
MAX_SOURCES_PER_REQUEST = 64


def heartbeat_sources(alerts: Iterable[Mapping[str, Any]], label: str) -> set[str]:
    """The sources a heartbeat webhook speaks for: the `label` value of each firing alert."""
    sources: set[str] = set()
    for alert in alerts:
        if alert.get("status") != "firing":
            continue
        labels = alert.get("labels") or {}
        sources.add(str(labels.get(label) or DEFAULT_SOURCE)[:128])
        if len(sources) >= MAX_SOURCES_PER_REQUEST:
            break
    return sources


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def path_alert(source: str, down: bool, last_at: float, now: float) -> dict[str, Any]:
    """The alert the relay announces: firing when the path broke, resolved when it is back."""
    silent = duration_zh(now - last_at)
    if down:
        summary = f"监控链路中断：{silent}未收到 Prometheus/Alertmanager 心跳"
        description = (
            f"告警转发服务已 {silent}没有收到来源 {source} 的心跳（ShaobingWatchdog）："
            "Prometheus 或 Alertmanager 已停止、告警规则失效，或两者到转发服务的网络中断。"
            "在恢复之前，该来源的告警可能无法送达，没有告警不代表一切正常。"
        )
    else:
        summary = "监控链路恢复：重新收到 Prometheus/Alertmanager 心跳"
        description = f"来源 {source} 的心跳已恢复，中断约 {silent}。请检查中断期间的告警（Alertmanager 界面）。"
    return {
        "status": "firing" if down else "resolved",
        "labels": {"alertname": PATH_DOWN_ALERTNAME, "severity": "critical", "instance": source, "source": source},
        "annotations": {"summary": summary, "description": description},
        "startsAt": _iso(last_at),
        "endsAt": "0001-01-01T00:00:00Z" if down else _iso(now),
        "generatorURL": "",
        "fingerprint": f"heartbeat-{source}",
        "groupKey": f"heartbeat:{source}",
        "receiver": "shaobing-relay",
        "externalURL": "",
        "notifiedAt": now,
    }


class HeartbeatWatch:
    def __init__(self, config: Config, store: Store, clock: Callable[[], float] = time.time) -> None:
        assert config.heartbeat is not None
        self.config = config
        self.settings: HeartbeatConfig = config.heartbeat
        self.store = store
        self.clock = clock
        self.started_at = clock()

    def start(self, now: float) -> None:
        self.started_at = now
        self.store.track_heartbeats(self.settings.sources, now)

    def stale(self, state: HeartbeatState, now: float) -> bool:
        if now - state.last_at <= self.settings.timeout_seconds:
            return False
        # Right after a restart the Alertmanagers may not have re-sent yet: give them a moment before
        # calling the path broken (bounded by the timeout, so a real outage is not hidden for long).
        return now - self.started_at >= min(self.settings.restart_grace_seconds, self.settings.timeout_seconds)

    def check(self, now: float) -> bool:
        """Announce every source that went silent or came back; True when something was queued. (The delivery
        worker calls it once a second.)"""
        queued = False
        for state in self.store.heartbeats():
            stale = self.stale(state, now)
            if stale and not state.down:
                self._announce(state.source, True, state.last_at, now, f"down:{state.last_at:.3f}")
                self.store.set_heartbeat_down(state.source, True, state.last_at)
                log.error("no heartbeat from %s for %.0fs: alert path down", state.source, now - state.last_at)
                queued = True
            elif state.down and not stale and state.last_at > (state.down_since or 0.0):
                since = state.down_since or state.last_at
                self._announce(state.source, False, since, now, f"up:{since:.3f}")
                self.store.set_heartbeat_down(state.source, False, None)
                log.warning("heartbeat from %s is back after %.0fs", state.source, now - since)
                queued = True
        return queued

    def _announce(self, source: str, down: bool, last_at: float, now: float, event: str) -> None:
        messages: list[NewMessage] = []
        for name in self.settings.channels:
            channel = self.config.channels[name]
            messages.extend(NewMessage(name, r, dest_key(name, r), now) for r in channel.destinations(now))
        # The dedup key makes the announcement idempotent: a crash between queueing it and recording the
        # new state queues nothing twice when the check runs again.
        alert = path_alert(source, down, last_at, now)
        self.store.add_alert(f"heartbeat:{source}:{event}", self.settings.route, alert, messages, now)
