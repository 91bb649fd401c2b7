"""Acknowledgement and escalation with the shipped files: deploy/central/alertmanager.yml in a real Alertmanager,
the relay running deploy/central/relay.example.yml (its acknowledge section, and the sms route's escalation to
leader-sms, with the wait shortened), providers as loopback fakes.

- The DingTalk message of a critical alert carries a signed link; opening it (GET) acknowledges nothing.
- Confirming it (POST) records who, creates a silence in Alertmanager for the group's labels with that person
  as author — and Alertmanager really sends no further notification of the group — and no escalation follows.
- Nobody confirms: the head of the IT office gets the escalation SMS, once, also across a kill -9.
- A resolved alert stops the chain; a forged or expired link is refused.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay import oncall
from tests.relay.relay_fakes import FakeProviders
from tests.relay.relay_testlib import RelayProcess, wait_until
from tests.relay.shipped import shipped_alertmanager_config, shipped_relay_config
from tests.support.prometheus import AlertmanagerServer, free_port

pytestmark = pytest.mark.integration

WAIT_MINUTES = 0.1  # the shipped 15 minutes, shortened to 6 s
LEADER = "13500002222"
LINK = re.compile(r"\((http://127\.0\.0\.1:\d+/ack/[^)\s]+)\)")


def _alert(name: str, ends: float | None = None) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "labels": {"alertname": name, "severity": "critical", "township": "河口乡", "instance": "hk-01:10130"},
        "annotations": {"summary": f"{name} 主机离线"},
        "startsAt": dt.datetime.now(dt.timezone.utc).isoformat(),
        "generatorURL": "http://127.0.0.1:9/graph",
    }
    if ends is not None:
        alert["endsAt"] = dt.datetime.fromtimestamp(ends, dt.timezone.utc).isoformat()
    return alert


class Centre:
    def __init__(self, tmp: Path, fakes: FakeProviders, relays: list[RelayProcess], mp: pytest.MonkeyPatch) -> None:
        self.tmp, self.fakes = tmp, fakes
        self.port = free_port()
        base = f"http://127.0.0.1:{self.port}"
        text = shipped_alertmanager_config(
            base, tmp / "secrets" / "relay-token", {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "3s"}
        )
        self.am = AlertmanagerServer(tmp / "am", text).start()
        timers = {
            "acknowledge.public_url": base,
            "acknowledge.alertmanagers": [self.am.url],
            "routes.sms.escalation.after_minutes": WAIT_MINUTES,
            "delivery.duplicate_window_seconds": 2,
        }
        self.config = shipped_relay_config(tmp, fakes, self.port, mp, timers)
        self.relay = RelayProcess(self.config, self.port, tmp / "relay.log")
        relays.append(self.relay)
        self.relay.start()
        self.db = tmp / "relay.db"

    def stop(self) -> None:
        self.am.stop()

    def link(self, name: str) -> str:
        def found() -> str:
            for got in self.fakes.got("dingtalk"):
                text = got.body["markdown"]["text"]
                if name in text and (m := LINK.search(text)):
                    return m.group(1)
            return ""

        assert wait_until(lambda: bool(found()), 30), [g.body for g in self.fakes.got("dingtalk")]
        return found()

    def leader_sms(self) -> list[str]:
        return [
            str(r.body.get("PhoneNumbers")) for r in self.fakes.got("aliyun") if r.body.get("PhoneNumbers") == LEADER
        ]

    def rows(self, channel: str) -> list[tuple[str, str]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute(
                "SELECT m.state, m.note FROM messages m WHERE m.channel=? ORDER BY m.id", (channel,)
            ).fetchall()

    def incidents(self) -> list[tuple[str, str, int, str]]:
        with sqlite3.connect(self.db) as conn:
            return conn.execute("SELECT route, state, level, acked_by FROM oncall ORDER BY id").fetchall()


@pytest.fixture
def centre(tmp_path: Path, fakes: FakeProviders, relays: list[RelayProcess], monkeypatch: pytest.MonkeyPatch) -> Any:
    c = Centre(tmp_path, fakes, relays, monkeypatch)
    yield c
    c.stop()


def test_acknowledging_silences_the_group_and_stops_escalation(centre: Centre) -> None:
    centre.am.post_alerts([_alert("AckDown")])
    link = centre.link("AckDown")
    page = httpx.get(link, timeout=10)
    assert page.status_code == 200 and "AckDown 主机离线" in page.text and 'name="who"' in page.text
    assert all(state == "open" for _, state, _, _ in centre.incidents())  # a GET (link preview) acknowledges nothing
    answer = httpx.post(link, data={"who": "张三", "hours": "4"}, timeout=20)
    assert (
        answer.status_code == 200 and "已停止升级通知" in answer.text and "已在 Alertmanager 静默 4 小时" in answer.text
    )
    acked_at = time.time()
    # Both incidents of the alert (its SMS and its IM group) are acknowledged by the same person.
    assert {(route, state, who) for route, state, _, who in centre.incidents()} == {
        ("sms", "acked", "张三"),
        ("im", "acked", "张三"),
    }
    silences = [
        s for s in httpx.get(f"{centre.am.url}/api/v2/silences", timeout=10).json() if s["status"]["state"] == "active"
    ]
    assert len(silences) == 1 and silences[0]["createdBy"] == "张三"
    assert {(m["name"], m["value"]) for m in silences[0]["matchers"]} == {
        ("township", "河口乡"),
        ("alertname", "AckDown"),
    }
    ends = dt.datetime.fromisoformat(silences[0]["endsAt"].replace("Z", "+00:00")).timestamp()
    assert abs(ends - acked_at - 4 * 3600) < 60
    # Alertmanager repeats every 3 s here: with the group silenced nothing more arrives, and the 6 s escalation
    # deadline passes without a word to the head of the IT office.
    before = len(centre.fakes.got("dingtalk"))
    time.sleep(3 * WAIT_MINUTES * 60)
    assert len(centre.fakes.got("dingtalk")) == before
    assert centre.rows("leader-sms") == [] and centre.leader_sms() == []
    # The link now says who acknowledged; a second confirmation changes nothing.
    again = httpx.get(link, timeout=10)
    assert "已由 <b>张三</b>" in again.text
    assert httpx.post(link, data={"who": "李四", "hours": "1"}, timeout=10).status_code == 200
    assert {who for _, _, _, who in centre.incidents()} == {"张三"}


def test_nobody_acknowledges_the_next_level_is_told_once_across_a_kill(centre: Centre) -> None:
    centre.am.post_alerts([_alert("EscDown")])
    centre.link("EscDown")  # first notifications went out
    centre.relay.kill9()  # mid-chain, before the deadline
    centre.relay.start()
    assert wait_until(lambda: centre.leader_sms() != [], 30), centre.rows("leader-sms")
    rows = centre.rows("leader-sms")
    assert len(rows) == 1 and "升级第 1 级" in rows[0][1]
    # One level only in the shipped config: after one more wait the chain is exhausted (visible in metrics).
    assert wait_until(lambda: any(s == "exhausted" for _, s, _, _ in centre.incidents()), 30), centre.incidents()
    time.sleep(WAIT_MINUTES * 60)
    assert len(centre.leader_sms()) == 1 and len(centre.rows("leader-sms")) == 1
    metrics = httpx.get(f"{centre.relay.base}/metrics", timeout=5).text
    assert 'shaobing_relay_escalations_total{level="1",route="sms"} 1' in metrics
    assert 'shaobing_relay_escalations_total{level="exhausted",route="sms"} 1' in metrics
    assert 'shaobing_relay_incidents{state="exhausted"} 1' in metrics


def test_a_resolved_alert_stops_the_chain_and_bad_links_are_refused(centre: Centre) -> None:
    alert = _alert("ResDown")
    centre.am.post_alerts([alert])
    link = centre.link("ResDown")
    centre.am.post_alerts([dict(alert, endsAt=dt.datetime.now(dt.timezone.utc).isoformat())])
    assert wait_until(lambda: all(s == "resolved" for _, s, _, _ in centre.incidents()), 30), centre.incidents()
    time.sleep(2 * WAIT_MINUTES * 60)
    assert centre.rows("leader-sms") == []
    assert "告警已恢复" in httpx.get(link, timeout=10).text
    forged = re.sub(r"\.[^.]+$", ".AAAAAAAAAAAAAAAAAAAAAA", link)
    assert httpx.get(forged, timeout=10).status_code == 404
    secret = (centre.tmp / "secrets" / "ack-secret").read_text().strip().encode()
    expired = f"{centre.relay.base}/ack/{oncall.make_token(secret, 1, time.time() - 1)}"
    assert "链接已过期" in httpx.get(expired, timeout=10).text
