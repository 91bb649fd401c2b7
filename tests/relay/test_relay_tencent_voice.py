"""Tencent Cloud voice message (SendTtsVoice, TC3 signed for service vms) through the relay process: the loopback
fake checks the signature and parameters; the call's outcome arrives as Tencent's documented callback
(voiceprompt_callback, posted here as Tencent would) — answered is delivered, not answered fails over to chat;
a forged callback path is refused; a timed-out call request is never redialled."""

from __future__ import annotations

import asyncio
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

TOKEN = "tencent-callback-path-token-0123"
FAST = """
  backoff_initial_seconds: 0.2
  backoff_max_seconds: 1
  request_timeout_seconds: 1
  reconcile_delay_seconds: 0.3
  reconcile_grace_seconds: 1
  reconcile_give_up_seconds: 30
  poll_interval_seconds: 0.1
"""


def _config(tmp: Path, fakes: FakeProviders) -> Path:
    s = tmp / "secrets"
    (tmp / "cb-token").write_text(TOKEN + "\n")
    channels = f"""
  ding:
    type: dingtalk
    base_url: {fakes.url("/dingtalk/robot/send")}
    access_token: {{secret_file: {s}/ding_token}}
    secret: {{secret_file: {s}/ding_secret}}
  call:
    type: tencent_voice
    base_url: {fakes.url("/tencentvoice/")}
    secret_id: {{secret_file: {s}/tencent_id}}
    secret_key: {{secret_file: {s}/tencent_key}}
    voice_sdk_app_id: "1400000000"
    template_id: "1234567"
    callback_token: {{secret_file: {tmp / "cb-token"}}}
    recipients: [zhang]
    rate_limits: [{{window_seconds: 1, max: 10}}]
    fallback: ding
"""
    text = config_text(
        tmp, fakes, free_port(), channels=channels, routes="\n  ops:\n    channels: [call]\n", delivery=FAST
    )
    path = tmp / "relay.yml"
    path.write_text(text, encoding="utf-8")
    return path


def _callback(relay: RelayProcess, call_id: str, result: str, token: str = TOKEN) -> httpx.Response:
    event = {
        "voiceprompt_callback": {
            "result": result,
            "accept_time": "1470197211",
            "call_from": "",
            "callid": call_id,
            "end_calltime": "1470197221",
            "fee": "1",
            "mobile": "13800001234",
            "nationcode": "86",
            "start_calltime": "1470197196",
        }
    }
    return httpx.post(f"{relay.base}/callbacks/tencent-voice/{token}", json=event, timeout=5)


@pytest.mark.integration
def test_calls_are_settled_by_tencents_callback(
    tmp_path: Path, fakes: FakeProviders, relays: list[RelayProcess]
) -> None:
    path = _config(tmp_path, fakes)
    relay = RelayProcess(path, load_config(path).server.port, tmp_path / "relay.log")
    relays.append(relay)
    relay.start()
    assert relay.post(payload([alert(1, township="城关镇")])).status_code == 200
    assert wait_until(lambda: len(fakes.got("tencentvoice")) == 1, 20), relay.log.read_text()[-2000:]
    (placed,) = fakes.got("tencentvoice")
    assert placed.signature_ok and placed.body["CalledNumber"] == "+8613800001234"
    assert [len(v) > 0 for v in placed.body["TemplateParamSet"]] == [True, True]  # place, alert
    assert placed.headers["x-tc-action"] == "SendTtsVoice"

    def states() -> list[tuple[str, str]]:
        with sqlite3.connect(tmp_path / "relay.db") as conn:
            return conn.execute("SELECT channel, state FROM messages ORDER BY id").fetchall()

    assert wait_until(lambda: states() == [("call", "unknown")], 10), states()  # placed, not yet answered
    assert _callback(relay, "tc-call-1", "0", token="wrong-token-wrong-token").status_code == 404
    assert _callback(relay, "tc-call-1", "0").json() == {"result": 0, "errmsg": "OK"}
    assert wait_until(lambda: states() == [("call", "delivered")], 10), states()
    assert relay.post(payload([alert(2, township="城关镇")], group='{}:{alertname="y"}')).status_code == 200
    assert wait_until(lambda: len(fakes.got("tencentvoice")) == 2, 20)
    assert _callback(relay, "tc-call-2", "1").status_code == 200  # 1: not answered
    assert wait_until(
        lambda: sorted(states()) == [("call", "dead"), ("call", "delivered"), ("ding", "delivered")], 20
    ), states()
    assert (
        "电话未接通（call，张三：provider reports failure: call result 1: not answered）"
        in (fakes.got("dingtalk")[0].body["markdown"]["text"])
    )
    assert len(fakes.got("tencentvoice")) == 2  # nothing redialled


def test_a_timed_out_call_request_is_not_redialled(tmp_path: Path, fakes: FakeProviders) -> None:
    channel = load_config(_config(tmp_path, fakes)).channels["call"]
    fakes.plan("tencentvoice", "hang:3")

    async def run() -> tuple[Outcome, Reconcile]:
        async with httpx.AsyncClient(timeout=1) as client:
            provider = build_provider(channel, client, Renderer({}))
            msg = Outbound(
                delivery_id="d",
                title="t",
                markdown="",
                text="",
                params=[("place", "城关镇"), ("alert", "x")],
                phone="13800001234",
            )
            sent = await provider.send(msg)
            msg.ref = sent.ref
            return sent.outcome, (await provider.reconcile(msg)).status

    assert asyncio.run(run()) == (Outcome.UNKNOWN, Reconcile.UNSUPPORTED)
    assert len(fakes.got("tencentvoice")) == 1
