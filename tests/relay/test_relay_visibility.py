"""Nothing stuck out of sight: review goes to the fallback, quiet hours are not backlog, refused SMS cost no
budget, a rate-limit answer stops the batch, digests list every alert they fold up to the real size limit."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.relay.relay_fakes import FakeProviders
from tests.relay.relay_testlib import alert, write_secrets
from tests.relay.test_relay_delivery import harness

GATEWAY = """
  gw:
    type: sms_gateway
    url: URL
    body_template: '{"to": "{{ phone }}", "text": {{ text | tojson }}}'
    recipients: [li]
    fallback: ding
"""


def test_unknown_sms_outcome_goes_to_review_and_to_the_fallback_with_a_clear_text(
    tmp_path: Path, fakes: FakeProviders
) -> None:
    h = harness(tmp_path, fakes, GATEWAY.replace("URL", fakes.url("/gateway/send")), "\n  ops:\n    channels: [gw]\n")
    fakes.plan("gateway", "hang:1.5")  # sent, answer lost; the gateway has no status query -> operator review
    h.ingest([alert(1, township="城关镇")])
    assert h.run_until(lambda: h.states("gw") == ["review"] and h.states("ding") == ["delivered"])
    text = fakes.got("dingtalk")[0].body["markdown"]["text"]
    assert "短信结果未知，请人工核实" in text and "李四" in text and "测试告警 1" in text
    assert "13900005678" not in text  # the person's name, never the number
    assert 'shaobing_relay_review_required{channel="gw"} 1' in h.metrics.render(h.store.stats())


def test_quiet_hours_are_their_own_state_not_backlog(tmp_path: Path, fakes: FakeProviders) -> None:
    now = time.time()
    local = dt.datetime.fromtimestamp(now, ZoneInfo("Asia/Shanghai"))
    start = (local - dt.timedelta(hours=1)).strftime("%H:%M")
    end = (local + dt.timedelta(hours=2)).strftime("%H:%M")
    h = harness(tmp_path, fakes, ding_extra=f'    quiet_hours: {{start: "{start}", end: "{end}"}}\n')
    h.ingest([alert(1, severity="warning")], now=now - 3600)  # queued an hour ago, inside quiet hours
    stats = h.store.stats()["ding"]
    assert stats.deferred == 1 and stats.queue_depth == 0 and stats.oldest_ready_at is None
    text = h.metrics.render(h.store.stats(), now)
    assert 'shaobing_relay_deferred_messages{channel="ding"} 1' in text
    assert 'shaobing_relay_oldest_pending_age_seconds{channel="ding"} 0' in text  # no backlog alert
    assert not h.run_until(lambda: bool(fakes.got("dingtalk")), timeout=0.5)
    # When quiet hours end the message joins the queue, and its age counts from then, not from an hour ago.
    (row,) = h.store.list_rows(("quiet",))
    assert h.store.release_quiet(row.next_at - 1) == 0
    assert h.store.release_quiet(row.next_at) == 1
    stats = h.store.stats()["ding"]
    assert stats.deferred == 0 and stats.queue_depth == 1 and stats.oldest_ready_at == row.next_at


def test_refused_sms_do_not_use_up_the_per_person_budget(tmp_path: Path, fakes: FakeProviders) -> None:
    h = harness(tmp_path, fakes, routes="\n  ops:\n    channels: [sms]\n")  # shipped default: 1 SMS a minute
    fakes.plan("aliyun", "error:isv.TEMPLATE_MISSING_PARAMETERS")  # permanent: nobody's phone got it
    h.ingest([alert(1)])
    assert h.run_until(lambda: h.states("sms") == ["dead"])
    h.ingest([alert(2)])
    # Within the same minute: the refused send did not count, so this one goes out at once.
    assert h.run_until(lambda: h.states("sms") == ["dead", "delivered"], timeout=5)
    assert len(fakes.got("aliyun")) == 2
    assert [dest for dest, _ in h.store.recent_sends(0)] == ["sms/zhang"]


def test_a_rate_limit_answer_stops_the_batch_at_once(tmp_path: Path, fakes: FakeProviders) -> None:
    h = harness(tmp_path, fakes, routes="\n  ops:\n    channels: [ding]\n")
    for i in range(5):
        h.ingest([alert(i)], group=f"g{i}")
    fakes.plan("dingtalk", "error:130101")  # the first request is answered "too fast"
    h.run_until(lambda: False, timeout=1.0)
    assert len(fakes.got("dingtalk")) == 1  # not five refused requests (each would extend DingTalk's block)
    assert h.states("ding") == ["pending"] * 5


def test_digest_lists_every_alert_by_township_and_says_what_it_left_out(tmp_path: Path, fakes: FakeProviders) -> None:
    s = write_secrets(tmp_path)
    wecom = f"""
  wecom:
    type: wecom
    base_url: {fakes.url("/wecom/send")}
    key: {{secret_file: {s}/wecom_key}}
    rate_limits: [{{window_seconds: 60, max: 1}}]
"""
    h = harness(
        tmp_path,
        fakes,
        wecom,
        "\n  ops:\n    channels: [wecom]\n",
        top="links:\n  alertmanager: http://127.0.0.1:9093/\n",
        delivery_extra="  digest_max_items: 200\n",
    )
    townships = ["城关镇", "河口乡", "石桥镇"]
    h.ingest([alert(0, township="城关镇")], group="first")
    assert h.run_until(lambda: len(fakes.got("wecom")) == 1, timeout=5)  # uses the budget of the minute
    for i in range(1, 121):
        h.ingest([alert(i, township=townships[i % 3], alertname=f"磁盘将满{i % 4}")], group=f"g{i}")
    # Free the budget now rather than waiting a minute; the backlog is folded into one digest.
    h.store._conn.execute("DELETE FROM sends")
    assert h.run_until(lambda: len(fakes.got("wecom")) >= 2, timeout=10)
    text = fakes.got("wecom")[1].body["markdown"]["content"]
    assert len(text.encode()) <= 4096  # WeCom's documented markdown limit
    listed = sum(text.count(f"10.0.0.{i % 250}:9100 ·") for i in range(1, 121))
    omitted = int(text.split("另有 ")[1].split(" 条")[0])
    assert listed + omitted == 120 and listed >= 20
    assert "http://127.0.0.1:9093/#/alerts" in text
    for township in townships:
        assert f"**{township} · " in text
    assert "共 120 条" in text
