"""The shipped routing, end to end: real Alertmanager(s) with deploy/central/alertmanager.yml, the relay as a
process with deploy/central/relay.example.yml, the providers as loopback fakes that verify signatures.

Only addresses, secrets and the timers each test names are rewritten (tests/relay/shipped.py); budgets,
severities, reminder policy, fallbacks and the heartbeat section are what ships. The dead man's switch
test adds a real Prometheus running the shipped ShaobingWatchdog rule with the shipped external label.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.relay.relay_fakes import FakeProviders
from tests.relay.relay_testlib import RelayProcess, wait_until
from tests.relay.shipped import REPO, shipped_alertmanager_config, shipped_relay_config
from tests.relay.test_relay_roster import PHONES, ZONE, expected_chengguan
from tests.support.prometheus import AlertmanagerServer, PrometheusServer, free_port

pytestmark = pytest.mark.integration

TOWNSHIPS = ("城关镇", "河口乡", "石桥镇", "新城街道", "清水镇", "东山乡", "南湖镇")
# Alertmanager timers shortened so a test runs in seconds (the shipped values are 30s / 5m / 4h).
FAST = {"group_wait": "1s", "group_interval": "1s"}


def _relay(
    tmp: Path, fakes: FakeProviders, relays: list[RelayProcess], mp: pytest.MonkeyPatch, **timers: Any
) -> RelayProcess:
    port = free_port()
    config = shipped_relay_config(tmp, fakes, port, mp, {k.replace("__", "."): v for k, v in timers.items()})
    relay = RelayProcess(config, port, tmp / "relay.log")
    relays.append(relay)
    relay.start()
    return relay


def _alertmanager(tmp: Path, name: str, relay: RelayProcess, timers: dict[str, str]) -> AlertmanagerServer:
    text = shipped_alertmanager_config(relay.base, tmp / "secrets" / "relay-token", timers)
    return AlertmanagerServer(tmp / name, text)  # started by `with`


def _alert(name: str, township: str, severity: str = "critical") -> dict[str, Any]:
    """An alert as Prometheus posts it to Alertmanager's v2 API."""
    return {
        "labels": {
            "alertname": name,
            "severity": severity,
            "township": township,
            "instance": f"{township}-host:10130",
            "job": "shaobing",
        },
        "annotations": {"summary": f"{name} 测试告警", "description": f"{township} 的测试告警"},
        "startsAt": dt.datetime.now(dt.timezone.utc).isoformat(),
        "generatorURL": "http://127.0.0.1:9/graph",
    }


def _rows(db: Path, channel: str) -> list[tuple[str, str, int, float]]:
    """(alertname, state, reminder, next_at) of every single message of a channel."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT json_extract(a.body, '$.labels.alertname'), m.state, COALESCE(json_extract(a.body, '$.reminder'), 0), m.next_at "
            "FROM messages m JOIN alerts a ON a.id = m.alert_id WHERE m.channel=? AND m.kind='single'",
            (channel,),
        ).fetchall()
    return [(str(n), str(s), int(r), float(t)) for n, s, r, t in rows]


def _chat_texts(fakes: FakeProviders, provider: str) -> list[str]:
    out = []
    for got in fakes.got(provider):
        assert got.signature_ok, provider
        body = got.body
        out.append(body["markdown"]["text"] if provider == "dingtalk" else str(body))
    return out


def test_shipped_routing_every_critical_reaches_sms_and_im_warnings_im_only_and_reminders(
    tmp_path: Path, fakes: FakeProviders, relays: list[RelayProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reminders: Alertmanager repeats every 4 s (shipped: 2 h for critical IM); the relay's duplicate window
    # is shortened to match (shipped: 300 s). SMS keeps its shipped 4 h reminder policy.
    relay = _relay(tmp_path, fakes, relays, monkeypatch, delivery__duplicate_window_seconds=2)
    started = dt.datetime.now(ZONE)
    with _alertmanager(tmp_path, "am", relay, {**FAST, "repeat_interval": "4s"}) as am:
        critical = [_alert(f"Critical{i}", TOWNSHIPS[i]) for i in range(7)]
        warnings = [_alert(f"Warning{i}", TOWNSHIPS[i], "warning") for i in range(2)]
        am.post_alerts(critical + warnings)
        names = {a["labels"]["alertname"] for a in critical + warnings}

        def dingtalk_has_all() -> bool:
            text = "\n".join(_chat_texts(fakes, "dingtalk"))
            return all(f"{n} 测试告警" in text for n in names)

        assert wait_until(dingtalk_has_all, 30), _chat_texts(fakes, "dingtalk")
        db = tmp_path / "relay.db"
        # Every critical alert has an SMS message for each of the two on-call people (the county's zhangsan and
        # the person on duty for its township: the shipped rosters); no warning has one.
        sms = _rows(db, "oncall-sms")
        assert sorted(n for n, _, r, _ in sms if r == 0) == sorted([f"Critical{i}" for i in range(7)] * 2)
        # Feishu (quiet hours 22:00-07:30, critical bypasses): every alert is there, sent or held for the morning.
        feishu = _rows(db, "ops-feishu")
        assert {n for n, _, r, _ in feishu if r == 0} == names
        assert all(s in ("delivered", "quiet", "pending", "sending") for _, s, _, _ in feishu)
        # The township is named in the IM text.
        assert all(township in "\n".join(_chat_texts(fakes, "dingtalk")) for township in TOWNSHIPS)

        # A reminder arrives at the shortened repeat_interval, on IM only (SMS: at most every 4 h).
        assert wait_until(lambda: any("第 1 次提醒" in t for t in _chat_texts(fakes, "dingtalk")), 30)
        reminded = {n for n, _, r, _ in _rows(db, "ops-dingtalk") if r >= 1}
        assert reminded and reminded <= names
        assert all(r == 0 for _, _, r, _ in _rows(db, "oncall-sms"))

        # The SMS budget is one a minute per person: the first went at once, the rest follow as a digest.
        assert wait_until(lambda: all(s == "delivered" for _, s, _, _ in _rows(db, "oncall-sms")), 80)
    sent = fakes.got("aliyun")
    assert all(r.signature_ok for r in sent)
    # zhangsan; lisi (the county roster, six townships); 城关镇's person on duty (a weekday-daytime handover
    # during the test would make it either one).
    phones = {r.body["PhoneNumbers"] for r in sent}
    assert {"13800001234", "13900005678"} <= phones
    duty = {PHONES[expected_chengguan(t)] for t in (started, dt.datetime.now(ZONE))}
    assert phones <= {"13800001234", "13900005678"} | duty and phones & duty
    assert len(sent) <= 3 * 3  # per person: first alert, then digests within the 1/min budget (not 7 each)


def test_two_alertmanagers_ha_pair_one_notification_per_channel(
    tmp_path: Path, fakes: FakeProviders, relays: list[RelayProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = _relay(tmp_path, fakes, relays, monkeypatch)
    # Both Alertmanagers get every alert (Prometheus sends to all of them) and both notify: the worst case,
    # a partitioned pair whose notification logs never meet.
    with _alertmanager(tmp_path, "am1", relay, FAST) as am1, _alertmanager(tmp_path, "am2", relay, FAST) as am2:
        alerts = [_alert(f"HaCritical{i}", TOWNSHIPS[i]) for i in range(3)]
        am1.post_alerts(alerts)
        am2.post_alerts(alerts)
        received = lambda: relay.metric("shaobing_relay_alerts_received_total", route="im")  # noqa: E731
        assert wait_until(lambda: received() >= 6, 30)  # three alerts from each Alertmanager on the IM route
        assert wait_until(lambda: len(fakes.got("dingtalk")) >= 3, 30)
        time.sleep(3)  # a few more group_interval ticks: nothing else may arrive
    assert relay.metric("shaobing_relay_alerts_duplicate_total", route="im") >= 3
    assert len(fakes.got("dingtalk")) == 3
    db = tmp_path / "relay.db"
    assert sorted(n for n, _, _, _ in _rows(db, "oncall-sms")) == sorted([f"HaCritical{i}" for i in range(3)] * 2)
    assert sorted(n for n, _, _, _ in _rows(db, "ops-dingtalk")) == [f"HaCritical{i}" for i in range(3)]


def _prometheus(tmp: Path, am: AlertmanagerServer) -> PrometheusServer:
    """The shipped rule file that holds the Watchdog and the shipped external label; 1 s evaluation, and the
    alert resend delay shortened from 1m so Alertmanager sees a dead Prometheus's alerts end in 4 s, not 4 min."""
    shipped = yaml.safe_load((REPO / "deploy/central/prometheus.yml").read_text(encoding="utf-8"))
    config = {
        "global": {"evaluation_interval": "1s", "external_labels": shipped["global"]["external_labels"]},
        "rule_files": [str(REPO / "alert_rules" / "relay.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am.port}"]}]}]},
    }
    return PrometheusServer(tmp, config, extra_args=["--rules.alert.resend-delay=1s"]).start()


def test_dead_mans_switch_prometheus_down_then_back_with_a_relay_restart_between(
    tmp_path: Path, fakes: FakeProviders, relays: list[RelayProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    timers = {"heartbeats__timeout_seconds": 5, "heartbeats__restart_grace_seconds": 1}
    relay = _relay(tmp_path, fakes, relays, monkeypatch, **timers)
    beat = {"group_wait": "0s", "group_interval": "1s", "repeat_interval": "1s"}
    with _alertmanager(tmp_path, "am", relay, beat) as am:
        prometheus = _prometheus(tmp_path / "prom1", am)
        try:
            last = "shaobing_relay_heartbeat_last_timestamp_seconds"
            assert wait_until(lambda: relay.metric(last, source="county-centre") > time.time() - 3, 30)
            assert relay.metric("shaobing_relay_heartbeat_missing", source="county-centre") == 0
        finally:
            prometheus.stop()
        stopped = time.time()

        def announced(word: str) -> bool:
            chat = any(word in t for t in _chat_texts(fakes, "dingtalk"))
            sms = any(word in str(r.body) for r in fakes.got("aliyun"))
            return chat and sms

        assert wait_until(lambda: announced("监控链路中断"), 40), _chat_texts(fakes, "dingtalk")
        took = time.time() - stopped
        assert relay.metric("shaobing_relay_heartbeat_missing", source="county-centre") == 1
        assert all(r.signature_ok for r in fakes.got("aliyun"))
        down_sms = len(fakes.got("aliyun"))
        assert down_sms == 2  # both on-call people

        # The relay restarts during the outage: the outage is remembered and not announced again.
        relay.stop()
        relay.start()
        time.sleep(3)
        assert relay.metric("shaobing_relay_heartbeat_missing", source="county-centre") == 1
        assert sum("监控链路中断" in t for t in _chat_texts(fakes, "dingtalk")) == 1

        prometheus = _prometheus(tmp_path / "prom2", am)
        try:
            assert wait_until(lambda: any("监控链路恢复" in t for t in _chat_texts(fakes, "dingtalk")), 40)
            assert relay.metric("shaobing_relay_heartbeat_missing", source="county-centre") == 0
        finally:
            prometheus.stop()
    # The recovery SMS is queued for both people; the 1-a-minute budget holds it until a minute after the first.
    rows = _rows(tmp_path / "relay.db", "oncall-sms")
    recovery = [(s, t) for n, s, _, t in rows if n == "ShaobingAlertPathDown" and s != "delivered"]
    recovery += [("delivered", 0.0) for r in fakes.got("aliyun")[down_sms:] if "恢复" in str(r.body)]
    assert len(recovery) == 2
    print(f"\nheartbeat: Prometheus stopped -> path-down SMS and IM in {took:.1f} s (timeout 5 s)")
