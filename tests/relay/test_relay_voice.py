"""Voice calls for critical alerts (Aliyun voice notification, SingleCallByTts), against a loopback fake that
checks the RPC signature and the TTS parameters, and answers QueryCallDetailByCallId like the real API (Data
as a JSON string). A placed call is delivered only once answered; an unanswered one fails over to chat; a
call request that timed out is reviewed, never redialled."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import httpx
import pytest

from relay.config import load_config
from relay.providers import Outbound, Outcome, Reconcile, build_provider
from relay.templates import Renderer
from tests.relay.relay_fakes import FakeProviders
from tests.relay.relay_testlib import RelayProcess, alert, config_text, payload, wait_until
from tests.support.prometheus import free_port


def _config(tmp: Path, fakes: FakeProviders, extra: str = "", delivery: str = "") -> Path:
    s = tmp / "secrets"
    channels = f"""
  ding:
    type: dingtalk
    base_url: {fakes.url("/dingtalk/robot/send")}
    access_token: {{secret_file: {s}/ding_token}}
    secret: {{secret_file: {s}/ding_secret}}
  call:
    type: aliyun_voice
    base_url: {fakes.url("/aliyunvoice/")}
    access_key_id: {{secret_file: {s}/aliyun_id}}
    access_key_secret: {{secret_file: {s}/aliyun_secret}}
    tts_code: TTS_000000001
    called_show_number: "057100000000"
    recipients: [zhang]
    fallback: ding{extra}
"""
    text = config_text(
        tmp, fakes, free_port(), channels=channels, routes="\n  ops:\n    channels: [call]\n", delivery=delivery
    )
    path = tmp / "relay.yml"
    path.write_text(text, encoding="utf-8")
    return path


def _call(path: Path, timeout: float | None = None) -> tuple[Outcome, str, Reconcile, str]:
    config = load_config(path)
    channel = config.channels["call"]
    renderer = Renderer({})
    ctx = renderer.context([alert(1, township="城关镇")], "call", "ops")
    params = [(name, renderer.render_inline(expr, ctx)) for name, expr in channel.template_params]

    async def run() -> tuple[Outcome, str, Reconcile, str]:
        async with httpx.AsyncClient(timeout=timeout or 5) as client:
            provider = build_provider(channel, client, renderer)
            msg = Outbound(delivery_id="d-1", title="t", markdown="", text="", params=params, phone="13800001234")
            sent = await provider.send(msg)
            msg.ref = sent.ref
            checked = await provider.reconcile(msg)
            return sent.outcome, sent.ref, checked.status, checked.detail

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("state", "status", "says"),
    [
        ("200000", Reconcile.DELIVERED, "answered"),
        ("200001", Reconcile.DELIVERED, "answered"),
        ("200003", Reconcile.FAILED, "not answered"),
        ("200002", Reconcile.FAILED, "busy"),
        ("200010", Reconcile.FAILED, "switched off"),
        ("200101", Reconcile.PENDING, "in progress"),
    ],
)
def test_a_call_is_delivered_only_when_answered(
    tmp_path: Path, fakes: FakeProviders, state: str, status: Reconcile, says: str
) -> None:
    fakes.call_states.append(state)
    outcome, ref, checked, detail = _call(_config(tmp_path, fakes))
    assert outcome is Outcome.UNKNOWN and ref  # placed: the outcome comes from the query
    assert checked is status and says in detail
    (placed,) = fakes.got("aliyunvoice")
    assert placed.signature_ok
    body = placed.body
    assert (body["Action"], body["CalledNumber"], body["TtsCode"], body["OutId"]) == (
        "SingleCallByTts",
        "13800001234",
        "TTS_000000001",
        "d-1",
    )
    assert body["CalledShowNumber"] == "057100000000" and body["PlayTimes"] == "2"
    tts = json.loads(body["TtsParam"])
    assert set(tts) == {"place", "alert"} and "城关镇" in tts["place"] and "测试告警" in tts["alert"]
    assert not any("http" in v for v in tts.values())  # a voice never reads out a URL
    (query,) = fakes.got("aliyunvoice:query")
    assert query.signature_ok and query.body["CallId"] == ref and query.body["ProdId"] == "11010000138001"


def test_a_timed_out_call_request_is_not_redialled(tmp_path: Path, fakes: FakeProviders) -> None:
    fakes.plan("aliyunvoice", "hang:3")
    outcome, ref, checked, detail = _call(_config(tmp_path, fakes), timeout=1)
    assert outcome is Outcome.UNKNOWN and ref == ""
    assert checked is Reconcile.UNSUPPORTED and "not redialled" in detail
    assert len(fakes.got("aliyunvoice")) == 1


@pytest.mark.integration
def test_the_relay_calls_reconciles_and_fails_over_when_nobody_answers(
    tmp_path: Path, fakes: FakeProviders, relays: list[RelayProcess]
) -> None:
    fast = """
  backoff_initial_seconds: 0.2
  backoff_max_seconds: 1
  request_timeout_seconds: 2
  reconcile_delay_seconds: 0.5
  reconcile_grace_seconds: 1
  reconcile_give_up_seconds: 30
  poll_interval_seconds: 0.1
"""
    path = _config(tmp_path, fakes, "\n    rate_limits: [{window_seconds: 1, max: 10}]", delivery=fast)
    relay = RelayProcess(path, load_config(path).server.port, tmp_path / "relay.log")
    relays.append(relay)
    relay.start()
    fakes.call_states.extend(["200000", "200003"])
    assert relay.post(payload([alert(1, township="城关镇")])).status_code == 200
    assert relay.post(payload([alert(2, township="城关镇")], group='{}:{alertname="y"}')).status_code == 200

    def states() -> list[tuple[str, str]]:
        with sqlite3.connect(tmp_path / "relay.db") as conn:
            return conn.execute("SELECT channel, state FROM messages ORDER BY id").fetchall()

    # The answered call is delivered; the unanswered one is dead, and the chat channel says so.
    assert wait_until(
        lambda: sorted(states()) == [("call", "dead"), ("call", "delivered"), ("ding", "delivered")], 30
    ), states()
    (chat,) = fakes.got("dingtalk")
    assert (
        "电话未接通（call，张三：provider reports failure: call 200003: not answered）" in chat.body["markdown"]["text"]
    )
    assert len(fakes.got("aliyunvoice")) == 2  # one call each: nothing redialled
    assert relay.metric("shaobing_relay_reconciliations_total", channel="call", result="failed") == 1
