"""SQLite (WAL) outbox: alerts are committed before the caller gets its 2xx.

Message states: pending -> sending -> delivered; sending -> pending (retry) | unknown (SMS outcome
not known; reconcile) | dead (permanent or out of attempts). unknown -> delivered | pending | dead | review.
Rows folded into a digest are 'folded' and follow their digest row to delivered/dead. Rows held back by
quiet hours are 'quiet' until their time comes (not backlog: nothing is late yet), then 'pending'.
(How a webhook becomes notices, duplicates and reminders: relay/notices.py.)
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from relay.notices import NewMessage, Notice, Webhook, ingest_webhook, insert_messages
from relay.oncall import SCHEMA as ONCALL_SCHEMA

# The voice providers' pushed call results (relay/voice_callbacks.py reads and writes them).
CALL_RESULTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS call_results (
    call_id TEXT PRIMARY KEY,
    result TEXT NOT NULL,
    received_at REAL NOT NULL
) WITHOUT ROWID;
"""

__all__ = ["Store", "Row", "NewMessage", "Notice", "Webhook", "ChannelStats", "HeartbeatState", "StoreError"]

StoreError = sqlite3.Error
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    dedup TEXT NOT NULL UNIQUE,
    route TEXT NOT NULL,
    received_at REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    dest TEXT NOT NULL,
    kind TEXT NOT NULL,
    alert_id INTEGER,
    digest_id INTEGER,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    next_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    unknown_since REAL,
    delivery_id TEXT NOT NULL,
    route TEXT NOT NULL DEFAULT '',
    fallback_depth INTEGER NOT NULL DEFAULT 0,
    provider_ref TEXT NOT NULL DEFAULT '',
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS messages_due ON messages(state, next_at);
CREATE INDEX IF NOT EXISTS messages_digest ON messages(digest_id);
CREATE TABLE IF NOT EXISTS sends (dest TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS sends_dest ON sends(dest, at);
-- Keyed tables without a rowid: one B-tree each, so an upsert writes one page set, not two.
CREATE TABLE IF NOT EXISTS groups (
    key TEXT PRIMARY KEY,
    firing TEXT NOT NULL,
    last_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channel_notices (
    key TEXT NOT NULL,
    channel TEXT NOT NULL,
    last_at REAL NOT NULL,
    PRIMARY KEY (key, channel)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heartbeats (
    source TEXT PRIMARY KEY,
    last_at REAL NOT NULL,
    down INTEGER NOT NULL DEFAULT 0,
    down_since REAL,
    received INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"""

# Columns added after the first release: (table, column, declaration). Existing databases get them
# with ALTER TABLE at open, so an upgrade keeps every queued message.
_MIGRATIONS = (
    ("messages", "note", "TEXT NOT NULL DEFAULT ''"),
    ("messages", "ready_at", "REAL"),
    # A notice's first alert row (dedup = notice key) counts its reminders and when the last one was.
    ("alerts", "reminders", "INTEGER NOT NULL DEFAULT 0"),
    ("alerts", "last_at", "REAL"),
)

_LIVE = ("pending", "sending", "folded", "unknown")


@dataclass(frozen=True)
class HeartbeatState:
    source: str
    last_at: float
    down: bool
    down_since: float | None
    received: bool  # a heartbeat has arrived at least once (else last_at is when tracking began)


@dataclass(frozen=True)
class Row:
    id: int
    channel: str
    recipient: str
    dest: str
    kind: str
    state: str
    attempts: int
    created_at: float
    next_at: float
    unknown_since: float | None
    delivery_id: str
    route: str
    fallback_depth: int
    provider_ref: str
    last_error: str
    note: str


@dataclass
class ChannelStats:
    queue_depth: int = 0
    oldest_ready_at: float | None = None
    dead: int = 0
    unknown: int = 0
    review: int = 0
    deferred: int = 0


_ROW_COLS = (
    "id, channel, recipient, dest, kind, state, attempts, created_at, next_at, unknown_since, "
    "delivery_id, route, fallback_depth, provider_ref, last_error, note"
)


def _row(values: Sequence[Any]) -> Row:
    return Row(*values)


class Store:
    """One connection guarded by a lock; callers run these short transactions from worker threads."""

    def __init__(self, path: Path, synchronous: str = "full") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed alert survives power loss, not just a killed process; the 2xx is a promise.
        self._conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._conn.executescript(_SCHEMA)
        self._conn.executescript(ONCALL_SCHEMA)
        self._conn.executescript(CALL_RESULTS_SCHEMA)
        for table, column, decl in _MIGRATIONS:
            have = {str(r[1]) for r in self._conn.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
        self._conn.execute("UPDATE messages SET ready_at=created_at WHERE ready_at IS NULL")
        # Group state (firing set, last accepted) as committed, so most webhooks need no lookup for it.
        self._groups: dict[str, tuple[str, float]] = {}

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _tx(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def _commit(self) -> None:
        self._conn.execute("COMMIT")

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in one short write transaction (for the modules that keep their own tables)."""
        with self._lock:
            conn = self._tx()
            try:
                result = work(conn)
                self._commit()
            except BaseException:
                self._rollback()
                raise
        return result

    def ping(self) -> None:
        with self._lock:
            self._conn.execute("SELECT 1").fetchone()

    # -- ingest -------------------------------------------------------------------------------------

    def ingest(self, webhook: Webhook, now: float) -> tuple[int, int]:
        """Persist a webhook's new notices and their outbox messages in one transaction."""
        return self.ingest_many([webhook], now)[0]

    def ingest_many(self, webhooks: Sequence[Webhook], now: float) -> list[tuple[int, int]]:
        """Several webhooks in one transaction (group commit): one fsync for all of them.
        Returns (accepted, duplicates) per webhook; a reminder counts as accepted."""
        results: list[tuple[int, int]] = []
        groups: dict[str, tuple[str, float]] = {}
        with self._lock:
            conn = self._tx()
            try:
                for webhook in webhooks:
                    results.append(ingest_webhook(conn, webhook, now, groups, self._groups))
                self._commit()
            except BaseException:
                self._rollback()
                raise
            if len(self._groups) + len(groups) > 100_000:
                self._groups.clear()  # a bound, not an eviction policy: misses fall back to the table
            self._groups.update(groups)
        return results

    def add_alert(
        self, dedup: str, route: str, alert: dict[str, Any], messages: Sequence[NewMessage], now: float
    ) -> bool:
        """An alert the relay makes itself (the heartbeat watch): stored and queued like a received one.
        False when `dedup` was stored before (the same event is never announced twice)."""
        with self._lock:
            conn = self._tx()
            try:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO alerts(dedup, route, received_at, body) VALUES (?, ?, ?, ?)",
                    (dedup, route, now, json.dumps(alert, ensure_ascii=True)),
                )
                added = cur.rowcount == 1
                if added:
                    insert_messages(conn, cur.lastrowid or 0, route, messages, now, 0)
                self._commit()
            except BaseException:
                self._rollback()
                raise
        return added

    # -- delivery -----------------------------------------------------------------------------------

    def due_destinations(self, now: float) -> list[tuple[str, str]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT DISTINCT dest, channel FROM messages WHERE state='pending' AND next_at<=?", (now,)
            ).fetchall()
        return [(str(d), str(c)) for d, c in rows]

    def due_rows(self, dest: str, now: float, limit: int = 10000) -> list[Row]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_ROW_COLS} FROM messages WHERE dest=? AND state='pending' AND next_at<=? "
                "ORDER BY kind='single', id LIMIT ?",
                (dest, now, limit),
            ).fetchall()
        return [_row(r) for r in rows]

    def next_due_at(self) -> float | None:
        with self._lock:
            (value,) = self._conn.execute(
                "SELECT MIN(next_at) FROM messages WHERE state IN ('pending', 'unknown', 'quiet')"
            ).fetchone()
        return float(value) if value is not None else None

    def find_delivery(self, delivery_id: str) -> Row | None:
        with self._lock:
            found = self._conn.execute(
                f"SELECT {_ROW_COLS} FROM messages WHERE delivery_id=? LIMIT 1", (delivery_id,)
            ).fetchone()
        return _row(found) if found else None

    def get(self, message_id: int) -> Row | None:
        with self._lock:
            found = self._conn.execute(f"SELECT {_ROW_COLS} FROM messages WHERE id=?", (message_id,)).fetchone()
        return _row(found) if found else None

    def defer_destination(self, dest: str, due_before: float, until: float, now: float) -> int:
        """Push every still-pending due row of `dest` to `until` (one statement, however long the backlog)."""
        with self._lock:
            cur = self._conn.execute(
                "UPDATE messages SET next_at=?, updated_at=? WHERE dest=? AND state='pending' AND next_at<=?",
                (until, now, dest, due_before),
            )
        return int(cur.rowcount)

    def defer(self, ids: Sequence[int], until: float, now: float) -> None:
        with self._lock:
            self._conn.executemany(
                "UPDATE messages SET next_at=?, updated_at=? WHERE id=? AND state='pending'",
                [(until, now, i) for i in ids],
            )

    def fold(self, template: Row, child_ids: Sequence[int], now: float) -> Row:
        """Create one digest row for `child_ids` (all pending, same destination)."""
        with self._lock:
            conn = self._tx()
            try:
                cur = conn.execute(
                    "INSERT INTO messages(channel, recipient, dest, kind, state, created_at, next_at, updated_at, "
                    "delivery_id, route, fallback_depth, ready_at) "
                    "SELECT ?, ?, ?, 'digest', 'pending', ?, ?, ?, ?, ?, ?, MIN(COALESCE(ready_at, created_at)) "
                    f"FROM messages WHERE id IN ({','.join('?' for _ in child_ids)})",
                    (
                        template.channel,
                        template.recipient,
                        template.dest,
                        now,
                        now,
                        now,
                        uuid.uuid4().hex,
                        template.route,
                        template.fallback_depth,
                        *child_ids,
                    ),
                )
                digest_id = cur.lastrowid or 0
                conn.executemany(
                    "UPDATE messages SET state='folded', digest_id=?, updated_at=? WHERE id=? AND state='pending'",
                    [(digest_id, now, i) for i in child_ids],
                )
                self._commit()
            except BaseException:
                self._rollback()
                raise
            found = self._conn.execute(f"SELECT {_ROW_COLS} FROM messages WHERE id=?", (digest_id,)).fetchone()
        return _row(found)

    def alerts_for(self, row: Row) -> list[dict[str, Any]]:
        with self._lock:
            if row.kind == "digest":
                bodies = self._conn.execute(
                    "SELECT a.body FROM messages m JOIN alerts a ON a.id=m.alert_id WHERE m.digest_id=? ORDER BY m.id",
                    (row.id,),
                ).fetchall()
            else:
                bodies = self._conn.execute(
                    "SELECT a.body FROM messages m JOIN alerts a ON a.id=m.alert_id WHERE m.id=?", (row.id,)
                ).fetchall()
        return [json.loads(b) for (b,) in bodies]

    def alert_ids_for(self, row: Row) -> list[int]:
        with self._lock:
            column = "digest_id" if row.kind == "digest" else "id"
            found = self._conn.execute(f"SELECT alert_id FROM messages WHERE {column}=?", (row.id,)).fetchall()
        return [int(a) for (a,) in found if a is not None]

    def mark_sending(self, message_id: int, dest: str, now: float) -> None:
        """Committed before the request leaves, so a crash mid-send is visible on restart."""
        with self._lock:
            conn = self._tx()
            try:
                conn.execute(
                    "UPDATE messages SET state='sending', attempts=attempts+1, updated_at=? WHERE id=?",
                    (now, message_id),
                )
                conn.execute("INSERT INTO sends(dest, at) VALUES (?, ?)", (dest, now))
                self._commit()
            except BaseException:
                self._rollback()
                raise

    def forget_send(self, dest: str, at: float) -> None:
        """A send that provably did not reach anyone (rejected, failed) gives its budget back."""
        with self._lock:
            self._conn.execute(
                "DELETE FROM sends WHERE rowid=(SELECT rowid FROM sends WHERE dest=? AND at=? LIMIT 1)", (dest, at)
            )

    def release_quiet(self, now: float) -> int:
        """Quiet hours are over for these rows: they join the queue (and count as backlog from now on)."""
        with self._lock:
            cur = self._conn.execute(
                "UPDATE messages SET state='pending', updated_at=? WHERE state='quiet' AND next_at<=?", (now, now)
            )
        return int(cur.rowcount)

    def _finish(self, message_id: int, state: str, now: float, ref: str, error: str) -> None:
        with self._lock:
            conn = self._tx()
            try:
                conn.execute(
                    "UPDATE messages SET state=?, updated_at=?, provider_ref=?, last_error=? WHERE id=?",
                    (state, now, ref, error[:500], message_id),
                )
                conn.execute(
                    "UPDATE messages SET state=?, updated_at=? WHERE digest_id=? AND state='folded'",
                    (state, now, message_id),
                )
                self._commit()
            except BaseException:
                self._rollback()
                raise

    def delivered(self, message_id: int, now: float, ref: str = "") -> None:
        self._finish(message_id, "delivered", now, ref, "")

    def dead(self, message_id: int, now: float, error: str) -> None:
        self._finish(message_id, "dead", now, "", error)

    def review(self, message_id: int, now: float, error: str) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE messages SET state='review', updated_at=?, last_error=? WHERE id=?",
                (now, error[:500], message_id),
            )

    def reschedule(self, message_id: int, next_at: float, now: float, error: str, charge: bool = True) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE messages SET state='pending', next_at=?, updated_at=?, last_error=?, "
                "attempts=attempts-? WHERE id=?",
                (next_at, now, error[:500], 0 if charge else 1, message_id),
            )

    def unknown(self, message_id: int, next_at: float, now: float, error: str, ref: str = "") -> None:
        """`ref`: the provider's id for the send (a voice call's CallId), kept for reconciliation."""
        with self._lock:
            self._conn.execute(
                "UPDATE messages SET state='unknown', next_at=?, updated_at=?, last_error=?, "
                "unknown_since=COALESCE(unknown_since, ?), provider_ref=CASE WHEN ?='' THEN provider_ref ELSE ? END "
                "WHERE id=?",
                (next_at, now, error[:500], now, ref, ref, message_id),
            )

    def unknown_due(self, now: float, limit: int = 100) -> list[Row]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_ROW_COLS} FROM messages WHERE state='unknown' AND next_at<=? ORDER BY next_at LIMIT ?",
                (now, limit),
            ).fetchall()
        return [_row(r) for r in rows]

    def enqueue_fallback(
        self, planned: Sequence[tuple[int, Sequence[NewMessage]]], route: str, depth: int, now: float
    ) -> None:
        with self._lock:
            conn = self._tx()
            try:
                for alert_id, messages in planned:
                    insert_messages(conn, alert_id, route, messages, now, depth)
                self._commit()
            except BaseException:
                self._rollback()
                raise

    def alert_body(self, alert_id: int) -> dict[str, Any]:
        with self._lock:
            (body,) = self._conn.execute("SELECT body FROM alerts WHERE id=?", (alert_id,)).fetchone()
        result: dict[str, Any] = json.loads(body)
        return result

    def recover_inflight(self, uncertain_channels: set[str], now: float, reconcile_at: float) -> tuple[int, int]:
        """After a crash: IM sends are retried (a duplicate chat message is harmless); SMS sends whose
        outcome we never saw go to reconciliation, never straight back to the provider."""
        with self._lock:
            rows = self._conn.execute("SELECT id, channel FROM messages WHERE state='sending'").fetchall()
            retried = reconciled = 0
            for message_id, channel in rows:
                if channel in uncertain_channels:
                    self._conn.execute(
                        "UPDATE messages SET state='unknown', next_at=?, unknown_since=?, updated_at=?, "
                        "last_error='relay restarted during send' WHERE id=?",
                        (reconcile_at, now, now, message_id),
                    )
                    reconciled += 1
                else:
                    self._conn.execute(
                        "UPDATE messages SET state='pending', next_at=?, updated_at=? WHERE id=?",
                        (now, now, message_id),
                    )
                    retried += 1
        return retried, reconciled

    def recent_sends(self, since: float) -> list[tuple[str, float]]:
        with self._lock:
            rows = self._conn.execute("SELECT dest, at FROM sends WHERE at>=? ORDER BY at", (since,)).fetchall()
        return [(str(d), float(a)) for d, a in rows]

    def prune(self, now: float, keep_seconds: float) -> None:
        """Forget finished messages and old alerts; the dedup window is `keep_seconds`."""
        cutoff = now - keep_seconds
        with self._lock:
            conn = self._tx()
            try:
                conn.execute("DELETE FROM sends WHERE at<?", (now - 2 * 86400,))
                conn.execute("DELETE FROM messages WHERE state='delivered' AND updated_at<?", (cutoff,))
                conn.execute("DELETE FROM groups WHERE last_at<?", (cutoff,))
                self._groups = {k: v for k, v in self._groups.items() if v[1] >= cutoff}
                conn.execute("DELETE FROM channel_notices WHERE last_at<?", (cutoff,))
                conn.execute(
                    "DELETE FROM alerts WHERE COALESCE(last_at, received_at)<? AND id NOT IN "
                    "(SELECT alert_id FROM messages WHERE alert_id IS NOT NULL)",
                    (cutoff,),
                )
                self._commit()
            except BaseException:
                self._rollback()
                raise

    # -- observation --------------------------------------------------------------------------------

    def stats(self) -> dict[str, ChannelStats]:
        out: dict[str, ChannelStats] = {}
        with self._lock:
            rows = self._conn.execute(
                "SELECT channel, state, kind, COUNT(*), MIN(COALESCE(ready_at, created_at)) FROM messages "
                "WHERE state IN ('pending', 'sending', 'folded', 'unknown', 'dead', 'review', 'quiet') "
                "GROUP BY channel, state, kind"
            ).fetchall()
        for channel, state, kind, count, oldest in rows:
            stats = out.setdefault(str(channel), ChannelStats())
            if state in _LIVE and kind == "single":
                stats.queue_depth += int(count)
            if state in _LIVE and oldest is not None:
                current = stats.oldest_ready_at
                stats.oldest_ready_at = float(oldest) if current is None else min(current, float(oldest))
            if state == "dead" and kind == "single":
                stats.dead += int(count)
            if state == "unknown":
                stats.unknown += int(count)
            if state == "review":
                stats.review += int(count)
            if state == "quiet" and kind == "single":
                stats.deferred += int(count)
        return out

    def counts_by_state(self) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute("SELECT state, COUNT(*) FROM messages GROUP BY state").fetchall()
        return {str(s): int(c) for s, c in rows}

    def list_rows(self, states: Sequence[str]) -> list[Row]:
        marks = ",".join("?" for _ in states)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_ROW_COLS} FROM messages WHERE state IN ({marks}) ORDER BY id", tuple(states)
            ).fetchall()
        return [_row(r) for r in rows]

    def alert_count(self) -> int:
        with self._lock:
            (count,) = self._conn.execute("SELECT COUNT(*) FROM alerts").fetchone()
        return int(count)

    # -- heartbeats (the dead man's switch) ----------------------------------------------------------

    def heartbeat(self, sources: Iterable[str], now: float) -> None:
        with self._lock:
            self._conn.executemany(
                "INSERT INTO heartbeats(source, last_at, received) VALUES (?, ?, 1) "
                "ON CONFLICT(source) DO UPDATE SET last_at=MAX(last_at, excluded.last_at), received=1",
                [(s, now) for s in sources],
            )

    def track_heartbeats(self, sources: Iterable[str], now: float) -> None:
        """Expected sources start their clock when first tracked, so one that never reports also alarms."""
        with self._lock:
            self._conn.executemany(
                "INSERT OR IGNORE INTO heartbeats(source, last_at, received) VALUES (?, ?, 0)",
                [(s, now) for s in sources],
            )

    def heartbeats(self) -> list[HeartbeatState]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT source, last_at, down, down_since, received FROM heartbeats ORDER BY source"
            ).fetchall()
        return [
            HeartbeatState(str(s), float(a), bool(d), None if ds is None else float(ds), bool(r))
            for s, a, d, ds, r in rows
        ]

    def set_heartbeat_down(self, source: str, down: bool, since: float | None) -> None:
        with self._lock:
            self._conn.execute("UPDATE heartbeats SET down=?, down_since=? WHERE source=?", (int(down), since, source))
