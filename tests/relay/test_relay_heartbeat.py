"""The dead man's switch with a controlled clock: silence announces, recovery announces, a restart forgets
nothing and announces nothing twice, several sources are tracked apart. (With real Prometheus and
Alertmanager processes: test_relay_alertmanager.py.)"""

from __future__ import annotations

import json
from pathlib import Path

from relay.config import load_config
from relay.heartbeat import HeartbeatWatch, heartbeat_sources
from relay.store import Store
from tests.relay.relay_fakes import FakeProviders
from tests.relay.relay_testlib import config_text

T0 = 1_800_000_000.0
HEARTBEATS = """
heartbeats:
  route: heartbeat
  timeout_seconds: 600
  restart_grace_seconds: 120
  sources: [county-a, county-b]
  channels: [sms, ding]
"""


def _config(tmp: Path, fakes: FakeProviders, extra: str = HEARTBEATS) -> Path:
    path = tmp / "relay.yml"
    path.write_text(config_text(tmp, fakes, 10131) + extra)
    return path


def _announcements(store: Store) -> list[tuple[str, str, str]]:
    """(channel, status, source) of every queued message, in order."""
    out = []
    for row in store.list_rows(("pending",)):
        (body,) = store.alerts_for(row)
        out.append((row.channel, body["status"], body["labels"]["source"]))
    return out


def test_silence_then_recovery_announced_once_each_on_every_channel(tmp_path: Path, fakes: FakeProviders) -> None:
    config = load_config(_config(tmp_path, fakes))
    store = Store(config.store.path)
    watch = HeartbeatWatch(config, store)
    watch.start(T0)
    store.heartbeat(["county-a", "county-b"], T0 + 10)
    assert not watch.check(T0 + 600)
    store.heartbeat(["county-b"], T0 + 500)  # county-b keeps beating; county-a goes silent after T0+10
    assert watch.check(T0 + 611)
    assert _announcements(store) == [("sms", "firing", "county-a"), ("ding", "firing", "county-a")]
    assert not watch.check(T0 + 700)  # still down: said once
    (body,) = store.alerts_for(store.list_rows(("pending",))[0])
    assert body["annotations"]["summary"] == "监控链路中断：10 分钟未收到 Prometheus/Alertmanager 心跳"
    store.heartbeat(["county-a"], T0 + 900)
    assert watch.check(T0 + 901)
    assert _announcements(store)[2:] == [("sms", "resolved", "county-a"), ("ding", "resolved", "county-a")]
    (body,) = store.alerts_for(store.list_rows(("pending",))[2])
    assert body["annotations"]["summary"].startswith("监控链路恢复")


def test_an_expected_source_that_never_reports_alarms_too(tmp_path: Path, fakes: FakeProviders) -> None:
    config = load_config(_config(tmp_path, fakes))
    store = Store(config.store.path)
    watch = HeartbeatWatch(config, store)
    watch.start(T0)
    store.heartbeat(["county-a"], T0 + 550)
    assert watch.check(T0 + 601)
    assert {s for _, _, s in _announcements(store)} == {"county-b"}


def test_restart_keeps_state_and_waits_a_grace_before_judging(tmp_path: Path, fakes: FakeProviders) -> None:
    config = load_config(_config(tmp_path, fakes))
    store = Store(config.store.path)
    watch = HeartbeatWatch(config, store)
    watch.start(T0)
    store.heartbeat(["county-a", "county-b"], T0)
    assert watch.check(T0 + 601)  # both silent: announced
    assert len(_announcements(store)) == 4
    store.close()
    # The relay restarts: the outage is remembered, not announced again.
    store = Store(config.store.path)
    watch = HeartbeatWatch(config, store)
    watch.start(T0 + 700)
    assert not watch.check(T0 + 1000)
    assert len(_announcements(store)) == 4
    store.heartbeat(["county-a"], T0 + 1001)
    assert watch.check(T0 + 1002)
    assert _announcements(store)[4:] == [("sms", "resolved", "county-a"), ("ding", "resolved", "county-a")]
    # Restart while healthy, with a heartbeat last seen long before: the grace lets the Alertmanagers resend.
    store.heartbeat(["county-b"], T0 + 1003)
    watch.check(T0 + 1004)
    store.close()
    store = Store(config.store.path)
    watch = HeartbeatWatch(config, store)
    watch.start(T0 + 5000)
    assert not watch.check(T0 + 5000 + 119)
    store.heartbeat(["county-a", "county-b"], T0 + 5000 + 60)
    assert not watch.check(T0 + 5000 + 121)


def test_heartbeat_route_records_sources_and_metrics(tmp_path: Path, fakes: FakeProviders) -> None:
    from tests.relay.test_relay_ingest import AUTH_JSON, Relay

    relay = Relay(load_config(_config(tmp_path, fakes)))
    try:
        watchdog = {
            "status": "firing",
            "labels": {"alertname": "ShaobingWatchdog", "severity": "info", "prometheus": "county-a"},
            "annotations": {},
            "startsAt": "2027-01-15T08:00:00Z",
        }
        body = {"version": "4", "groupKey": "{}/x:{}", "receiver": "relay-heartbeat", "alerts": [watchdog]}
        answer = relay.client.post("/alertmanager/heartbeat", content=json.dumps(body), headers=AUTH_JSON)
        assert answer.status_code == 200 and answer.json()["sources"] == ["county-a"]
        assert relay.store.alert_count() == 0  # a heartbeat is not an alert to deliver
        text = relay.client.get("/metrics").text
        assert 'shaobing_relay_heartbeat_missing{source="county-a"} 0' in text
        assert 'shaobing_relay_heartbeat_last_timestamp_seconds{source="county-a"}' in text
        no_auth = relay.client.post("/alertmanager/heartbeat", content=json.dumps(body))
        assert no_auth.status_code == 401
    finally:
        relay.client.close()
        relay.store.close()


def test_heartbeat_sources_are_bounded_and_default() -> None:
    alerts = [{"status": "firing", "labels": {"prometheus": f"p{i}"}} for i in range(500)]
    assert len(heartbeat_sources(alerts, "prometheus")) == 64
    assert heartbeat_sources([{"status": "firing", "labels": {}}], "prometheus") == {"default"}
    assert heartbeat_sources([{"status": "resolved", "labels": {"prometheus": "x"}}], "prometheus") == set()


def test_heartbeat_config_errors(tmp_path: Path, fakes: FakeProviders) -> None:
    import pytest

    from relay.config import ConfigError

    with pytest.raises(ConfigError, match="heartbeats.route: 'ops' is already an alert route"):
        load_config(_config(tmp_path, fakes, HEARTBEATS.replace("route: heartbeat", "route: ops")))
    with pytest.raises(ConfigError, match=r"relay.yml:\d+: heartbeats.channels\[1\]: unknown channel 'nosuch'"):
        load_config(_config(tmp_path, fakes, HEARTBEATS.replace("channels: [sms, ding]", "channels: [sms, nosuch]")))


def test_metrics_endpoint_lists_every_tracked_source(tmp_path: Path, fakes: FakeProviders) -> None:
    config = load_config(_config(tmp_path, fakes))
    store = Store(config.store.path)
    HeartbeatWatch(config, store).start(T0)
    assert [b.source for b in store.heartbeats()] == ["county-a", "county-b"]
    assert all(not b.received for b in store.heartbeats())
