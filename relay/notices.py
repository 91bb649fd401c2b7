"""How an Alertmanager webhook becomes notices, duplicates and reminders in the store (one transaction).

Deduplication is per notice: (route, receiver, groupKey, fingerprint, status, startsAt). The same notice on
another route (Alertmanager's SMS and IM receivers share one groupKey) is another notice. A notice seen
again is a duplicate (HA pairs, group_interval resends of a group that changed elsewhere), except when its
whole group arrives unchanged after the duplicate window: that is Alertmanager's repeat_interval, and the
firing alerts in it become reminders (number 1, 2, ...), each channel applying its own reminder policy.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from relay.oncall import OncallUpdate
from relay.oncall import upsert as upsert_incident

__all__ = ["NewMessage", "Notice", "Webhook", "ingest_webhook", "insert_messages"]


@dataclass(frozen=True)
class NewMessage:
    channel: str
    recipient: str
    dest: str
    next_at: float
    quiet: bool = False  # held back by quiet hours until next_at
    note: str = ""  # shown above the message (fallback reason, heartbeat context)


@dataclass(frozen=True)
class Notice:
    """One alert of a webhook: its dedup key and the messages planned for every channel of the route."""

    key: str
    alert: dict[str, Any]
    messages: Sequence[NewMessage]


@dataclass(frozen=True)
class Webhook:
    """One accepted Alertmanager request, with what the store needs to tell a duplicate from a reminder."""

    route: str
    group: str  # (route, receiver, groupKey)
    firing: str  # the group's firing set (fingerprint, startsAt), hashed
    notices: Sequence[Notice]
    # channel -> least seconds between two reminders of one alert; None: that channel sends no reminders.
    reminder_gaps: Mapping[str, float | None]
    duplicate_window: float
    # The group's critical alerts for acknowledgement and escalation (relay/oncall.py); None: none configured.
    oncall: OncallUpdate | None = None


def ingest_webhook(
    conn: sqlite3.Connection,
    webhook: Webhook,
    now: float,
    groups: dict[str, tuple[str, float]],
    committed: Mapping[str, tuple[str, float]],
) -> tuple[int, int]:
    """Store one webhook's new notices and their messages (inside the caller's transaction); returns
    (accepted, duplicates). ``groups`` collects this transaction's group states, ``committed`` holds the
    cached committed ones (a miss reads the table)."""
    group = groups.get(webhook.group) or committed.get(webhook.group)
    if group is None:
        found = conn.execute("SELECT firing, last_at FROM groups WHERE key=?", (webhook.group,)).fetchone()
        group = (str(found[0]), float(found[1])) if found else None
    unchanged = group is not None and group[0] == webhook.firing
    repeat = group is not None and unchanged and now - group[1] >= webhook.duplicate_window
    accepted = duplicates = 0
    for notice in webhook.notices:
        # New notices are the common case: the insert of the notice's first alert row tells new from seen.
        body = dict(notice.alert, reminder=0, notifiedAt=now, firstNotifiedAt=now)
        cur = conn.execute(
            "INSERT OR IGNORE INTO alerts(dedup, route, received_at, body) VALUES (?, ?, ?, ?)",
            (notice.key, webhook.route, now, json.dumps(body, ensure_ascii=True)),
        )
        number = 0
        if cur.rowcount != 1:
            if notice.alert.get("status") != "firing" or not repeat:
                duplicates += 1
                continue
            first, reminders = conn.execute(
                "SELECT received_at, reminders FROM alerts WHERE dedup=?", (notice.key,)
            ).fetchone()
            number = int(reminders) + 1
            conn.execute("UPDATE alerts SET reminders=?, last_at=? WHERE dedup=?", (number, now, notice.key))
            body = dict(notice.alert, reminder=number, notifiedAt=now, firstNotifiedAt=float(first))
            cur = conn.execute(
                "INSERT OR IGNORE INTO alerts(dedup, route, received_at, body) VALUES (?, ?, ?, ?)",
                (f"{notice.key}#{number}", webhook.route, now, json.dumps(body, ensure_ascii=True)),
            )
            if cur.rowcount != 1:
                duplicates += 1
                continue
        accepted += 1
        messages = list(notice.messages)
        if number:
            messages = [m for m in messages if _reminder_due(conn, notice.key, m.channel, webhook, now)]
        # Only channels that space their reminders need to remember when they last told this alert.
        for channel in {m.channel for m in messages if webhook.reminder_gaps.get(m.channel)}:
            conn.execute(
                "INSERT INTO channel_notices(key, channel, last_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key, channel) DO UPDATE SET last_at=excluded.last_at",
                (notice.key, channel, now),
            )
        insert_messages(conn, cur.lastrowid or 0, webhook.route, messages, now, 0)
    if not unchanged or repeat:
        conn.execute(
            "INSERT INTO groups(key, firing, last_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET firing=excluded.firing, last_at=excluded.last_at",
            (webhook.group, webhook.firing, now),
        )
        groups[webhook.group] = (webhook.firing, now)
    if webhook.oncall is not None:
        upsert_incident(conn, webhook.oncall, now)
    return accepted, duplicates


def _reminder_due(conn: sqlite3.Connection, key: str, channel: str, webhook: Webhook, now: float) -> bool:
    gap = webhook.reminder_gaps.get(channel, 0.0)
    if gap is None:
        return False
    if not gap:
        return True
    last = conn.execute("SELECT last_at FROM channel_notices WHERE key=? AND channel=?", (key, channel)).fetchone()
    return last is None or now - float(last[0]) >= gap


def insert_messages(
    conn: sqlite3.Connection, alert_id: int, route: str, messages: Iterable[NewMessage], now: float, depth: int
) -> None:
    conn.executemany(
        "INSERT INTO messages(channel, recipient, dest, kind, alert_id, state, created_at, next_at, "
        "updated_at, delivery_id, route, fallback_depth, note, ready_at) "
        "VALUES (?, ?, ?, 'single', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                m.channel,
                m.recipient,
                m.dest,
                alert_id,
                "quiet" if m.quiet else "pending",
                now,
                m.next_at,
                now,
                uuid.uuid4().hex,
                route,
                depth,
                m.note,
                m.next_at,
            )
            for m in messages
        ],
    )
