"""Every number in the report against the planted week, through a real Prometheus (tests/report/history.py)."""

from __future__ import annotations

import pytest

from report.cli import build_report
from report.config import ReportConfig
from report.model import Outage
from report.period import Period
from tests.report.conftest import PERIOD, Week
from tests.report.history import DAY, GIB


def _report(week: Week, **config: object):  # type: ignore[no-untyped-def]
    return build_report(ReportConfig(prometheus_url=week.url, **config), Period(week.start, week.end))  # type: ignore[arg-type]


def test_availability_outages_and_missing_data_are_exact(week: Week) -> None:
    r = _report(week)
    hosts = {h.instance: h for h in r.hosts}
    assert sorted(hosts) == ["cg-01", "cg-02", "hk-01", "hk-02", "sq-01", "sq-02"]
    cg2 = hosts["cg-02"].availability
    # 2 h on day 3 and the last 45 minutes (still down when the period ends).
    assert cg2.down_seconds == pytest.approx(7200 + 2700)
    assert cg2.outages == [
        Outage(week.start + 2 * DAY + 10 * 3600, 7200.0, False),
        Outage(week.end - 2700, 2700.0, True),
    ]
    assert cg2.up_now is False
    assert cg2.uptime_ratio == pytest.approx(1 - 9900 / PERIOD)
    assert cg2.missing_seconds == 0
    # hk-02: Prometheus has nothing for day 4 — missing, neither up nor down.
    hk2 = hosts["hk-02"].availability
    assert hk2.missing_seconds == DAY
    assert len(hk2.missing_hours) == 24
    assert min(hk2.missing_hours) == week.start + 3 * DAY + 3600
    assert hk2.down_seconds == 0 and hk2.uptime_ratio == 1.0
    assert hosts["sq-01"].availability.uptime_ratio == 1.0 and not hosts["sq-01"].availability.outages
    # sq-02 pushes from behind NAT (no `up`): the hour nothing arrived is an outage, not missing data.
    sq2 = hosts["sq-02"]
    assert sq2.push and not hosts["sq-01"].push
    assert sq2.availability.outages == [Outage(week.start + 5 * DAY + 8 * 3600, 3600.0, False)]
    assert (sq2.availability.down_seconds, sq2.availability.missing_seconds) == (3600.0, 0.0)
    assert sq2.availability.up_now is True


def test_resources_and_disk_trend(week: Week) -> None:
    hosts = {h.instance: h for h in _report(week).hosts}
    avg, peak = hosts["cg-01"].cpu_stats
    assert peak == pytest.approx(0.85)
    assert avg == pytest.approx((6 * 0.85 + 162 * 0.25) / 168)
    assert hosts["sq-01"].cpu_stats == (pytest.approx(0.25), pytest.approx(0.25))
    assert hosts["hk-01"].memory_stats == (pytest.approx(0.5), pytest.approx(0.5))
    (fs,) = hosts["hk-01"].filesystems
    assert (fs.mountpoint, fs.used_ratio, fs.avail_bytes) == ("/", pytest.approx(0.6), pytest.approx(40 * GIB))
    # 10 GiB a week gone, 40 GiB left: 28 days.
    assert fs.days_to_full == pytest.approx(28.0)
    assert hosts["sq-01"].filesystems[0].days_to_full is None  # not growing: never full


def test_currency_and_security_now_and_at_the_last_report(week: Week) -> None:
    hosts = {h.instance: h for h in _report(week).hosts}
    cg1, cg2, hk2 = hosts["cg-01"], hosts["cg-02"], hosts["hk-02"]
    assert cg1.now.weak == {("empty", "root"): 1, ("dictionary", "human"): 1}
    assert cg1.before.weak == {("empty", "root"): 1, ("dictionary", "human"): 2}
    assert hosts["sq-01"].now.weak == {}  # audited, nothing risky ("locked" is not a finding)
    assert hk2.now.weak is None and hk2.now.exposed is None  # never reported: unknown, not 0
    assert cg2.now.exposed == [("redis", "6379")] and cg2.before.exposed == []
    assert [(e.product, e.cycle) for e in cg2.eol_past(week.end)] == [("centos", "7")]
    assert cg1.eol_past(week.end) == []
    assert cg2.now.security_updates == 12 and cg1.now.security_updates == 0
    assert cg2.updates_since == pytest.approx(week.end - 20 * DAY)
    assert cg2.reboot_since == pytest.approx(week.end - 10 * DAY)
    assert (cg1.now.baseline_ratio, cg1.before.baseline_ratio) == (pytest.approx(0.95), pytest.approx(0.90))
    assert hosts["hk-01"].now.baseline_failed == 12
    assert cg2.os_name == "CentOS Linux 7 (Core)"


def test_verdicts_and_todo_order(week: Week) -> None:
    r = _report(week)
    assert {t.name: t.verdict for t in r.townships} == {"城关镇": "red", "河口乡": "yellow", "石桥镇": "green"}
    assert [(t.risk, t.instance) for t in r.todos] == [
        (100, "cg-02"),  # down now
        (98, "cg-01"),  # root with an empty password
        (88, "cg-01"),  # a person's dictionary password
        (80, "cg-02"),  # Redis open to every interface
        (70, "cg-02"),  # CentOS 7 past end of life
        (65, "cg-02"),  # 12 security updates, 20 days old
        (60, "hk-01"),  # disk full in 28 days
        (50, "hk-01"),  # baseline 55 %
        (45, "hk-02"),  # a day without data
        (40, "cg-02"),  # reboot due for 10 days
    ]
    assert "28 天后写满" in r.todos[6].what and r.todos[8].what == "24 小时没有监控数据"


def test_scope_limits_hosts_and_alerts(week: Week) -> None:
    r = _report(week, townships=("河口乡",))
    assert [h.instance for h in r.hosts] == ["hk-01", "hk-02"]
    assert r.scope == "河口乡"
    r = _report(week, instances=("sq-01",))
    assert [h.instance for h in r.hosts] == ["sq-01"] and not r.todos


def test_alerts_from_prometheus_when_there_is_no_relay_store(week: Week) -> None:
    alerts = _report(week).alerts
    assert alerts.source == "prometheus" and "通知耗时未知" in alerts.note
    (count,) = alerts.counts
    assert (count.name, count.severity, count.count, count.resolved) == ("ShaobingHostDown", "critical", 2, 1)
    assert count.to_resolve == 7080.0 and count.to_notify is None
    assert alerts.still_firing == 1
