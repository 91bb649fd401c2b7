"""Read Shaobing's rule files and their promtool tests as data, for the cross-checks.

    rules()               every rule (alerting and recording) as a dict, with "file" and "group" added
    alert_keys()          {(alertname, severity)} defined by the rule files
    rule_metric_names()   every metric name used by a rule expression (for the catalogue cross-check)
    unit_test_cases()     every alert_rule_test case of alert_rules/tests/*.yml

The lead's catalogue cross-check imports rule_metric_names() from here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "alert_rules"
RULE_FILES = ("health.yml", "currency.yml", "security.yml", "agent.yml", "relay.yml", "records.yml")
UNIT_TEST_DIR = RULES_DIR / "tests"

# Series that Prometheus itself makes; they are in no exporter's catalogue.
PROMETHEUS_SERIES = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})

_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
        "atan2",
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w:.])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])(\s*\()?")


def rules() -> list[dict[str, Any]]:
    out = []
    for name in RULE_FILES:
        doc = yaml.safe_load((RULES_DIR / name).read_text(encoding="utf-8"))
        for group in doc["groups"]:
            for rule in group["rules"]:
                out.append({**rule, "file": name, "group": group["name"]})
    return out


def alert_keys() -> set[tuple[str, str]]:
    return {(r["alert"], r["labels"]["severity"]) for r in rules() if "alert" in r}


def expr_metric_names(expr: str) -> set[str]:
    """Metric names in one PromQL expression: identifiers that are not functions, keywords or label names."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _IDENT.finditer(text):
        ident, call = match.group(1), match.group(2)
        if call or ident.lower() in _KEYWORDS:
            continue
        names.add(ident)
    return names


def rule_metric_names(include_records: bool = False) -> set[str]:
    """Every metric a rule reads. Recorded series (level:metric:op) are left out unless asked for."""
    names: set[str] = set()
    for rule in rules():
        names |= expr_metric_names(rule["expr"])
    if not include_records:
        names = {n for n in names if ":" not in n}
    return names


def unit_test_cases() -> list[dict[str, Any]]:
    cases = []
    for path in sorted(UNIT_TEST_DIR.glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for test in doc.get("tests", []):
            for case in test.get("alert_rule_test", []) or []:
                cases.append({**case, "file": path.name, "test": test.get("name", "")})
    return cases
