"""Acknowledgement and escalation of critical alert groups (on-call for one overloaded person).

Every Alertmanager group with critical firing alerts is an *incident* (table `oncall`, one row per route,
receiver and groupKey, written in the webhook's own transaction). Its notifications carry a signed link
(`/ack/<token>`: no login, expires, one incident). Acknowledging records who and when, stops escalation of
this incident and of every other open incident sharing one of its alerts (the SMS and the IM route see the
same alert in two groups), and creates an Alertmanager silence for the group's labels with the acknowledger as
author. An open incident on a route with `escalation` that nobody acknowledges within `after_minutes` goes to
the next level's channels, then the next; acknowledged, resolved or out of levels stops the chain. Every step is
a committed row: a relay killed mid-chain picks it up where it was.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["SCHEMA", "OncallUpdate", "Incident", "upsert", "make_token", "read_token", "row_incident"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS oncall (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    route TEXT NOT NULL,
    group_labels TEXT NOT NULL,
    alerts TEXT NOT NULL,
    fingerprints TEXT NOT NULL,
    started_at REAL NOT NULL,
    level INTEGER NOT NULL DEFAULT 0,
    next_at REAL,
    state TEXT NOT NULL,
    acked_by TEXT NOT NULL DEFAULT '',
    acked_at REAL,
    silence TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS oncall_due ON oncall(state, next_at);
"""
# States: open (unacknowledged), acked, resolved, exhausted (every level was told; nobody acknowledged).
COLUMNS = (
    "id, key, route, group_labels, alerts, fingerprints, started_at, level, next_at, state, acked_by, acked_at, silence"
)


@dataclass(frozen=True)
class OncallUpdate:
    """What a webhook says about its group: its labels and the critical alerts firing now."""

    key: str
    route: str
    group_labels: Mapping[str, str]
    firing: Sequence[Mapping[str, Any]]
    escalate_after: float | None  # seconds; None: the route does not escalate


@dataclass(frozen=True)
class Incident:
    id: int
    key: str
    route: str
    group_labels: dict[str, str]
    alerts: list[dict[str, Any]]
    fingerprints: list[str]
    started_at: float
    level: int
    next_at: float | None
    state: str
    acked_by: str
    acked_at: float | None
    silence: str


def row_incident(row: Sequence[Any]) -> Incident:
    return Incident(
        int(row[0]),
        str(row[1]),
        str(row[2]),
        dict(json.loads(row[3])),
        list(json.loads(row[4])),
        list(json.loads(row[5])),
        float(row[6]),
        int(row[7]),
        None if row[8] is None else float(row[8]),
        str(row[9]),
        str(row[10]),
        None if row[11] is None else float(row[11]),
        str(row[12]),
    )


def upsert(conn: sqlite3.Connection, update: OncallUpdate, now: float) -> None:
    """Inside the webhook's transaction."""
    found = conn.execute("SELECT id, state FROM oncall WHERE key=?", (update.key,)).fetchone()
    if not update.firing:
        if found is not None and found[1] in ("open", "exhausted", "acked"):
            conn.execute("UPDATE oncall SET state='resolved', next_at=NULL WHERE id=?", (found[0],))
        return
    alerts = json.dumps([dict(a) for a in update.firing], ensure_ascii=True)
    fingerprints = json.dumps(sorted({str(a.get("fingerprint", "")) for a in update.firing}))
    labels = json.dumps(dict(update.group_labels), ensure_ascii=True, sort_keys=True)
    if found is None or found[1] == "resolved":
        # A new incident (or the group firing again after it resolved): the chain starts over.
        next_at = now + update.escalate_after if update.escalate_after is not None else None
        conn.execute(
            "INSERT INTO oncall(key, route, group_labels, alerts, fingerprints, started_at, level, next_at, state) "
            "VALUES (?, ?, ?, ?, ?, ?, 0, ?, 'open') ON CONFLICT(key) DO UPDATE SET "
            "group_labels=excluded.group_labels, alerts=excluded.alerts, fingerprints=excluded.fingerprints, "
            "started_at=excluded.started_at, level=0, next_at=excluded.next_at, state='open', acked_by='', "
            "acked_at=NULL, silence=''",
            (update.key, update.route, labels, alerts, fingerprints, now, next_at),
        )
        return
    conn.execute(
        "UPDATE oncall SET group_labels=?, alerts=?, fingerprints=? WHERE id=?",
        (labels, alerts, fingerprints, found[0]),
    )


def _mac(secret: bytes, payload: str) -> str:
    digest = hmac.new(secret, payload.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def make_token(secret: bytes, incident: int, expires: float) -> str:
    payload = f"{incident}.{int(expires)}"
    return f"{payload}.{_mac(secret, payload)}"


def read_token(secret: bytes, token: str, now: float) -> tuple[int | None, str]:
    """(incident id, "") for a valid token, else (None, why) — why is shown to the person who clicked."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or len(token) > 80:
        return None, "链接无效 invalid link"
    payload = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_mac(secret, payload), parts[2]):
        return None, "链接无效 invalid link"
    if int(parts[1]) < now:
        return None, "链接已过期 link expired"
    return int(parts[0]), ""


def get(conn: sqlite3.Connection, incident: int) -> Incident | None:
    row = conn.execute(f"SELECT {COLUMNS} FROM oncall WHERE id=?", (incident,)).fetchone()
    return row_incident(row) if row else None


def id_for_key(conn: sqlite3.Connection, key: str) -> int | None:
    row = conn.execute("SELECT id FROM oncall WHERE key=? AND state IN ('open', 'exhausted')", (key,)).fetchone()
    return int(row[0]) if row else None


def due(conn: sqlite3.Connection, now: float, limit: int = 100) -> list[Incident]:
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM oncall WHERE state='open' AND next_at IS NOT NULL AND next_at <= ? ORDER BY next_at "
        "LIMIT ?",
        (now, limit),
    ).fetchall()
    return [row_incident(r) for r in rows]


def advance(conn: sqlite3.Connection, incident: int, level: int, next_at: float | None, state: str) -> None:
    conn.execute(
        "UPDATE oncall SET level=?, next_at=?, state=? WHERE id=? AND state='open'", (level, next_at, state, incident)
    )


def acknowledge(conn: sqlite3.Connection, incident: int, who: str, now: float) -> list[Incident]:
    """Mark the incident and every open one sharing an alert with it acknowledged; returns those it marked
    (empty when it was not open: already acknowledged or resolved)."""
    first = get(conn, incident)
    if first is None or first.state not in ("open", "exhausted"):
        return []
    mine = set(first.fingerprints)
    marked = [first]
    for row in conn.execute(
        f"SELECT {COLUMNS} FROM oncall WHERE state IN ('open', 'exhausted') AND id != ?", (incident,)
    ):
        other = row_incident(row)
        if mine & set(other.fingerprints):
            marked.append(other)
    conn.executemany(
        "UPDATE oncall SET state='acked', acked_by=?, acked_at=?, next_at=NULL WHERE id=?",
        [(who, now, inc.id) for inc in marked],
    )
    return marked


def set_silence(conn: sqlite3.Connection, incident: int, text: str) -> None:
    conn.execute("UPDATE oncall SET silence=? WHERE id=?", (text[:500], incident))


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {str(s): int(n) for s, n in conn.execute("SELECT state, COUNT(*) FROM oncall GROUP BY state")}
