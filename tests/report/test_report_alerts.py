"""Alert handling in the report, from the relay's real store: alerts go through a real Alertmanager with the
shipped alertmanager.yml to the relay running the shipped relay.example.yml (providers as loopback fakes),
and the report counts what the relay recorded — one occurrence per alert even where the shipped routing sent a
critical alert to both the SMS and the IM route."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from report.cli import build_report
from report.config import ReportConfig
from report.period import Period
from tests.relay.conftest import fakes, loopback_only, relays  # noqa: F401  (fixtures)
from tests.relay.relay_fakes import FakeProviders
from tests.relay.relay_testlib import RelayProcess, wait_until
from tests.relay.shipped import shipped_alertmanager_config, shipped_relay_config
from tests.report.conftest import Week
from tests.report.history import DAY
from tests.support.prometheus import AlertmanagerServer, free_port

pytestmark = pytest.mark.integration
LINK = re.compile(r"\((http://127\.0\.0\.1:\d+/ack/[^)\s]+)\)")


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat()


def _alert(
    name: str, instance: str, township: str, severity: str, starts: float, ends: float | None = None
) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "labels": {
            "alertname": name,
            "severity": severity,
            "township": township,
            "instance": instance,
            "job": "shaobing",
        },
        "annotations": {"summary": f"{name} {instance}"},
        "startsAt": _iso(starts),
        "generatorURL": "http://127.0.0.1:9/graph",
    }
    if ends is not None:
        alert["endsAt"] = _iso(ends)
    return alert


def _stored(db: Path, status: str) -> set[str]:
    if not db.exists():
        return set()
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT json_extract(body, '$.labels.instance') || '/' || json_extract(body, '$.startsAt') FROM alerts"
            " WHERE json_extract(body, '$.status') = ?",
            (status,),
        ).fetchall()
    return {r[0] for r in rows}


def test_alert_counts_and_handling_times_from_the_relay_store(
    week: Week,
    tmp_path: Path,
    fakes: FakeProviders,  # noqa: F811
    relays: list[RelayProcess],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    config = shipped_relay_config(
        tmp_path, fakes, port, monkeypatch, {"acknowledge.public_url": f"http://127.0.0.1:{port}"}
    )
    relay = RelayProcess(config, port, tmp_path / "relay.log")
    relays.append(relay)
    relay.start()
    db = tmp_path / "relay.db"
    s, e = week.start, week.end
    down1 = _alert("ShaobingHostDown", "cg-02", "城关镇", "critical", s + 2 * DAY + 10 * 3600 + 120)
    disk = _alert("ShaobingDiskWillFill", "hk-01", "河口乡", "warning", s + 5 * DAY)
    earlier = _alert("ShaobingHostDown", "sq-01", "石桥镇", "critical", s - DAY)  # before the period
    text = shipped_alertmanager_config(
        relay.base, tmp_path / "secrets" / "relay-token", {"group_wait": "1s", "group_interval": "1s"}
    )
    with AlertmanagerServer(tmp_path / "am", text) as am:
        posted = time.time()
        am.post_alerts([down1, disk, earlier])
        assert wait_until(lambda: len(_stored(db, "firing")) == 3, 30), _stored(db, "firing")
        # The critical one was posted to both the SMS and the IM route; let the deliveries finish.
        assert wait_until(lambda: len(fakes.got("dingtalk")) >= 2, 30)
        am.post_alerts(
            [
                dict(down1, endsAt=_iso(s + 2 * DAY + 12 * 3600)),
                dict(disk, endsAt=_iso(s + 5 * DAY + 1800)),
                dict(earlier, endsAt=_iso(s - DAY + 600)),
            ]
        )
        assert wait_until(lambda: len(_stored(db, "resolved")) == 3, 30), _stored(db, "resolved")
        down2 = _alert("ShaobingHostDown", "cg-02", "城关镇", "critical", e - 2580)
        posted2 = time.time()
        am.post_alerts([down2])
        assert wait_until(lambda: len(_stored(db, "firing")) == 4, 30)
        # Someone acknowledges the open one through the link in its chat message -- a message sent after the
        # second outage was posted (the first outage's messages carry links to its own, closed incident).

        def link() -> str:
            got = [g for g in fakes.got("dingtalk") if g.at >= posted2]
            found = [m.group(1) for g in got for m in [LINK.search(g.body["markdown"]["text"])] if m]
            return found[-1] if found else ""

        assert wait_until(lambda: bool(link()), 30)
        acked_from = time.time()
        assert httpx.post(link(), data={"who": "李四", "hours": "4"}, timeout=20).status_code == 200
        acked_by = time.time()
    relay.stop()
    stopped = time.time()
    with sqlite3.connect(db) as conn:
        routes = conn.execute(
            "SELECT route FROM alerts WHERE json_extract(body, '$.labels.instance') = 'cg-02'"
            " AND json_extract(body, '$.status') = 'firing'"
        ).fetchall()
    assert sorted(r[0] for r in routes) == ["im", "im", "sms", "sms"]  # the shipped routing: both routes

    report = build_report(ReportConfig(prometheus_url=week.url, relay_db=db), Period(s, e))
    alerts = report.alerts
    assert alerts.source == "relay"
    counts = {(c.name, c.severity): c for c in alerts.counts}
    assert set(counts) == {("ShaobingHostDown", "critical"), ("ShaobingDiskWillFill", "warning")}
    host_down, disk_fill = counts[("ShaobingHostDown", "critical")], counts[("ShaobingDiskWillFill", "warning")]
    assert (host_down.count, host_down.resolved, host_down.to_resolve) == (2, 1, 7080.0)
    assert (disk_fill.count, disk_fill.resolved, disk_fill.to_resolve) == (1, 1, 1800.0)
    assert alerts.still_firing == 1
    # Time to notify: from startsAt to the relay's first delivery, which happened after our post and before
    # the relay stopped (the planted alerts started days ago, so this is days, as the report says).
    disk_start = s + 5 * DAY
    assert disk_fill.to_notify is not None
    assert posted - disk_start <= disk_fill.to_notify <= stopped - disk_start
    first = s + 2 * DAY + 10 * 3600 + 120
    # Time to acknowledge, from the relay's incidents: only the second outage was acknowledged.
    assert host_down.acknowledged == 1 and host_down.to_acknowledge is not None
    assert acked_from - (e - 2580) <= host_down.to_acknowledge <= acked_by - (e - 2580)
    assert disk_fill.acknowledged == 0 and disk_fill.to_acknowledge is None
    assert alerts.total() == 3 and alerts.total("critical") == 2
    day = dt.datetime.fromtimestamp(first, dt.timezone(dt.timedelta(hours=8))).strftime("%m-%d")
    assert alerts.by_day[day] == {"critical": 1}
    # Scope applies to alerts too.
    scoped = build_report(ReportConfig(prometheus_url=week.url, relay_db=db, townships=("河口乡",)), Period(s, e))
    assert [(c.name, c.count) for c in scoped.alerts.counts] == [("ShaobingDiskWillFill", 1)]
