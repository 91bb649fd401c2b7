"""The generator is deterministic, the committed JSON is current, and it is well-formed for Grafana."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dashboards.dashjson import (
    GRAFANA_BUILTINS,
    JSON_DIR,
    PROVISIONING,
    REPO,
    all_targets,
    label_values_query,
    load_all,
    metric_names,
    panels,
    variables_used,
    walk_dicts,
    walk_strings,
)

if sys.version_info < (3, 11):  # the dashboards extra needs Python >= 3.11; the agent supports 3.9
    pytest.skip("grafana-foundation-sdk needs Python >= 3.11", allow_module_level=True)

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import dashboard as dash_m
from grafana_foundation_sdk.models import prometheus as prom_m

from dashboards.panels import DATASOURCE_UID
from dashboards.render import BUILDERS, build_all
from dashboards.thresholds import Thresholds, ThresholdsError, load_thresholds

EXPECTED_UIDS = {"shaobing-fleet", "shaobing-host", "shaobing-security", "shaobing-self"}
DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
DECLARED_VARIABLES = {"datasource", "township", "instance"}
# Series Prometheus itself makes, allowed in dashboards without being in the agent's catalogue.
PROMETHEUS_BUILTINS = {"up", "scrape_duration_seconds", "ALERTS"}


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    return load_all()


def test_generator_is_deterministic_and_committed_json_is_current(tmp_path: Path) -> None:
    first = build_all()
    assert first == build_all(), "two runs of the generator differ"
    result = subprocess.run(
        [sys.executable, "-m", "dashboards", "--output", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    generated = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in JSON_DIR.glob("*.json"))
    assert generated == committed == sorted(first)
    for name in generated:
        assert (tmp_path / name).read_bytes() == (JSON_DIR / name).read_bytes(), (
            f"dashboards/json/{name} is out of date: run `python -m dashboards` and commit"
        )
    check = subprocess.run(
        [sys.executable, "-m", "dashboards", "--check"], cwd=REPO, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "dashboards", "--output", str(tmp_path)], cwd=REPO, check=True, timeout=120)
    (tmp_path / "shaobing-host.json").write_text("{}\n", encoding="utf-8")
    check = subprocess.run(
        [sys.executable, "-m", "dashboards", "--check", "--output", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert check.returncode == 1
    assert "shaobing-host.json" in check.stderr


def test_stable_uids_and_chinese_titles(docs: dict[str, dict[str, Any]]) -> None:
    assert set(docs) == EXPECTED_UIDS == set(BUILDERS)
    for uid, doc in docs.items():
        assert any("\u4e00" <= ch <= "\u9fff" for ch in doc["title"]), uid
        for panel in panels(doc):
            assert any("\u4e00" <= ch <= "\u9fff" for ch in panel["title"]), (uid, panel["title"])
            if panel["type"] != "row":
                assert panel.get("description"), f"{uid}: panel {panel['title']!r} has no description"


def test_round_trip_through_the_sdk_models(docs: dict[str, dict[str, Any]]) -> None:
    register_default_plugins()
    for uid, doc in docs.items():
        model = dash_m.Dashboard.from_json(doc)
        again = json.loads(json.dumps(model, cls=JSONEncoder))
        assert again == doc, f"{uid} does not survive Dashboard.from_json -> to_json"
        for panel in model.panels or []:
            if isinstance(panel, dash_m.RowPanel):
                continue
            # Typed, not a raw dict: the SDK recognised the panel's options and every query.
            assert not isinstance(panel.options, dict), (uid, panel.title, panel.type_val)
            for target in panel.targets or []:
                assert isinstance(target, prom_m.Dataquery), (uid, panel.title)


def test_layout_ids_and_grid(docs: dict[str, dict[str, Any]]) -> None:
    for uid, doc in docs.items():
        ids = [p["id"] for p in panels(doc)]
        assert len(ids) == len(set(ids)), f"{uid}: duplicate panel ids"
        for panel in panels(doc):
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, (uid, panel["title"], pos)


def test_only_the_declared_datasource_and_variables(docs: dict[str, dict[str, Any]]) -> None:
    provisioned = yaml.safe_load((PROVISIONING / "datasources" / "shaobing.yml").read_text(encoding="utf-8"))
    (datasource,) = provisioned["datasources"]
    assert datasource["uid"] == DATASOURCE_UID and datasource["type"] == "prometheus"
    for uid, doc in docs.items():
        declared = {v["name"]: v for v in doc["templating"]["list"]}
        assert set(declared) == DECLARED_VARIABLES, uid
        assert declared["datasource"]["query"] == "prometheus"
        assert declared["datasource"]["current"]["value"] == DATASOURCE_UID
        for node in walk_dicts(doc):
            if "datasource" in node:
                assert node["datasource"] == DATASOURCE_REF, f"{uid}: {node.get('title', node)}"
        for text in walk_strings(doc):
            unknown = variables_used(text) - DECLARED_VARIABLES - GRAFANA_BUILTINS
            assert not unknown, f"{uid}: undeclared variable(s) {unknown} in {text!r}"
        for name in ("township", "instance"):
            selector, label = label_values_query(declared[name]["query"])
            assert label == name and 'job="shaobing"' in selector


def test_every_panel_has_a_query_and_links_reach_host_detail(docs: dict[str, dict[str, Any]]) -> None:
    for uid, doc in docs.items():
        for panel in panels(doc):
            if panel["type"] != "row":
                assert panel.get("targets"), (uid, panel["title"])
    fleet_links = [s for s in walk_strings(docs["shaobing-fleet"]) if s.startswith("/d/shaobing-host/")]
    assert fleet_links and all("var-instance=${__value.raw}" in s for s in fleet_links)
    # The link sits on the column that holds the instance label (renamed for display).
    for panel in panels(docs["shaobing-fleet"]):
        for override in panel.get("fieldConfig", {}).get("overrides", []):
            links = [p for p in override["properties"] if p["id"] == "links"]
            if links and links[0]["value"][0]["url"].startswith("/d/shaobing-host/"):
                renames = [t["options"]["renameByName"] for t in panel["transformations"] if t["id"] == "organize"]
                assert renames[0]["instance"] == override["matcher"]["options"], panel["title"]


def _catalogue() -> set[str]:
    from agent.catalog import all_metrics
    from relay.metrics import CATALOGUE as RELAY_CATALOGUE

    return {m.name for m in all_metrics()} | set(RELAY_CATALOGUE)


def _recording_rules() -> set[str]:
    doc = yaml.safe_load((REPO / "alert_rules" / "records.yml").read_text(encoding="utf-8"))
    return {rule["record"] for group in doc["groups"] for rule in group["rules"] if "record" in rule}


def test_every_metric_is_in_the_catalogue(docs: dict[str, dict[str, Any]]) -> None:
    known = _catalogue() | _recording_rules() | PROMETHEUS_BUILTINS
    missing: dict[str, str] = {}
    for target in all_targets(docs):
        for name in metric_names(target.expr) - known:
            missing.setdefault(name, str(target))
    assert not missing, "metrics not in agent.catalog / relay.metrics / records.yml:\n" + "\n".join(
        f"  {name}  ({where})" for name, where in sorted(missing.items())
    )


def test_metric_name_extraction() -> None:
    expr = (
        'sum by (township) (rate(node_cpu_seconds_total{job="shaobing",mode!="idle"}[5m])) / scalar(count(up))'
        ' or 0 * township:shaobing_hosts:count{township=~"a|b"} * on (instance) group_left (kind) x_info > 1e3'
    )
    assert metric_names(expr) == {"node_cpu_seconds_total", "up", "township:shaobing_hosts:count", "x_info"}


def test_thresholds_come_from_the_alert_rules_file(docs: dict[str, dict[str, Any]]) -> None:
    t = load_thresholds()
    tls_warn = t.number("probes.tls_expiry_warning_days")
    host = json.dumps(docs["shaobing-host"], ensure_ascii=False)
    assert f'"value": {tls_warn:g}' in host or f'"value": {float(tls_warn)}' in host
    # Change one threshold: the rendered dashboards follow, so there is no second copy of the number.
    data = json.loads(json.dumps(t.data))
    data["probes"]["tls_expiry_warning_days"] = 41
    data["records"]["filesystem_usage_ratio"] = 0.83
    changed = build_all(Thresholds(t.source, data))
    assert '"value": 41' in changed["shaobing-host.json"]
    assert "83%" in changed["shaobing-fleet.json"]
    assert "83%" not in build_all(t)["shaobing-fleet.json"]


def test_missing_threshold_key_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "thresholds.yml"
    bad.write_text("probes: {}\n", encoding="utf-8")
    with pytest.raises(ThresholdsError, match=r"thresholds.yml: key 'records.filesystem_usage_ratio' not found"):
        build_all(load_thresholds(bad))
    bad.write_text("- not a mapping\n", encoding="utf-8")
    with pytest.raises(ThresholdsError, match="expected a mapping"):
        load_thresholds(bad)


def test_dashboard_provider_points_at_the_json_directory() -> None:
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "shaobing.yml").read_text(encoding="utf-8"))
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["allowUiUpdates"] is False
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/shaobing"


def test_password_finding_reasons_match_the_agent() -> None:
    from agent.collectors.passwords import _RISKY  # the agent's own list of reasons that are findings
    from dashboards.variables import RISKY_PASSWORD

    assert set(RISKY_PASSWORD.split('"')[1].split("|")) == set(_RISKY)
