"""Escalation timing with an injectable clock, on the shipped config (sms route: 15 minutes, then leader-sms):
the step happens at the deadline and not a second before, once per level, then the chain is exhausted;
acknowledged or resolved stops it; the group firing again later starts over from level 0."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from relay import oncall
from relay.config import load_config
from relay.escalation import escalate_due
from relay.ingest import build_webhook, parse_payload
from relay.store import Store
from tests.relay.relay_fakes import FakeProviders
from tests.relay.shipped import shipped_relay_config
from tests.support.prometheus import free_port

T0 = 1_796_000_000.0
WAIT = 15 * 60


def _payload(status: str = "firing") -> bytes:
    alert = {
        "status": status,
        "labels": {"alertname": "HostDown", "severity": "critical", "township": "城关镇", "instance": "cg-01"},
        "annotations": {"summary": "主机离线"},
        "startsAt": "2026-12-02T00:00:00Z",
        "endsAt": "2026-12-02T00:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "fingerprint": "f1",
    }
    return json.dumps(
        {
            "version": "4",
            "groupKey": '{}:{alertname="HostDown"}',
            "status": status,
            "receiver": "relay-sms",
            "groupLabels": {"township": "城关镇", "alertname": "HostDown"},
            "alerts": [alert],
        }
    ).encode()


@pytest.fixture
def setup(tmp_path: Path, fakes: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> Any:
    config = load_config(shipped_relay_config(tmp_path, fakes, free_port(), monkeypatch))
    store = Store(tmp_path / "clock.db")
    yield config, store, tmp_path / "clock.db"
    store.close()


def _ingest(config: Any, store: Store, now: float, status: str = "firing") -> None:
    store.ingest(build_webhook(config, "sms", parse_payload(_payload(status)), now), now)


def _leader_rows(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT note FROM messages WHERE channel='leader-sms'")]


def test_each_level_at_its_deadline_then_exhausted(setup: Any) -> None:
    config, store, db = setup
    assert config.routes["sms"].escalation.after_seconds == WAIT  # the shipped 15 minutes
    _ingest(config, store, T0)
    assert escalate_due(config, store, T0 + WAIT - 1) == []
    assert escalate_due(config, store, T0 + WAIT) == [("sms", 1)]
    assert escalate_due(config, store, T0 + WAIT + 1) == []  # once per level
    assert _leader_rows(db) == ["升级第 1 级：告警 15 分钟无人确认 Escalated: unacknowledged for 15 min"]
    assert escalate_due(config, store, T0 + 2 * WAIT - 1) == []
    assert escalate_due(config, store, T0 + 2 * WAIT) == [("sms", 0)]  # the shipped chain has one level
    assert escalate_due(config, store, T0 + 10 * WAIT) == []
    assert len(_leader_rows(db)) == 1
    assert store.transaction(oncall.counts) == {"exhausted": 1}


def test_acknowledged_or_resolved_stops_and_a_new_firing_starts_over(setup: Any) -> None:
    config, store, db = setup
    _ingest(config, store, T0)
    incident = store.transaction(lambda c: oncall.due(c, T0 + WAIT))[0]
    assert store.transaction(lambda c: oncall.acknowledge(c, incident.id, "张三", T0 + 60))
    assert escalate_due(config, store, T0 + 5 * WAIT) == [] and _leader_rows(db) == []
    _ingest(config, store, T0 + 100, "resolved")
    assert store.transaction(oncall.counts) == {"resolved": 1}
    _ingest(config, store, T0 + 3600)  # the group fires again: a new incident, level 0, a new deadline
    assert escalate_due(config, store, T0 + 3600 + WAIT - 1) == []
    assert escalate_due(config, store, T0 + 3600 + WAIT) == [("sms", 1)]
    _ingest(config, store, T0 + 3600 + WAIT + 10, "resolved")
    assert escalate_due(config, store, T0 + 3600 + 2 * WAIT) == []  # resolved: no "exhausted"
    assert store.transaction(oncall.counts) == {"resolved": 1}
