"""The escalation step, once a second from the delivery loop: open incidents past their deadline go to the next
level's channels (relay/oncall.py has the table). Idempotent across a crash: a level's messages are an alert
row keyed by (incident, level, fingerprint), so a step repeated after a kill -9 adds nothing twice."""

from __future__ import annotations

import logging
import sqlite3

from relay import oncall
from relay.config.model import Config
from relay.ingest import dest_key
from relay.notices import NewMessage
from relay.store import Store

__all__ = ["escalate_due"]

log = logging.getLogger("relay.escalation")


def _advance(store: Store, incident: int, level: int, next_at: float | None, state: str) -> None:
    def work(conn: sqlite3.Connection) -> None:
        oncall.advance(conn, incident, level, next_at, state)

    store.transaction(work)


def escalate_due(config: Config, store: Store, now: float) -> list[tuple[str, int]]:
    """Returns (route, level) for every step taken (level 0 means the chain ran out: nobody acknowledged)."""
    steps: list[tuple[str, int]] = []
    for incident in store.transaction(lambda conn: oncall.due(conn, now)):
        route = config.routes.get(incident.route)
        escalation = route.escalation if route is not None else None
        if escalation is None:  # the route lost its escalation in a reload: stop the chain
            _advance(store, incident.id, incident.level, None, "open")
            continue
        level = incident.level + 1
        if level > len(escalation.levels):
            _advance(store, incident.id, incident.level, None, "exhausted")
            log.warning(
                "incident %d on route %s: every escalation level was told, nobody acknowledged",
                incident.id,
                incident.route,
            )
            steps.append((incident.route, 0))
            continue
        minutes = round(escalation.after_seconds * level / 60)
        note = f"升级第 {level} 级：告警 {minutes} 分钟无人确认 Escalated: unacknowledged for {minutes} min"
        for alert in incident.alerts:
            labels = dict(alert.get("labels") or {})
            messages = [
                NewMessage(name, r, dest_key(name, r), now, note=note)
                for name in escalation.levels[level - 1]
                for r in config.channels[name].destinations(now, labels)
            ]
            body = dict(alert, reminder=0, notifiedAt=now, firstNotifiedAt=incident.started_at, escalation=level)
            store.add_alert(
                f"esc:{incident.id}:{level}:{alert.get('fingerprint', '')}", incident.route, body, messages, now
            )
        more = level < len(escalation.levels)
        # After the last level, one more wait: then the chain is reported as exhausted.
        _advance(store, incident.id, level, now + escalation.after_seconds, "open")
        log.info(
            "incident %d on route %s escalated to level %d%s",
            incident.id,
            incident.route,
            level,
            "" if more else " (the last)",
        )
        steps.append((incident.route, level))
    return steps
