"""SMS over a GSM modem ("短信猫") on a pseudo-terminal that answers like a real modem (tests/relay/modem_emulator.py
decodes the PDUs itself): UCS-2 Chinese split into concatenated parts, modem health in the relay's metrics
(signal, SIM, registration — and their loss), no network -> retried later, and a reply "1" from the on-call
person acknowledging the incident and silencing it in a real Alertmanager."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from relay.config import load_config
from relay.providers import Outbound, Outcome, build_provider
from relay.templates import Renderer
from tests.relay.modem_emulator import ModemEmulator
from tests.relay.relay_fakes import FakeProviders
from tests.relay.relay_testlib import RelayProcess, alert, config_text, payload, wait_until
from tests.support.prometheus import AlertmanagerServer, free_port

LONG = "【哨兵】告警：河口乡政务服务器 hk-db-01 的数据库停止响应，已持续 5 分钟，请值班人员立即处理。" * 2


@pytest.fixture
def modem() -> Iterator[ModemEmulator]:
    emulator = ModemEmulator()
    yield emulator
    emulator.close()


def _config(
    tmp: Path, fakes: FakeProviders, modem: ModemEmulator, extra: str = "", top: str = "", more: str = ""
) -> Path:
    channels = (
        more
        + f"""
  modem:
    type: gsm_modem
    port: {modem.port}
    health_interval_seconds: 1
    recipients: [zhang]
    rate_limits: [{{window_seconds: 1, max: 10}}]{extra}
"""
    )
    text = config_text(tmp, fakes, free_port(), channels=channels, routes="\n  ops:\n    channels: [modem]\n")
    path = tmp / "relay.yml"
    path.write_text(text + top, encoding="utf-8")
    return path


def test_long_chinese_sms_and_modem_health(tmp_path: Path, fakes: FakeProviders, modem: ModemEmulator) -> None:
    channel = load_config(_config(tmp_path, fakes, modem)).channels["modem"]

    async def run() -> tuple[Outcome, list[object]]:
        async with httpx.AsyncClient() as client:
            provider = build_provider(channel, client, Renderer({}))
            provider.start()  # type: ignore[attr-defined]
            assert await asyncio.to_thread(wait_until, lambda: provider.health.up, 20)  # type: ignore[attr-defined]
            msg = Outbound(delivery_id="d", title="t", markdown="", text=LONG, phone="13800001234")
            outcome = (await provider.send(msg)).outcome
            healthy = provider.health  # type: ignore[attr-defined]
            modem.rssi, modem.registration = 99, 2  # signal lost, searching for a network
            checked = healthy.checked_at  # type: ignore[attr-defined]
            assert await asyncio.to_thread(
                wait_until,
                lambda: provider.health.checked_at > checked + 0.5,
                20,  # type: ignore[attr-defined]
            )
            lost = provider.health  # type: ignore[attr-defined]
            refused = (await provider.send(msg)).outcome
            await provider.close()
            return outcome, [healthy, lost, refused]

    outcome, (healthy, lost, refused) = asyncio.run(run())
    assert outcome is Outcome.SUCCESS
    (message,) = modem.messages()
    assert message.destination == "13800001234" and message.text == LONG
    assert len(message.parts) == -(-len(LONG) // 67)  # 67 UCS-2 characters per concatenated part
    assert [p.udh[1:] for p in message.parts] == [(len(message.parts), n) for n in range(1, len(message.parts) + 1)]  # type: ignore[index]
    assert len({p.udh[0] for p in message.parts}) == 1  # type: ignore[index]
    assert "AT+CMGF=0" in modem.commands  # PDU mode
    assert (healthy.up, healthy.sim_ready, healthy.registered, healthy.signal_dbm) == (True, True, True, -73.0)  # type: ignore[attr-defined]
    assert (lost.registered, lost.signal_dbm) == (False, None)  # type: ignore[attr-defined]  # unknown is absent, not 0
    assert refused is Outcome.RETRY  # no network: nothing left the relay, so it is sent later
    assert len(modem.messages()) == 1


def test_a_missing_sim_keeps_the_modem_down(tmp_path: Path, fakes: FakeProviders, modem: ModemEmulator) -> None:
    modem.sim = False
    channel = load_config(_config(tmp_path, fakes, modem)).channels["modem"]

    async def run() -> tuple[Outcome, bool]:
        async with httpx.AsyncClient() as client:
            provider = build_provider(channel, client, Renderer({}))
            provider.start()  # type: ignore[attr-defined]
            await asyncio.sleep(2)
            msg = Outbound(delivery_id="d", title="t", markdown="", text="测试", phone="13800001234")
            outcome = (await provider.send(msg)).outcome
            up = provider.health.up  # type: ignore[attr-defined]
            await provider.close()
            return outcome, up

    assert asyncio.run(run()) == (Outcome.RETRY, False)
    assert modem.parts == []


@pytest.mark.integration
def test_a_reply_1_acknowledges_and_silences(
    tmp_path: Path, fakes: FakeProviders, modem: ModemEmulator, relays: list[RelayProcess]
) -> None:
    am = AlertmanagerServer(tmp_path / "am", "route:\n  receiver: none\nreceivers:\n  - name: none\n").start()
    try:
        (tmp_path / "ack-secret").write_text("a-signing-secret-of-32-characters\n")
        top = f"""
acknowledge:
  public_url: http://127.0.0.1:9
  secret: {{secret_file: {tmp_path / "ack-secret"}}}
  alertmanagers: [{am.url}]
"""
        path = _config(tmp_path, fakes, modem, top=top)
        relay = RelayProcess(path, load_config(path).server.port, tmp_path / "relay.log")
        relays.append(relay)
        relay.start()
        metrics = lambda: httpx.get(f"{relay.base}/metrics", timeout=5).text  # noqa: E731
        assert wait_until(lambda: 'shaobing_relay_modem_up{channel="modem"} 1' in metrics(), 30), metrics()
        assert 'shaobing_relay_modem_signal_dbm{channel="modem"} -73' in metrics()
        body = payload([alert(1, township="河口乡")])
        assert relay.post(body).status_code == 200
        assert wait_until(lambda: len(modem.messages()) == 1, 20), relay.log.read_text()[-2000:]
        assert "测试告警 1" in modem.messages()[0].text
        modem.deliver("+8613900009999", "1")  # a stranger's "1" acknowledges nothing
        assert wait_until(lambda: modem.inbox == {}, 10)  # read (AT+CMGR) and deleted (AT+CMGD) from the SIM
        modem.deliver("+8613800001234", "1")

        def acked() -> list[tuple[str, str]]:
            with sqlite3.connect(tmp_path / "relay.db") as conn:
                return conn.execute("SELECT state, acked_by FROM oncall").fetchall()

        assert wait_until(lambda: acked() == [("acked", "张三（短信回复）")], 20), (
            acked(),
            relay.log.read_text()[-2000:],
        )
        # The silence follows the recorded acknowledgement (a call to Alertmanager after the commit).

        def silences() -> list[tuple[str, str]]:
            found = httpx.get(f"{am.url}/api/v2/silences", timeout=5).json()
            return [(s["createdBy"], s["matchers"][0]["value"]) for s in found]

        assert wait_until(lambda: silences() == [("张三（短信回复）", "x")], 20), silences()
        assert wait_until(lambda: modem.inbox == {}, 10)  # the replies were read and deleted from the SIM
        # Signal lost: the health metrics follow (registration 0, signal absent rather than 0).
        modem.rssi, modem.registration = 99, 2
        assert wait_until(lambda: 'shaobing_relay_modem_registered{channel="modem"} 0' in metrics(), 20), metrics()
        assert "shaobing_relay_modem_signal_dbm{" not in metrics()

    finally:
        am.stop()


@pytest.mark.integration
def test_a_failed_status_report_is_said_on_the_fallback(
    tmp_path: Path, fakes: FakeProviders, modem: ModemEmulator, relays: list[RelayProcess]
) -> None:
    modem.report_status = 0x41  # permanent error: the handset never got it
    s = tmp_path / "secrets"
    ding = f"""
  ding:
    type: dingtalk
    base_url: {fakes.url("/dingtalk/robot/send")}
    access_token: {{secret_file: {s}/ding_token}}
    secret: {{secret_file: {s}/ding_secret}}"""
    path = _config(tmp_path, fakes, modem, extra="\n    fallback: ding", more=ding)
    relay = RelayProcess(path, load_config(path).server.port, tmp_path / "relay.log")
    relays.append(relay)
    relay.start()
    assert relay.post(payload([alert(1, township="河口乡")])).status_code == 200
    assert wait_until(lambda: len(fakes.got("dingtalk")) == 1, 30), relay.log.read_text()[-2000:]
    assert all(p.status_report_requested for p in modem.parts)
    text = fakes.got("dingtalk")[0].body["markdown"]["text"]
    assert "短信未送达（modem，张三：状态报告 0x41），改由本通道发送" in text and "测试告警 1" in text
    assert relay.metric("shaobing_relay_modem_reports_total", channel="modem", result="failed") == 1
    assert modem.reports == {}  # read from SR memory and deleted
