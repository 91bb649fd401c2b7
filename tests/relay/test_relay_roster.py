"""Duty rosters (值班表) as shipped in deploy/central/relay.example.yml: who is on duty across midnight, at the
weekend, on a holiday and during a swap; config errors by file and line; `roster show`; and end to end, a
critical alert through a real Alertmanager reaching the county on-call and the township's person on duty."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from relay.cli import main
from relay.config import ConfigError, load_config
from tests.relay.relay_fakes import FakeProviders
from tests.relay.relay_testlib import RelayProcess, wait_until
from tests.relay.shipped import shipped_alertmanager_config, shipped_relay_config
from tests.support.prometheus import AlertmanagerServer, free_port

ZONE = ZoneInfo("Asia/Shanghai")
PHONES = {"zhangsan": "13800001234", "lisi": "13900005678", "wangwu": "13700002468", "zhaoliu": "13600001357"}


def expected_chengguan(at: dt.datetime) -> str:
    """The shipped 城关镇 roster, restated: weekdays 08:30-17:30 王五, otherwise 赵六; 10-01 李四;
    王五 from Saturday 2026-12-05 08:30 to Monday 2026-12-07 08:30."""
    local = at.astimezone(ZONE).replace(tzinfo=None)
    if local.date() == dt.date(2026, 10, 1):
        return "lisi"
    if dt.datetime(2026, 12, 5, 8, 30) <= local < dt.datetime(2026, 12, 7, 8, 30):
        return "wangwu"
    daytime = dt.time(8, 30) <= local.time() < dt.time(17, 30)
    return "wangwu" if local.weekday() < 5 and daytime else "zhaoliu"


def _local(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZONE).timestamp()


@pytest.fixture
def shipped(tmp_path: Path, fakes: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> Path:
    return shipped_relay_config(tmp_path, fakes, free_port(), monkeypatch)


@pytest.mark.parametrize(
    "when",
    [
        "2026-11-30 08:29",  # Monday before the day shift: Sunday's 24 h shift still runs
        "2026-11-30 08:30",
        "2026-11-30 17:29",
        "2026-11-30 17:30",
        "2026-12-01 03:00",  # the Monday night shift, past midnight
        "2026-11-28 03:00",  # Saturday: Friday's night shift until 08:30
        "2026-11-28 12:00",
        "2026-11-29 23:59",
        "2026-10-01 10:00",  # holiday override, the whole local day
        "2026-10-01 23:59",
        "2026-10-02 00:00",
        "2026-12-05 08:29",  # the swap begins at 08:30
        "2026-12-05 08:30",
        "2026-12-07 08:29",
        "2026-12-07 08:30",
        "2026-12-07 17:30",
    ],
)
def test_shipped_roster_on_duty(shipped: Path, when: str) -> None:
    roster = load_config(shipped).rosters["chengguan"]
    at = _local(when)
    assert roster.on_duty(at)[0].key == expected_chengguan(dt.datetime.fromtimestamp(at, ZONE))


def test_on_duty_follows_the_alerts_township(shipped: Path) -> None:
    sms = load_config(shipped).channels["oncall-sms"]
    weekday = _local("2026-12-02 10:00")
    assert sms.destinations(weekday, {"township": "城关镇"}) == ["zhangsan", "wangwu"]
    assert sms.destinations(weekday, {"township": "河口乡"}) == ["zhangsan", "lisi"]  # the county's "*" roster
    assert sms.destinations(weekday, {}) == ["zhangsan", "lisi"]
    assert sms.destinations(_local("2026-10-01 03:00"), {"township": "城关镇"}) == ["zhangsan", "lisi"]
    assert {p.key for p in sms.everyone()} == set(PHONES)  # budgets exist for everyone who can be on duty


ROSTER = """
rosters:
  t:
    townships: [城关镇]
    shifts:
      - {days: [mon, tue, wed, thu, fri], from: "08:30", to: "17:30", person: wangwu}
      - {days: [mon, tue, wed, thu, fri, sat, sun], from: "17:30", to: "08:30", person: zhaoliu}
      - {days: [sat, sun], from: "08:30", to: "17:30", person: wangwu}
"""


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        (
            'from: "08:30", to: "17:30", person: wangwu}\n      - {days: [mon, tue',
            'from: "08:00", to: "17:30", person: wangwu}\n      - {days: [mon, tue',
            "overlaps the shift on line {line} at 周二 08:00",
        ),
        (
            '      - {days: [sat, sun], from: "08:30", to: "17:30", person: wangwu}\n',
            "",
            "nobody is on duty at 周六 08:30: add a shift or a fallback person",
        ),
        ("person: zhaoliu}", "person: zhaoliuu}", "'zhaoliuu' is not defined under people:"),
        ('from: "17:30"', 'from: "25:00"', "'25:00' is not a time of day"),
        ("days: [sat, sun]", "days: [sat, sunday]", "'sunday' is not one of mon, tue"),
    ],
)
def test_roster_errors_name_file_and_line(shipped: Path, old: str, new: str, says: str) -> None:
    text = shipped.read_text(encoding="utf-8")
    start = text.index("rosters:")
    end = text.index("channels:")
    body = ROSTER.replace(old, new)
    assert body != ROSTER or not old
    written = text[:start] + body.lstrip("\n") + text[end:]
    shipped.write_text(written, encoding="utf-8")
    line = next((i + 1 for i, row in enumerate(written.splitlines()) if 'from: "08:00"' in row), 0)
    says = says.format(line=line)
    with pytest.raises(ConfigError) as err:
        load_config(shipped)
    message = str(err.value)
    assert says in message
    assert f"{shipped}:" in message and "rosters.t" in message
    assert "on_duty needs" not in message  # a broken rosters section is reported once, not again per channel


def test_recipients_name_known_rosters_and_townships_are_not_claimed_twice(shipped: Path) -> None:
    doc = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    doc["channels"]["oncall-sms"]["recipients"] = ["zhangsan", "roster:nosuch"]
    shipped.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match="'nosuch' is not defined under rosters:"):
        load_config(shipped)
    doc["channels"]["oncall-sms"]["recipients"] = ["roster:county"]
    doc["rosters"]["county"]["townships"] = ["城关镇"]
    shipped.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match="'城关镇' is already on roster chengguan"):
        load_config(shipped)


def test_roster_show(shipped: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["roster", "show", "--config", str(shipped), "--date", "2026-12-04T20:00", "--days", "3"]) == 0
    out = capsys.readouterr().out
    lines = [line.strip() for line in out.splitlines()]
    assert "城关镇值班表 [chengguan] 负责 城关镇" in lines
    assert any(line.startswith("12-04 20:00 值班 on duty: 赵六 136****1357") for line in lines)
    assert any(line.startswith("12-05 08:30 起 from: 王五 137****2468  (override") for line in lines)
    assert any(line.startswith("12-07 17:30 起 from: 赵六") for line in lines)
    assert "县信息中心值班表 [county] 负责 其他乡镇（*）" in lines
    assert "13600001357" not in out  # phones masked
    assert main(["roster", "show", "--config", str(shipped), "--date", "12/04"]) == 2


def _alert(name: str, township: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "severity": "critical", "township": township, "instance": f"{name}:10130"},
        "annotations": {"summary": f"{name} 测试"},
        "startsAt": dt.datetime.now(dt.timezone.utc).isoformat(),
        "generatorURL": "http://127.0.0.1:9/graph",
    }


@pytest.mark.integration
def test_critical_alert_reaches_the_township_on_duty_through_alertmanager(
    tmp_path: Path, fakes: FakeProviders, relays: list[RelayProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    relay = RelayProcess(shipped_relay_config(tmp_path, fakes, port, monkeypatch), port, tmp_path / "relay.log")
    relays.append(relay)
    relay.start()
    text = shipped_alertmanager_config(
        relay.base, tmp_path / "secrets" / "relay-token", {"group_wait": "1s", "group_interval": "1s"}
    )
    before = dt.datetime.now(ZONE)
    with AlertmanagerServer(tmp_path / "am", text) as am:
        am.post_alerts([_alert("RosterCg", "城关镇"), _alert("RosterHk", "河口乡")])

        def phones() -> list[str]:
            return sorted(str(r.body.get("PhoneNumbers")) for r in fakes.got("aliyun"))

        # The shipped SMS budget is one per minute per person: zhangsan's second SMS waits a minute.
        assert wait_until(lambda: len(phones()) >= 3, 30), phones()
    after = dt.datetime.now(ZONE)
    got = phones()
    duty = {expected_chengguan(before), expected_chengguan(after)}  # a handover during the test: either is right
    assert PHONES["lisi"] in got  # 河口乡: the county roster
    assert any(PHONES[d] in got for d in duty), (got, duty)
    assert PHONES["zhangsan"] in got
    assert all(r.signature_ok for r in fakes.got("aliyun"))
