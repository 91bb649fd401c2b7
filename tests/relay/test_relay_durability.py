"""The relay as a real process: kill -9 mid-delivery, provider outage, and a 1,000-alert burst."""

from __future__ import annotations

import concurrent.futures
import json
import sqlite3
from pathlib import Path

from tests.relay.relay_fakes import FakeProviders
from tests.relay.relay_testlib import RelayProcess, alert, config_text, payload, wait_until, write_secrets
from tests.support.prometheus import free_port

SMS_FAST = "    rate_limits: [{window_seconds: 1, max: 50}]\n"


def _states(db: Path) -> dict[tuple[str, str], int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT channel, state, COUNT(*) FROM messages WHERE kind='single' GROUP BY 1, 2")
        return {(c, s): n for c, s, n in rows}


def _undelivered(db: Path) -> int:
    return sum(n for (_, state), n in _states(db).items() if state != "delivered")


def _start(tmp: Path, fakes: FakeProviders, relays: list[RelayProcess], **kw: str) -> RelayProcess:
    port = free_port()
    path = tmp / "relay.yml"
    path.write_text(config_text(tmp, fakes, port, **kw))
    relay = RelayProcess(path, port, tmp / "relay.log")
    relays.append(relay)
    relay.start()
    return relay


def test_kill9_mid_delivery_loses_nothing_and_never_resends_a_confirmed_sms(
    tmp_path: Path, fakes: FakeProviders, relays: list[RelayProcess]
) -> None:
    fakes.default.update(dingtalk="slow:0.2", aliyun="hang:0.8")  # SMS: accepted at once, answered late
    base = config_text(tmp_path, fakes, 0)
    channels = base[base.index("channels:") + len("channels:") : base.index("routes:")] + SMS_FAST
    relay = _start(tmp_path, fakes, relays, channels=channels)
    for i in range(10):
        assert relay.post(payload([alert(i)], group=f"g{i}")).status_code == 200
    # Kill while the third SMS is at the provider: Aliyun has it, the relay has not seen the answer.
    assert wait_until(lambda: len(fakes.got("aliyun")) >= 3, 30)
    relay.kill9()
    fakes.default.update(dingtalk="ok", aliyun="ok")
    db = tmp_path / "relay.db"
    assert _undelivered(db) > 0, "the kill came too late to test anything"

    relay.start()
    assert wait_until(lambda: _undelivered(db) == 0, 60), _states(db)
    out_ids = [r.body["OutId"] for r in fakes.got("aliyun")]
    assert len(out_ids) == len(set(out_ids)), "an SMS was sent twice"
    assert relay.metric("shaobing_relay_reconciliations_total", channel="sms", result="delivered") >= 1
    texts = " ".join(r.body["markdown"]["text"] for r in fakes.got("dingtalk"))
    assert all(f"测试告警 {i}" in texts for i in range(10))
    assert relay.metric("shaobing_relay_queue_depth", channel="ding") == 0
    log = (tmp_path / "relay.log").read_text()
    assert "13800001234" not in log and "138****1234" in log  # phone numbers masked
    assert "aliyun-test-secret" not in log and "ding-access-token" not in log


def test_provider_down_then_up_is_delivered_after_recovery(
    tmp_path: Path, fakes: FakeProviders, relays: list[RelayProcess]
) -> None:
    down_port = free_port()
    base = config_text(tmp_path, fakes, 0)
    channels = base[base.index("channels:") + len("channels:") : base.index("routes:")]
    channels = channels.replace(f"127.0.0.1:{fakes.port}/dingtalk", f"127.0.0.1:{down_port}/dingtalk") + SMS_FAST
    delivery = base[base.index("delivery:") + len("delivery:") : base.index("people:")] + "  max_attempts: 1000\n"
    relay = _start(tmp_path, fakes, relays, channels=channels, delivery=delivery)
    for i in range(3):
        assert relay.post(payload([alert(i, severity="warning")], group=f"g{i}")).status_code == 200
    assert wait_until(lambda: relay.metric("shaobing_relay_deliveries_total", channel="ding", outcome="retry") >= 3, 20)
    assert relay.metric("shaobing_relay_queue_depth", channel="ding") == 3
    assert relay.metric("shaobing_relay_oldest_pending_age_seconds", channel="ding") > 0
    with FakeProviders(port=down_port) as recovered:
        assert wait_until(lambda: relay.metric("shaobing_relay_queue_depth", channel="ding") == 0, 20)
        texts = " ".join(r.body["markdown"]["text"] for r in recovered.got("dingtalk"))
        assert all(f"测试告警 {i}" in texts for i in range(3))
        assert all(r.signature_ok for r in recovered.got("dingtalk"))
    assert relay.metric("shaobing_relay_dead_letters", channel="ding") == 0


def test_burst_of_1000_alerts_respects_limits_and_forms_digests(
    tmp_path: Path, fakes: FakeProviders, relays: list[RelayProcess]
) -> None:
    s = write_secrets(tmp_path)
    base = config_text(tmp_path, fakes, 0)
    channels = (
        base[base.index("channels:") + len("channels:") : base.index("routes:")]
        + f"""
  feishu:
    type: feishu
    base_url: {fakes.url("/feishu/hook/")}
    hook_token: {{secret_file: {s}/feishu_token}}
    secret: {{secret_file: {s}/feishu_secret}}
"""
    )
    delivery = base[base.index("delivery:") + len("delivery:") : base.index("people:")] + "  digest_max_items: 100\n"
    routes = "\n  ops:\n    channels: [ding, sms, feishu]\n"
    relay = _start(tmp_path, fakes, relays, channels=channels, delivery=delivery, routes=routes)

    def post(batch: int) -> int:
        alerts = [alert(batch * 50 + i) for i in range(50)]
        response = relay.post(payload(alerts, group=f"burst-{batch}"))
        assert response.status_code == 200, response.text
        return int(response.json()["accepted"])

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        assert sum(pool.map(post, range(20))) == 1000
    db = tmp_path / "relay.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 1000

    def channel_done(name: str) -> bool:
        return all(state == "delivered" for (c, state) in _states(db) if c == name)

    assert wait_until(lambda: channel_done("ding") and channel_done("feishu"), 60), _states(db)
    ding = sorted(r.at for r in fakes.got("dingtalk"))
    assert 1 <= len(ding) <= 20  # 20 per minute per robot, and the test runs well under a minute
    with sqlite3.connect(db) as conn:  # the relay's own send log, which its budget is kept against
        feishu = [at for (at,) in conn.execute("SELECT at FROM sends WHERE dest='feishu' ORDER BY at")]
    assert len(feishu) == len(fakes.got("feishu")) >= 1
    assert all(sum(1 for t in feishu if start <= t < start + 1.0) <= 5 for start in feishu)  # 5 per second
    # As the fake saw them: a loaded 2-core machine can delay a request by a few hundred milliseconds, so the
    # window allows 0.5 s of jitter; the send log above is the exact check.
    arrivals = sorted(r.at for r in fakes.got("feishu"))
    assert all(sum(1 for t in arrivals if start <= t < start + 0.5) <= 5 for start in arrivals)
    assert relay.metric("shaobing_relay_digests_total", channel="ding") >= 1
    assert any("告警汇总" in r.body["markdown"]["text"] for r in fakes.got("dingtalk"))
    # SMS: 1 per person per minute by default; the backlog waits as one digest.
    sms = fakes.got("aliyun")
    assert len(sms) == 1 and "共" in json.loads(sms[0].body["TemplateParam"])["alert"]
    assert relay.metric("shaobing_relay_queue_depth", channel="sms") > 0
