"""Every configured channel gets its copy, and an alert that stays firing is reminded of, per channel policy.

Payloads are built the way Alertmanager builds them: one group (one groupKey) posted to each receiver whose
route matches, whole groups resent when they change, and the unchanged group again at repeat_interval.
The end-to-end version of the same through a real Alertmanager is in test_relay_alertmanager.py.
"""

from __future__ import annotations

from pathlib import Path

from relay.config import load_config
from relay.store import Store
from tests.relay.relay_fakes import FakeProviders
from tests.relay.relay_testlib import alert, config_text
from tests.relay.test_relay_delivery import Harness

T0 = 1_800_000_000.0
GROUP = '{}/{severity="critical"}:{alertname="TestAlert1", township="城关镇"}'
ROUTES = """
  sms:
    channels: [sms]
  im:
    channels: [ding]
"""


def _harness(tmp: Path, fakes: FakeProviders, sms_extra: str = "", ding_extra: str = "") -> Harness:
    base = config_text(tmp, fakes, 10131)
    channels = base[base.index("channels:") + len("channels:") : base.index("routes:")]
    channels = channels.replace("    recipients: [zhang]\n", "    recipients: [zhang]\n" + sms_extra)
    channels = channels.replace("    type: dingtalk\n", "    type: dingtalk\n" + ding_extra)
    path = tmp / "relay.yml"
    path.write_text(config_text(tmp, fakes, 10131, channels=channels, routes=ROUTES))
    return Harness(load_config(path))


def _messages(store: Store) -> list[tuple[str, int]]:
    """(channel, reminder number) of every queued single message, in order."""
    out = []
    for row in store.list_rows(("pending", "quiet")):
        (body,) = store.alerts_for(row)
        out.append((row.channel, int(body["reminder"])))
    return out


def test_the_same_group_on_the_sms_and_the_im_receiver_reaches_both(tmp_path: Path, fakes: FakeProviders) -> None:
    h = _harness(tmp_path, fakes)
    alerts = [alert(1, township="城关镇")]
    # Alertmanager: critical -> relay-sms (continue: true) and relay-im, the same groupKey on both.
    assert h.ingest(alerts, route="sms", now=T0, group=GROUP, receiver="relay-sms") == (1, 0)
    assert h.ingest(alerts, route="im", now=T0 + 0.01, group=GROUP, receiver="relay-im") == (1, 0)
    assert sorted(_messages(h.store)) == [("ding", 0), ("sms", 0)]
    # The HA peer sends the same two webhooks: both collapse.
    assert h.ingest(alerts, route="sms", now=T0 + 15, group=GROUP, receiver="relay-sms") == (0, 1)
    assert h.ingest(alerts, route="im", now=T0 + 15, group=GROUP, receiver="relay-im") == (0, 1)
    assert len(_messages(h.store)) == 2


def test_unchanged_group_after_the_window_is_a_reminder_with_channel_policy(
    tmp_path: Path, fakes: FakeProviders
) -> None:
    h = _harness(tmp_path, fakes)  # defaults: duplicate window 300 s; SMS reminders at most every 4 h, IM every repeat
    alerts = [alert(1, township="城关镇")]

    def both(now: float) -> list[tuple[int, int]]:
        return [
            h.ingest(alerts, route="sms", now=now, group=GROUP, receiver="relay-sms"),
            h.ingest(alerts, route="im", now=now, group=GROUP, receiver="relay-im"),
        ]

    both(T0)
    assert both(T0 + 60) == [(0, 1), (0, 1)]  # a webhook retry / HA duplicate inside the window
    # repeat_interval 2h on the IM route: a reminder; SMS gets none (4 h policy) but the alert is recorded.
    assert both(T0 + 2 * 3600) == [(1, 0), (1, 0)]
    assert _messages(h.store) == [("sms", 0), ("ding", 0), ("ding", 1)]
    assert both(T0 + 4 * 3600 + 5) == [(1, 0), (1, 0)]  # 4 h since the SMS: now SMS reminds too
    assert _messages(h.store)[-2:] == [("sms", 2), ("ding", 2)]
    assert both(T0 + 4 * 3600 + 30) == [(0, 1), (0, 1)]  # the HA peer's copy of that reminder


def test_a_group_that_changed_resends_old_alerts_without_reminding(tmp_path: Path, fakes: FakeProviders) -> None:
    h = _harness(tmp_path, fakes)
    a1, a2 = alert(1, township="城关镇"), alert(2, township="城关镇")
    h.ingest([a1], route="im", now=T0, group=GROUP, receiver="relay-im")
    # group_interval later a second alert joins: Alertmanager sends both; only the new one is news.
    assert h.ingest([a1, a2], route="im", now=T0 + 600, group=GROUP, receiver="relay-im") == (1, 1)
    # One resolves: the resolution is news, the still-firing one is not.
    resolved = alert(2, status="resolved", township="城关镇")
    assert h.ingest([a1, resolved], route="im", now=T0 + 1200, group=GROUP, receiver="relay-im") == (1, 1)
    # repeat_interval later the unchanged group (only a1 firing) comes again: a1's first reminder.
    assert h.ingest([a1], route="im", now=T0 + 1200 + 7200, group=GROUP, receiver="relay-im") == (1, 0)
    assert [n for _, n in _messages(h.store)] == [0, 0, 0, 1]


def test_reminders_can_be_switched_off_or_spaced_per_channel(tmp_path: Path, fakes: FakeProviders) -> None:
    h = _harness(
        tmp_path, fakes, sms_extra="    reminders: false\n", ding_extra="    reminder_interval_seconds: 10800\n"
    )
    alerts = [alert(1)]
    for hours in (0, 2, 4, 6, 8):
        h.ingest(alerts, route="sms", now=T0 + hours * 3600, group=GROUP, receiver="relay-sms")
        h.ingest(alerts, route="im", now=T0 + hours * 3600, group=GROUP, receiver="relay-im")
    # SMS: the first notice only. IM: at 0 h, then the repeats at 4 h and 8 h (3 h apart at least).
    assert _messages(h.store) == [("sms", 0), ("ding", 0), ("ding", 2), ("ding", 4)]


def test_reminder_text_says_which_reminder_and_for_how_long(tmp_path: Path, fakes: FakeProviders) -> None:
    h = _harness(tmp_path, fakes)
    start = alert(1, township="城关镇")
    start["startsAt"] = "2027-01-15T08:00:00Z"
    h.ingest([start], route="im", now=T0, group=GROUP, receiver="relay-im")
    h.ingest([start], route="im", now=T0 + 7200, group=GROUP, receiver="relay-im")
    row = [r for r in h.store.list_rows(("pending",)) if r.channel == "ding"][-1]
    import asyncio

    import httpx

    from relay.config import build_renderer
    from relay.delivery import Deliverer

    async def render() -> str:
        async with httpx.AsyncClient() as client:
            deliverer = Deliverer(h.config, h.store, build_renderer(h.config), h.metrics, client, clock=lambda: T0)
            return (await deliverer.outbound(row, h.config.channels["ding"])).markdown

    text = asyncio.run(render())
    # notifiedAt (T0 + 2 h = 2027-01-15T10:00:00Z) minus startsAt: 2 hours.
    assert "仍在告警，第 1 次提醒，已持续 2 小时" in text
    assert "乡镇 Township：城关镇" in text
