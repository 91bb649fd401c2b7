"""The shipped silent-push-host rule, evaluated where pushed data lands, with the real agent stopped:

* VictoriaMetrics + vmalert (notifying a real Alertmanager), for `mode: victoriametrics`;
* Prometheus scraping a Pushgateway, for `mode: pushgateway`.

Only the thresholds are shortened (alert_rules/build.py --set); the expressions are the shipped ones.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.alerts.rule_files import RULES_DIR
from tests.deploy.servers import Pushgateway, VictoriaMetrics, VmAlert
from tests.support.agent import AgentProcess
from tests.support.prometheus import AlertmanagerServer, PrometheusServer, run_tool

pytestmark = pytest.mark.integration

LABELS = {"township": "河口乡", "site": "乡政府", "role": "政务"}
SHORT = {"push.silent_warning_seconds": "12", "push.silent_critical_seconds": "3600", "push.silent_for": "0s"}


def _rules(out: Path) -> Path:
    sets = [arg for key, value in SHORT.items() for arg in ("--set", f"{key}={value}")]
    result = run_tool([sys.executable, str(RULES_DIR / "build.py"), "--out", str(out), *sets], timeout=60)
    assert result.returncode == 0, result.stderr
    return out / "agent.yml"


def _agent(tmp: Path, push: dict[str, str]) -> AgentProcess:
    config = {"labels": LABELS, "push": {"interval": "5s", "timeout": "2s", **push},
              "collectors": {"health": {"interval": "1s"}}}
    return AgentProcess(tmp / "agent", config)


def _silent(alerts: list[dict[str, object]], instance: str) -> list[dict[str, object]]:
    out = []
    for alert in alerts:
        labels = alert.get("labels") or {}
        assert isinstance(labels, dict)
        if labels.get("alertname") == "ShaobingPushHostSilent" and labels.get("instance") == instance:
            out.append(alert)
    return out


def _wait(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return bool(predicate())


def test_victoriametrics_and_vmalert_fire_when_the_agent_stops(tmp_path: Path) -> None:
    rules = _rules(tmp_path / "rules")
    am_config = {"route": {"receiver": "null", "group_wait": "1s"}, "receivers": [{"name": "null"}]}
    with (
        VictoriaMetrics(tmp_path / "vm") as vm,
        AlertmanagerServer(tmp_path / "am", am_config) as am,
        VmAlert(tmp_path / "vmalert", [rules], vm.url, am.url) as vmalert,
    ):
        agent = _agent(tmp_path, {"url": vm.url, "instance": "zf-silent-vm"}).start()
        try:
            assert _wait(lambda: vm.query('shaobing_push_last_success_timestamp_seconds{instance="zf-silent-vm"}'), 40)
            time.sleep(6)
            assert _silent(vmalert.alerts(), "zf-silent-vm") == []  # pushing: not silent
        finally:
            agent.stop()
        stopped = time.monotonic()
        assert _wait(lambda: any(a.get("state") == "firing" for a in _silent(vmalert.alerts(), "zf-silent-vm")), 60)
        took = time.monotonic() - stopped
        assert _wait(lambda: _silent(am.alerts(), "zf-silent-vm"), 30)
        (alert,) = _silent(am.alerts(), "zf-silent-vm")
        labels = alert["labels"]
        assert isinstance(labels, dict)
        assert labels["township"] == "河口乡" and labels["severity"] == "warning" and labels["job"] == "shaobing"
    print(f"\nvmalert: agent stopped -> ShaobingPushHostSilent firing after {took:.1f} s (threshold 12 s)")


def test_pushgateway_and_prometheus_fire_when_the_agent_stops(tmp_path: Path) -> None:
    rules = _rules(tmp_path / "rules")
    with Pushgateway(tmp_path / "pgw") as pgw:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": "pushgateway", "honor_labels": True,
                                "static_configs": [{"targets": [pgw.url.removeprefix("http://")]}]}],
        }
        with PrometheusServer(tmp_path / "prom", config) as prometheus:
            agent = _agent(tmp_path, {"url": pgw.url, "mode": "pushgateway", "instance": "zf-silent-pgw"}).start()
            try:
                prometheus.wait_for('shaobing_push_last_success_timestamp_seconds{instance="zf-silent-pgw"}', timeout=40)
                time.sleep(6)
                assert _silent(prometheus.alerts(), "zf-silent-pgw") == []
            finally:
                agent.stop()
            assert _wait(lambda: any(a.get("state") == "firing"
                                     for a in _silent(prometheus.alerts(), "zf-silent-pgw")), 60)
            (alert,) = _silent(prometheus.alerts(), "zf-silent-pgw")
            labels = alert["labels"]
            assert isinstance(labels, dict)
            assert labels["township"] == "河口乡" and labels["job"] == "shaobing"
