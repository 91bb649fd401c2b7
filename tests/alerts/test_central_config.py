"""deploy/central: Prometheus and Alertmanager configs are valid, route and inhibit as documented."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.alerts.central import (
    ALERTMANAGER_YML,
    PROMETHEUS_YML,
    TARGETS_DIR,
    loopback_alertmanager_config,
)
from tests.alerts.rule_files import RULE_FILES, RULES_DIR
from tests.support.prometheus import AMTOOL_BIN, PROMTOOL_BIN, AlertmanagerServer, free_port, run_tool


def _central_dir(tmp_path: Path) -> Path:
    """The layout prometheus.yml documents: rules, targets and secrets next to it."""
    root = tmp_path / "etc-prometheus"
    (root / "secrets").mkdir(parents=True)
    shutil.copy(PROMETHEUS_YML, root / "prometheus.yml")
    shutil.copytree(TARGETS_DIR, root / "targets")
    (root / "alert_rules").mkdir()
    for name in RULE_FILES:
        shutil.copy(RULES_DIR / name, root / "alert_rules" / name)
    (root / "secrets" / "agent_scrape_password").write_text("test-only\n")
    (root / "secrets" / "agent_ca.pem").write_text("")
    return root


def test_promtool_check_config(tmp_path: Path) -> None:
    root = _central_dir(tmp_path)
    result = run_tool([PROMTOOL_BIN, "check", "config", str(root / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout


def test_promtool_check_config_fails_without_the_rules(tmp_path: Path) -> None:
    root = _central_dir(tmp_path)
    (root / "alert_rules" / "health.yml").unlink()
    result = run_tool([PROMTOOL_BIN, "check", "config", str(root / "prometheus.yml")])
    assert result.returncode != 0


def test_file_sd_targets_carry_the_labels_rules_group_by() -> None:
    files = sorted(TARGETS_DIR.glob("*.json"))
    assert files
    for path in files:
        groups = json.loads(path.read_text(encoding="utf-8"))
        for group in groups:
            assert group["targets"], path
            assert {"township", "site", "role"} <= set(group["labels"]), path
            for target in group["targets"]:
                assert target.endswith(":10130"), f"{path}: {target} is not on the agent's port"


def test_amtool_check_config() -> None:
    result = run_tool([AMTOOL_BIN, "check-config", str(ALERTMANAGER_YML)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 inhibit rules" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=critical", "township=城关镇", "alertname=ShaobingHostDown"], "relay-sms,relay-im"),
        (["severity=critical", "alertname=ShaobingRelayDown"], "relay-sms,relay-im"),
        (["severity=warning", "township=河口乡", "alertname=ShaobingMemoryPressure"], "relay-im"),
        (["severity=info", "township=河口乡", "alertname=ShaobingEndOfLifeUnknown"], "null"),
        (["alertname=SomethingWithoutSeverity"], "relay-im"),
    ],
)
def test_amtool_routes(labels: list[str], receivers: str) -> None:
    result = run_tool([AMTOOL_BIN, "config", "routes", "test", f"--config.file={ALERTMANAGER_YML}", *labels])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


def _alert(name: str, severity: str, instance: str, **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "severity": severity, "instance": instance, "township": "城关镇", **labels},
        "annotations": {"summary": "测试"},
    }


def test_inhibition_in_a_real_alertmanager(tmp_path: Path) -> None:
    token = tmp_path / "relay_token"
    token.write_text("test-token\n")
    # Nothing listens on this port: notifications fail quietly; inhibition is what is under test.
    config = loopback_alertmanager_config(f"http://127.0.0.1:{free_port()}", token)
    with AlertmanagerServer(tmp_path / "am", config) as am:
        am.post_alerts(
            [
                _alert("ShaobingHostDown", "critical", "h1:10130"),
                _alert("ShaobingMemoryPressure", "warning", "h1:10130"),
                _alert("ShaobingMemoryPressure", "warning", "h2:10130"),
                _alert("ShaobingFilesystemAlmostOutOfSpace", "critical", "h2:10130", mountpoint="/"),
                _alert("ShaobingFilesystemAlmostOutOfSpace", "warning", "h2:10130", mountpoint="/"),
                _alert("ShaobingFilesystemAlmostOutOfSpace", "warning", "h2:10130", mountpoint="/data"),
            ]
        )

        def state(alerts: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], str]:
            return {
                (
                    a["labels"]["alertname"],
                    a["labels"]["severity"],
                    a["labels"]["instance"],
                    a["labels"].get("mountpoint", ""),
                ): a["status"]["state"]
                for a in alerts
            }

        expected = {
            ("ShaobingHostDown", "critical", "h1:10130", ""): "active",
            # The down host's other alerts are held back.
            ("ShaobingMemoryPressure", "warning", "h1:10130", ""): "suppressed",
            ("ShaobingMemoryPressure", "warning", "h2:10130", ""): "active",
            ("ShaobingFilesystemAlmostOutOfSpace", "critical", "h2:10130", "/"): "active",
            # The warning under the critical of the same disk is held back; another disk's warning is not.
            ("ShaobingFilesystemAlmostOutOfSpace", "warning", "h2:10130", "/"): "suppressed",
            ("ShaobingFilesystemAlmostOutOfSpace", "warning", "h2:10130", "/data"): "active",
        }
        # The API computes each alert's state when asked, from what the inhibitor has taken in so far; it takes
        # in posted alerts on its own goroutine, so a read straight after the post can predate the critical.
        try:
            alerts = am.wait_for_alerts(lambda a: state(a) == expected, timeout=10)
        except TimeoutError:
            alerts = am.alerts()
        assert state(alerts) == expected
