"""Alert rules: generated from the templates, valid (promtool lint), behaviour-tested, documented.

Every test here runs the real promtool (Debian's 2.42) or reads the committed files; none needs a server.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from tests.alerts.rule_files import (
    PROMETHEUS_SERIES,
    RULE_FILES,
    RULES_DIR,
    UNIT_TEST_DIR,
    alert_keys,
    expr_metric_names,
    rule_metric_names,
    rules,
    unit_test_cases,
)
from tests.support.prometheus import PROMTOOL_BIN, run_tool

REPO = RULES_DIR.parent
RUNBOOKS = REPO / "docs" / "runbooks.md"
RUNBOOK_BASE = "https://github.com/shaobing/shaobing/blob/main/docs/runbooks.md"
CJK = re.compile(r"[\u4e00-\u9fff]")

# The metric names the agent and the relay publish (the brief's list); the catalogue cross-check narrows this.
KNOWN_METRICS = frozenset(
    (
        "node_cpu_seconds_total", "node_load1", "node_load5", "node_load15", "node_memory_MemTotal_bytes",
        "node_md_disks", "node_md_disks_required", "node_bonding_active", "node_bonding_slaves",
        "smartctl_device_smart_status", "smartctl_device_attribute", "smartctl_device_critical_warning",
        "smartctl_device_media_errors", "shaobing_baseline_pass_ratio", "node_hwmon_temp_celsius", "node_hwmon_temp_max_celsius",
        "node_hwmon_temp_crit_celsius", "node_hwmon_temp_crit_alarm_celsius", "node_network_up",
        "node_edac_correctable_errors_total", "node_edac_uncorrectable_errors_total",
        "node_memory_MemAvailable_bytes", "node_memory_MemFree_bytes", "node_memory_Buffers_bytes",
        "node_memory_Cached_bytes", "node_memory_SwapTotal_bytes", "node_memory_SwapFree_bytes",
        "node_vmstat_pgmajfault", "node_filesystem_size_bytes", "node_filesystem_avail_bytes",
        "node_filesystem_free_bytes", "node_filesystem_files", "node_filesystem_files_free", "node_filesystem_readonly",
        "node_filesystem_device_error", "node_disk_read_bytes_total", "node_disk_written_bytes_total",
        "node_disk_io_time_seconds_total", "node_network_receive_bytes_total", "node_network_transmit_bytes_total",
        "node_network_receive_errs_total", "node_network_transmit_errs_total", "node_network_receive_drop_total",
        "node_network_transmit_drop_total", "node_network_receive_packets_total", "node_network_transmit_packets_total",
        "node_boot_time_seconds", "node_time_seconds", "node_timex_offset_seconds", "node_timex_sync_status",
        "node_timex_maxerror_seconds", "node_uname_info", "node_os_info", "shaobing_service_up",
        "shaobing_service_processes", "shaobing_systemd_units_failed", "shaobing_probe_success",
        "shaobing_probe_duration_seconds", "shaobing_probe_http_status_code",
        "shaobing_tls_cert_expiry_timestamp_seconds", "shaobing_collector_success",
        "shaobing_collector_duration_seconds", "shaobing_collector_last_success_timestamp_seconds",
        "shaobing_collector_applicable", "shaobing_build_info", "process_resident_memory_bytes", "process_start_time_seconds",
        "process_cpu_seconds_total", "shaobing_eol_timestamp_seconds", "shaobing_eol_unknown",
        "shaobing_eol_data_timestamp_seconds", "shaobing_software_info", "shaobing_software_outdated",
        "apt_upgrades_pending", "yum_upgrades_pending", "apt_package_cache_timestamp_seconds",
        "shaobing_security_updates_pending", "shaobing_security_updates_supported",
        "shaobing_security_updates_pending_since_timestamp_seconds", "node_reboot_required",
        "shaobing_reboot_required_since_timestamp_seconds", "shaobing_password_accounts", "shaobing_ssh_risky_setting",
        "shaobing_service_weak_credentials", "shaobing_exposed_port", "shaobing_host_firewall_active",
        "shaobing_audit_last_run_timestamp_seconds", "shaobing_audit_last_complete_timestamp_seconds",
        "shaobing_password_audit_budget_exhausted", "shaobing_relay_deliveries_total", "shaobing_relay_queue_depth",
        "shaobing_relay_oldest_pending_age_seconds", "shaobing_relay_dead_letters", "shaobing_relay_store_errors_total",
        "shaobing_relay_review_required", "shaobing_relay_modem_up", "shaobing_relay_modem_sim_ready",
        "shaobing_relay_modem_registered", "shaobing_relay_modem_signal_dbm", "shaobing_push_last_success_timestamp_seconds", "shaobing_pii_files",
        "shaobing_pii_dumps", "shaobing_permission_findings",
        "shaobing_push_quarantined_segments_total", "shaobing_push_dropped_samples_total",
    )
)

ALERTS = sorted(alert_keys())
ALERT_NAMES = sorted({name for name, _ in ALERTS})


def test_generated_rule_files_are_up_to_date() -> None:
    result = run_tool([sys.executable, str(RULES_DIR / "build.py"), "--check"], timeout=60)
    assert result.returncode == 0, result.stderr


def test_build_rejects_unknown_threshold_with_file_and_line(tmp_path: Path) -> None:
    result = run_tool(
        [sys.executable, str(RULES_DIR / "build.py"), "--out", str(tmp_path), "--set", "host.nope=1"], timeout=60
    )
    assert result.returncode == 2
    assert "host.nope" in result.stderr and "Traceback" not in result.stderr


def test_build_overrides_render_into_another_directory(tmp_path: Path) -> None:
    result = run_tool(
        [sys.executable, str(RULES_DIR / "build.py"), "--out", str(tmp_path), "--set", "host.down_for=7s"],
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    host_down = next(r for r in yaml.safe_load((tmp_path / "health.yml").read_text())["groups"][0]["rules"])
    assert host_down["alert"] == "ShaobingHostDown" and host_down["for"] == "7s"


def test_promtool_check_rules_lint_fatal() -> None:
    files = [str(RULES_DIR / name) for name in RULE_FILES]
    result = run_tool([PROMTOOL_BIN, "check", "rules", "--lint=all", "--lint-fatal", *files])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_FILES)


@pytest.mark.parametrize("test_file", sorted(p.name for p in UNIT_TEST_DIR.glob("*.yml")))
def test_promtool_unit_tests(test_file: str) -> None:
    result = run_tool([PROMTOOL_BIN, "test", "rules", str(UNIT_TEST_DIR / test_file)], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_and_severity_fires_in_a_unit_test_with_exact_annotations() -> None:
    fired: set[tuple[str, str]] = set()
    for case in unit_test_cases():
        for alert in case.get("exp_alerts") or []:
            annotations = alert.get("exp_annotations") or {}
            # Exact Chinese text: the templates rendered, not just the labels matched.
            if {"summary", "description", "runbook_url"} <= set(annotations):
                fired.add((case["alertname"], alert["exp_labels"]["severity"]))
    missing = sorted(set(ALERTS) - fired)
    assert not missing, f"alerts never fired with exact annotations in alert_rules/tests: {missing}"


# The dead man's switch fires always, by design (vector(1)); it has no case in which it must not fire.
ALWAYS_FIRING = {"ShaobingWatchdog"}


def test_every_alert_has_a_case_that_must_not_fire() -> None:
    quiet = {case["alertname"] for case in unit_test_cases() if not case.get("exp_alerts")}
    missing = sorted(set(ALERT_NAMES) - quiet - ALWAYS_FIRING)
    assert not missing, f"alerts without a non-firing case in alert_rules/tests: {missing}"


@pytest.mark.parametrize(
    "rule", [r for r in rules() if "alert" in r], ids=lambda r: f"{r['alert']}-{r['labels']['severity']}"
)
def test_alert_shape(rule: dict[str, object]) -> None:
    name = str(rule["alert"])
    labels = rule["labels"]
    annotations = rule["annotations"]
    assert isinstance(labels, dict) and isinstance(annotations, dict)
    assert name.startswith("Shaobing") and re.fullmatch(r"[A-Z][A-Za-z0-9]+", name)
    assert labels["severity"] in {"critical", "warning", "info"}
    assert set(annotations) == {"summary", "description", "runbook_url"}
    summary, description = str(annotations["summary"]), str(annotations["description"])
    assert "{{" not in summary, "summary is static; details go in the description"
    assert CJK.search(summary) and CJK.search(description)
    if name in ALWAYS_FIRING:
        assert rule["expr"] == "vector(1)" and labels["severity"] == "info"
        return
    assert "$labels.instance" in description
    if rule["file"] != "relay.yml":
        assert "$labels.township" in description
    assert "[[" not in summary + description, "an unrendered threshold placeholder"
    assert annotations["runbook_url"] == f"{RUNBOOK_BASE}#{name.lower()}"


def test_warning_critical_pairs_share_a_name_and_differ_in_threshold() -> None:
    by_name: dict[str, list[dict[str, object]]] = {}
    for rule in rules():
        if "alert" in rule:
            by_name.setdefault(rule["alert"], []).append(rule)
    for name, group in by_name.items():
        severities = [r["labels"]["severity"] for r in group]  # type: ignore[index]
        assert len(severities) == len(set(severities)), f"{name}: duplicate severity"
        if len(group) > 1:
            assert sorted(severities) == ["critical", "warning"], name
            assert len({r["expr"] for r in group}) == 2, f"{name}: the pair needs different thresholds"


def test_each_critical_is_evaluated_before_the_warning_it_inhibits() -> None:
    # Prometheus sends each rule's alerts right after evaluating it, in file order. Alertmanager flushes a new
    # group at once when its alert is older than group_wait (after a restart, or when evaluation runs late), and
    # checks inhibition at that moment: a warning sent before its critical reaches the routes.
    for name in RULE_FILES:
        for group in yaml.safe_load((RULES_DIR / name).read_text(encoding="utf-8"))["groups"]:
            order = [(r["alert"], r["labels"]["severity"]) for r in group["rules"] if "alert" in r]
            for alert, severity in order:
                if severity == "warning" and (alert, "critical") in order:
                    assert order.index((alert, "critical")) < order.index((alert, severity)), (
                        f"{name}: {group['name']}: {alert} warning comes before its critical"
                    )


def test_recording_rules_follow_level_metric_operation_naming() -> None:
    records = [r for r in rules() if "record" in r]
    assert records
    for rule in records:
        assert re.fullmatch(r"(township|instance):[a-z_]+:(sum|count|avg|max|min|ratio)", rule["record"]), rule["record"]


def test_rule_metrics_are_published_by_the_agent_or_relay() -> None:
    unknown = sorted(rule_metric_names() - KNOWN_METRICS - PROMETHEUS_SERIES)
    assert not unknown, f"metrics used by rules but not published by the agent or relay: {unknown}"


def test_metric_name_extraction() -> None:
    expr = (
        'sum without (outcome) (rate(shaobing_relay_deliveries_total{outcome=~"a|b"}[15m])) / on (instance) '
        'group_left (x) node_load1 > bool 0 and ignoring (setting) up{job="shaobing"} unless time() > 5e3'
    )
    assert expr_metric_names(expr) == {"shaobing_relay_deliveries_total", "node_load1", "up"}


def test_every_alert_has_a_runbook_section() -> None:
    text = RUNBOOKS.read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## (\w+)\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S))
    missing = [name for name in ALERT_NAMES if name not in sections]
    assert not missing, f"docs/runbooks.md has no section for {missing}"
    for name in ALERT_NAMES:
        body = sections[name]
        for heading in ("原因", "影响", "处理", "Cause", "Impact", "Action"):
            assert heading in body, f"runbook section {name} lacks {heading}"
    extra = sorted(set(sections) - set(ALERT_NAMES))
    assert not extra, f"runbook sections for alerts that do not exist: {extra}"


def test_rule_metrics_exist_in_the_agent_or_relay_catalogue() -> None:
    from agent.catalog import all_metrics
    from relay.metrics import CATALOGUE as RELAY_CATALOGUE

    declared = {spec.name for spec in all_metrics()} | set(RELAY_CATALOGUE) | PROMETHEUS_SERIES
    missing = sorted(rule_metric_names() - declared)
    assert not missing, f"rules use metrics that no catalogue declares: {missing}"


def test_rule_label_matchers_use_declared_labels() -> None:
    """A matcher on a label the metric does not have silently matches nothing (or everything, for !=)."""
    from agent.catalog import all_metrics

    declared = {spec.name: set(spec.labels) for spec in all_metrics()}
    target_labels = {"instance", "job", "township", "site", "role"}
    declared.update({"up": set(), "ALERTS": {"alertname", "alertstate", "severity"}})
    selector = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
    matcher = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
    wrong = []
    checked = 0
    for rule in rules():
        for metric, body in selector.findall(rule["expr"]):
            if metric not in declared:
                continue  # relay metrics: checked against the relay's own tests
            for label in matcher.findall(body):
                checked += 1
                if label not in declared[metric] | target_labels:
                    wrong.append((rule.get("alert", rule.get("record")), metric, label))
    assert checked > 50
    assert not wrong, f"matchers on labels the metric does not carry: {wrong}"


def test_build_writes_durations_for_chinese_text() -> None:
    sys.path.insert(0, str(RULES_DIR))
    try:
        import build
    finally:
        sys.path.remove(str(RULES_DIR))
    assert build.zh_duration("5m") == "5 分钟"
    assert build.zh_duration("1h30m") == "1 小时 30 分钟"
    with pytest.raises(ValueError):
        build.zh_duration("5 minutes")


_JOB_LABEL = re.compile(r'(\bjob\s*=\s*)"shaobing"')


# relay_test.yml: the relay's own series; records_test.yml: recording rules only, no alert to replay.
@pytest.mark.parametrize("test_file", sorted(p.name for p in UNIT_TEST_DIR.glob("*.yml")
                                             if p.name not in ("relay_test.yml", "records_test.yml")))
def test_rules_ignore_node_exporters_series_in_the_same_prometheus(test_file: str, tmp_path: Path) -> None:
    """Every alert case of the unit tests again, with each of the agent's input series duplicated as a
    node_exporter job's (job="node", another instance): exactly the same alerts must fire, none for job="node"."""
    doc = yaml.safe_load((UNIT_TEST_DIR / test_file).read_text(encoding="utf-8"))
    doc["rule_files"] = [str((UNIT_TEST_DIR / f).resolve()) for f in doc["rule_files"]]
    kept = []
    for case in doc["tests"]:
        if not case.get("alert_rule_test"):
            continue
        twins = []
        for series in case.get("input_series", []):
            selector = series["series"]
            if _JOB_LABEL.search(selector):
                twin = _JOB_LABEL.sub(r'\1"node"', selector)
                twin = re.sub(r'(\binstance\s*=\s*")([^"]*)"', r'\1\2-node-exporter"', twin)
                twins.append({**series, "series": twin})
        if not twins:
            continue
        case = {k: v for k, v in case.items() if k != "promql_expr_test"}
        case["input_series"] = [*case["input_series"], *twins]
        kept.append(case)
    assert kept, "no alert case with agent series in this file"
    doc["tests"] = kept
    path = tmp_path / test_file
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    result = run_tool([PROMTOOL_BIN, "test", "rules", str(path)], timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_every_agent_series_in_the_shipped_rules_carries_the_selector() -> None:
    """build.py's selector pass leaves nothing to add in the committed files (it is idempotent on them), and
    the selector comes from thresholds.yml."""
    sys.path.insert(0, str(RULES_DIR))
    import build  # type: ignore[import-not-found]

    matcher = build.lookup(build.load_thresholds(), "selectors.agent")
    assert matcher == 'job="shaobing"'
    for name in RULE_FILES:
        text = (RULES_DIR / name).read_text(encoding="utf-8")
        assert build.select_agent_series(text, matcher) == text, name
    assert build.inject_selector('sum by (node_x) (node_a{mode="idle"}[5m]) / on(instance) node_b', matcher) == (
        'sum by (node_x) (node_a{job="shaobing",mode="idle"}[5m]) / on(instance) node_b{job="shaobing"}')
    from agent.collectors import registry

    agent_names = {m.name for cls in registry() for m in cls.metrics}
    assert all(build.is_agent_metric(n) for n in agent_names), sorted(n for n in agent_names
                                                                    if not build.is_agent_metric(n))
    assert build.inject_selector('shaobing_relay_up + instance:shaobing_host_up:max + shaobing_x{job="y"}', matcher) \
        == 'shaobing_relay_up + instance:shaobing_host_up:max + shaobing_x{job="y"}'
