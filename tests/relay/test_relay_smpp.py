"""SMS without the internet over SMPP 3.4, against a loopback SMSC stand-in that checks the protocol
(tests/relay/smsc.py): bind, UCS-2 text split into concatenated parts, delivery receipts, enquire_link,
throttling, a refused bind, and a connection dropped mid-send — reported unknown, never sent twice. End to end
through the relay process: an alert becomes one SMS at the SMSC, and the dropped one goes to review."""

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
from tests.relay.relay_fakes import FakeProviders
from tests.relay.relay_testlib import RelayProcess, alert, config_text, payload, wait_until
from tests.relay.smsc import Smsc
from tests.support.prometheus import free_port

LONG = "【哨兵】告警：城关镇政务服务器 zf-web-01 磁盘将在 6 小时内写满，已用 96%，请尽快清理日志或扩容。" * 2


@pytest.fixture
def smsc() -> Iterator[Smsc]:
    server = Smsc()
    yield server
    server.close()


def _config(tmp: Path, fakes: FakeProviders, smsc: Smsc, extra: str = "") -> Path:
    (tmp / "smpp-password").write_text(smsc.password + "\n")
    channels = f"""
  smsc:
    type: smpp
    host: 127.0.0.1
    port: {smsc.port}
    system_id: {smsc.system_id}
    password: {{secret_file: {tmp / "smpp-password"}}}
    source_addr: "106900001234"
    recipients: [zhang]
    response_timeout_seconds: 2{extra}
"""
    text = config_text(tmp, fakes, free_port(), channels=channels, routes="\n  ops:\n    channels: [smsc]\n")
    path = tmp / "relay.yml"
    path.write_text(text, encoding="utf-8")
    return path


def _send(path: Path, texts: list[str]) -> tuple[list[Outcome], object]:
    channel = load_config(path).channels["smsc"]

    async def run() -> tuple[list[Outcome], object]:
        async with httpx.AsyncClient() as client:
            provider = build_provider(channel, client, Renderer({}))
            results = []
            for i, text in enumerate(texts):
                msg = Outbound(delivery_id=f"d{i}", title="t", markdown=text, text=text, phone="13800001234")
                results.append((await provider.send(msg)).outcome)
            session = getattr(provider, "session", None)
            await asyncio.sleep(0.3)  # receipts
            receipts = dict(session.receipts) if session is not None else {}
            await provider.close()
            return results, receipts

    return asyncio.run(run())


def test_long_chinese_text_is_ucs2_concatenated_with_receipts(tmp_path: Path, fakes: FakeProviders, smsc: Smsc) -> None:
    outcomes, receipts = _send(_config(tmp_path, fakes, smsc), [LONG, "短消息"])
    assert outcomes == [Outcome.SUCCESS, Outcome.SUCCESS]
    assert smsc.binds == [(0x00000009, "shaobing", "smpp-pw1")]  # bind_transceiver, right credentials
    first, second = smsc.messages()
    assert first.text == LONG and second.text == "短消息"
    assert len(first.parts) == -(-len(LONG) // 67)  # 67 UCS-2 characters per part
    assert {p.udh[0] for p in first.parts if p.udh} == {first.parts[0].udh[0]}  # one reference  # type: ignore[index]
    assert [p.udh[1:] for p in first.parts] == [(len(first.parts), n) for n in range(1, len(first.parts) + 1)]  # type: ignore[index]
    assert all(p.esm_class == 0x40 and p.registered_delivery == 1 for p in first.parts)
    assert second.parts[0].udh is None and second.parts[0].esm_class == 0
    part = first.parts[0]
    assert (part.source, part.source_ton, part.source_npi) == ("106900001234", 0, 0)
    assert (part.destination, part.dest_ton, part.dest_npi) == ("13800001234", 0, 1)
    # Every part's delivery receipt came back on the transceiver session.
    assert receipts == {p.message_id: "DELIVRD" for m in (first, second) for p in m.parts}


def test_keepalive_throttling_and_a_refused_bind(tmp_path: Path, fakes: FakeProviders, smsc: Smsc) -> None:
    path = _config(tmp_path, fakes, smsc, "\n    enquire_link_seconds: 1")
    channel = load_config(path).channels["smsc"]

    async def idle() -> int:
        async with httpx.AsyncClient() as client:
            provider = build_provider(channel, client, Renderer({}))
            msg = Outbound(delivery_id="d", title="t", markdown="x", text="保活", phone="13800001234")
            assert (await provider.send(msg)).outcome is Outcome.SUCCESS
            await asyncio.sleep(2.5)
            smsc.plan.append("status:0x58")
            throttled = (await provider.send(msg)).outcome
            await provider.close()
            assert throttled is Outcome.RATE_LIMITED
            return smsc.enquire_links

    assert asyncio.run(idle()) >= 1
    smsc.password = "changed"
    outcomes, _ = _send(path, ["不会发出"])
    assert outcomes == [Outcome.RETRY]  # never bound: nothing was sent, safe to send later
    assert len(smsc.parts) == 1


def test_a_connection_dropped_mid_send_is_unknown_and_not_resent(
    tmp_path: Path, fakes: FakeProviders, smsc: Smsc
) -> None:
    smsc.plan.append("drop")
    outcomes, _ = _send(_config(tmp_path, fakes, smsc), ["第一条", "第二条"])
    # The first reached the SMSC but was never answered: unknown. The session reconnects for the second.
    assert outcomes == [Outcome.UNKNOWN, Outcome.SUCCESS]
    assert [m.text for m in smsc.messages()] == ["第一条", "第二条"]  # each once: no blind resend
    assert smsc.connections == 2


@pytest.mark.integration
def test_the_relay_sends_alerts_over_smpp(
    tmp_path: Path, fakes: FakeProviders, smsc: Smsc, relays: list[RelayProcess]
) -> None:
    # The shipped SMS budget is one a minute per person; this test sends two within seconds.
    path = _config(tmp_path, fakes, smsc, "\n    rate_limits: [{window_seconds: 1, max: 10}]")
    port = load_config(path).server.port
    relay = RelayProcess(path, port, tmp_path / "relay.log")
    relays.append(relay)
    relay.start()
    assert relay.post(payload([alert(1, township="城关镇")])).status_code == 200
    assert wait_until(lambda: len(smsc.messages()) == 1, 20), relay.log.read_text()[-2000:]
    (message,) = smsc.messages()
    assert message.destination == "13800001234" and "测试告警 1" in message.text and "https://" not in message.text
    db = tmp_path / "relay.db"

    def states() -> list[str]:
        with sqlite3.connect(db) as conn:
            return [r[0] for r in conn.execute("SELECT state FROM messages WHERE channel='smsc' ORDER BY id")]

    assert wait_until(lambda: states() == ["delivered"], 10), states()
    # The SMSC drops the connection on the next submit: the relay does not know whether it went out, so it
    # does not send it again; it waits for reconciliation (none for SMPP) and then an operator.
    smsc.plan.append("drop")
    assert relay.post(payload([alert(2, township="城关镇")])).status_code == 200
    assert wait_until(lambda: len(states()) == 2 and states()[1] in ("unknown", "review"), 20), states()
    assert wait_until(lambda: smsc.connections >= 2, 10)
    assert len([p for p in smsc.parts if "测试告警 2" in p.text]) == 1


def test_smpp_field_sizes_are_checked_at_load(tmp_path: Path, fakes: FakeProviders, smsc: Smsc) -> None:
    from relay.config import ConfigError

    smsc.password = "longer-than-8"
    path = _config(tmp_path, fakes, smsc)
    with pytest.raises(
        ConfigError, match=r"relay\.yml:\d+: channels\.smsc\.password: at most 8 characters in SMPP 3\.4"
    ):
        load_config(path)
