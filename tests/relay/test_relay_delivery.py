"""The delivery worker in-process against the loopback fakes: fallback, dead letters, reconciliation,
quiet hours, budgets and backoff."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from relay.config import build_renderer, load_config
from relay.config.model import Config
from relay.delivery import Deliverer, backoff_delay
from relay.ingest import build_webhook, parse_payload, plan_channel
from relay.metrics import Metrics
from relay.ratelimit import WindowLimiter
from relay.redact import mask_phone
from relay.store import Store
from tests.relay.relay_fakes import FakeProviders
from tests.relay.relay_testlib import alert, config_text, payload, write_secrets


class Harness:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store(config.store.path)
        self.metrics = Metrics(config.channels, config.routes)

    def ingest(
        self, alerts: list[dict[str, object]], route: str = "ops", now: float | None = None, **kw: str
    ) -> tuple[int, int]:
        import json

        now = time.time() if now is None else now
        parsed = parse_payload(json.dumps(payload(alerts, **kw)).encode())
        return self.store.ingest(build_webhook(self.config, route, parsed, now), now)

    def run_until(self, done: Callable[[], bool], timeout: float = 15.0) -> bool:
        async def go() -> bool:
            async with httpx.AsyncClient(timeout=1.0) as client:
                deliverer = Deliverer(self.config, self.store, build_renderer(self.config), self.metrics, client)
                await deliverer.start()
                try:
                    deadline = time.time() + timeout
                    while time.time() < deadline:
                        if await asyncio.to_thread(done):
                            return True
                        await asyncio.sleep(0.05)
                    return bool(done())
                finally:
                    await deliverer.stop()

        return asyncio.run(go())

    def states(self, channel: str) -> list[str]:
        return sorted(
            r.state
            for r in self.store.list_rows(("pending", "sending", "unknown", "review", "dead", "delivered", "folded"))
            if r.channel == channel
        )


def harness(
    tmp: Path,
    fakes: FakeProviders,
    extra_channels: str = "",
    routes: str = "",
    ding_extra: str = "",
    delivery_extra: str = "",
    sms_extra: str = "",
    top: str = "",
) -> Harness:
    """The test config with extra lines spliced in: channels, the DingTalk and SMS channel's own keys, delivery
    settings, and top-level sections (``top``)."""
    s = write_secrets(tmp)
    base = config_text(tmp, fakes, 10131)
    channels = base[base.index("channels:") + len("channels:") : base.index("routes:")]
    channels = channels.replace(
        "    secret: {secret_file: " + str(s) + "/ding_secret}\n",
        "    secret: {secret_file: " + str(s) + "/ding_secret}\n" + ding_extra,
    )
    channels = channels.replace("    recipients: [zhang]\n", "    recipients: [zhang]\n" + sms_extra, 1)
    channels += extra_channels
    delivery = base[base.index("delivery:") + len("delivery:") : base.index("people:")] + delivery_extra
    path = tmp / "relay.yml"
    path.write_text(config_text(tmp, fakes, 10131, channels=channels, routes=routes, delivery=delivery) + top)
    return Harness(load_config(path))


def test_permanent_failure_goes_to_fallback_channel(tmp_path: Path, fakes: FakeProviders) -> None:
    s = write_secrets(tmp_path)
    wecom = f"""
  wecom:
    type: wecom
    base_url: {fakes.url("/wecom/send")}
    key: {{secret_file: {s}/wecom_key}}
"""
    h = harness(tmp_path, fakes, wecom, "\n  ops:\n    channels: [ding]\n", ding_extra="    fallback: wecom\n")
    fakes.plan("dingtalk", "error:310000")  # keyword check failed: permanent
    h.ingest([alert(1, severity="warning")])
    assert h.run_until(lambda: h.states("wecom") == ["delivered"])
    assert h.states("ding") == ["dead"]
    assert "测试告警 1" in fakes.got("wecom")[0].body["markdown"]["content"]
    assert h.metrics.value("shaobing_relay_deliveries_total", channel="ding", outcome="permanent_failure") == 1
    stats = h.store.stats()
    assert stats["ding"].dead == 1 and "wecom" not in stats  # nothing left in flight there


def test_retries_run_out_into_a_dead_letter(tmp_path: Path, fakes: FakeProviders) -> None:
    h = harness(tmp_path, fakes, routes="\n  ops:\n    channels: [ding]\n", delivery_extra="  max_attempts: 3\n")
    fakes.default["dingtalk"] = "http:503"
    h.ingest([alert(1)])
    assert h.run_until(lambda: h.states("ding") == ["dead"])
    assert h.metrics.value("shaobing_relay_deliveries_total", channel="ding", outcome="retry") == 2
    assert h.metrics.value("shaobing_relay_deliveries_total", channel="ding", outcome="dead_letter") == 1
    assert 'shaobing_relay_dead_letters{channel="ding"} 1' in h.metrics.render(h.store.stats())


def test_timed_out_sms_is_reconciled_not_resent(tmp_path: Path, fakes: FakeProviders) -> None:
    h = harness(tmp_path, fakes, routes="\n  ops:\n    channels: [sms]\n")
    fakes.plan("aliyun", "hang:1.5")  # client timeout is 1 s: Aliyun accepted it, we never heard back
    h.ingest([alert(1)])
    assert h.run_until(lambda: h.states("sms") == ["delivered"])
    assert len(fakes.got("aliyun")) == 1
    assert h.metrics.value("shaobing_relay_deliveries_total", channel="sms", outcome="unknown") == 1
    assert h.metrics.value("shaobing_relay_reconciliations_total", channel="sms", result="delivered") == 1


def test_sms_that_never_arrived_is_sent_again_after_grace(tmp_path: Path, fakes: FakeProviders) -> None:
    h = harness(
        tmp_path,
        fakes,
        routes="\n  ops:\n    channels: [sms]\n",
        sms_extra="    rate_limits: [{window_seconds: 1, max: 50}]\n",
    )
    fakes.plan("aliyun", "http:502")  # unclear answer, and Aliyun has no record of our OutId
    h.ingest([alert(1)])
    assert h.run_until(lambda: h.states("sms") == ["delivered"])
    sends = fakes.got("aliyun")
    rejected = fakes.got("aliyun:rejected")
    assert len(sends) == 1 and len(rejected) == 1 and sends[0].body["OutId"] == rejected[0].body["OutId"]
    assert h.metrics.value("shaobing_relay_reconciliations_total", channel="sms", result="absent") >= 1


def test_gateway_without_status_query_goes_to_operator_review(tmp_path: Path, fakes: FakeProviders) -> None:
    gateway = """
  gw:
    type: sms_gateway
    url: URL
    body_template: '{"to": "{{ phone }}", "text": {{ text | tojson }}}'
    recipients: [li]
""".replace("URL", fakes.url("/gateway/send"))
    h = harness(tmp_path, fakes, gateway, "\n  ops:\n    channels: [gw]\n")
    fakes.plan("gateway", "hang:1.5")
    h.ingest([alert(1)])
    assert h.run_until(lambda: h.states("gw") == ["review"])
    assert len(fakes.got("gateway")) == 1
    assert 'shaobing_relay_review_required{channel="gw"} 1' in h.metrics.render(h.store.stats())


def test_provider_rate_limit_answer_blocks_the_destination(tmp_path: Path, fakes: FakeProviders) -> None:
    h = harness(tmp_path, fakes, routes="\n  ops:\n    channels: [ding]\n")
    fakes.plan("dingtalk", "error:130101")
    h.ingest([alert(1)])
    assert not h.run_until(lambda: h.states("ding") == ["delivered"], timeout=1.0)
    assert h.metrics.value("shaobing_relay_deliveries_total", channel="ding", outcome="rate_limited") == 1
    row = h.store.list_rows(("pending",))[0]
    assert row.next_at > time.time() + 500  # DingTalk blocks a robot for 10 minutes
    assert len(fakes.got("dingtalk")) == 1


def test_quiet_hours_defer_non_critical_and_let_critical_through(tmp_path: Path, fakes: FakeProviders) -> None:
    h = harness(tmp_path, fakes, ding_extra='    quiet_hours: {start: "22:00", end: "07:00"}\n')
    channel = h.config.channels["ding"]
    zone = ZoneInfo("Asia/Shanghai")
    night = dt.datetime(2026, 11, 27, 23, 30, tzinfo=zone).timestamp()
    warning = plan_channel(channel, alert(1, severity="warning"), night, zone)
    assert warning[0].next_at == dt.datetime(2026, 11, 28, 7, 0, tzinfo=zone).timestamp()
    assert plan_channel(channel, alert(1, severity="critical"), night, zone)[0].next_at == night
    day = dt.datetime(2026, 11, 27, 12, 0, tzinfo=zone).timestamp()
    assert plan_channel(channel, alert(1, severity="warning"), day, zone)[0].next_at == day
    sms = h.config.channels["sms"]
    assert plan_channel(sms, alert(1, severity="warning"), day, zone) == []
    assert plan_channel(sms, alert(1, status="resolved"), day, zone) == []


def test_window_limiter() -> None:
    limiter = WindowLimiter()
    limiter.configure("d", [(1.0, 5), (60.0, 100)])
    for i in range(5):
        assert limiter.available("d", 100.0) == 5 - i
        limiter.record("d", 100.0)
    assert limiter.available("d", 100.5) == 0
    assert limiter.next_free("d", 100.5) == pytest.approx(101.1)  # 10 % margin for jitter
    assert limiter.available("d", 101.0) == 0
    assert limiter.available("d", 101.1) == 5
    limiter.block("d", 200.0)
    assert limiter.available("d", 150.0) == 0 and limiter.next_free("d", 150.0) == 200.0


def test_backoff_grows_caps_and_jitters() -> None:
    assert backoff_delay(1, 5, 600, 0.0, 0.5) == 5
    assert backoff_delay(4, 5, 600, 0.0, 0.5) == 40
    assert backoff_delay(30, 5, 600, 0.0, 0.5) == 600
    assert backoff_delay(2, 5, 600, 0.2, 0.0) == pytest.approx(8.0)
    assert backoff_delay(2, 5, 600, 0.2, 1.0) == pytest.approx(12.0)


def test_phone_masking() -> None:
    assert mask_phone("13800001234") == "138****1234"
    assert mask_phone("+8613800001234") == "+86138****1234"
    assert mask_phone("12345") == "*****"


def test_review_command_lists_and_resolves(
    tmp_path: Path, fakes: FakeProviders, capsys: pytest.CaptureFixture[str]
) -> None:
    from relay.cli import main

    gateway = """
  gw:
    type: sms_gateway
    url: URL
    body_template: '{"to": "{{ phone }}", "text": {{ text | tojson }}}'
    recipients: [li]
""".replace("URL", fakes.url("/gateway/send"))
    h = harness(tmp_path, fakes, gateway, "\n  ops:\n    channels: [gw]\n")
    fakes.plan("gateway", "hang:1.5")
    h.ingest([alert(1)])
    assert h.run_until(lambda: h.states("gw") == ["review"])
    config = str(h.config.path)
    assert main(["review", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "review" in out and "139****5678" in out and "13900005678" not in out
    row_id = h.store.list_rows(("review",))[0].id
    assert main(["review", "--config", config, "--done", str(row_id)]) == 0
    assert h.states("gw") == ["delivered"]
