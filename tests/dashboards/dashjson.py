"""Reading the committed dashboard JSON for tests: panels, queries, variables, and the metrics a query names."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
JSON_DIR = REPO / "dashboards" / "json"
PROVISIONING = REPO / "deploy" / "central" / "grafana" / "provisioning"

# Variables Grafana defines itself; anything else a query or link uses must be declared by the dashboard.
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range", "__data", "__value", "__url_time_range", "__all"}

_VAR_RE = re.compile(r"\$\{(\w+)(?:[.:][^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")
_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_BRACES_RE = re.compile(r"\{[^}]*\}")
_BRACKETS_RE = re.compile(r"\[[^\]]*\]")
_GROUPING_RE = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NUMBER_RE = re.compile(r"(?<![\w:])[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_IDENT_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "inf", "nan", "Inf", "NaN",
}  # fmt: skip


@dataclass(frozen=True)
class Target:
    uid: str
    panel: str
    ref_id: str
    expr: str
    instant: bool = False

    def __str__(self) -> str:
        return f"{self.uid} / {self.panel} / {self.ref_id}: {self.expr}"


def load_all(directory: Path = JSON_DIR) -> dict[str, dict[str, Any]]:
    """uid -> dashboard document, for every committed JSON file."""
    out = {}
    for path in sorted(directory.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        out[doc["uid"]] = doc
    return out


def panels(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included (rows themselves too)."""
    for panel in doc.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def targets(uid: str, doc: dict[str, Any]) -> Iterator[Target]:
    for panel in panels(doc):
        for target in panel.get("targets", []):
            yield Target(
                uid, panel.get("title", ""), target.get("refId", ""), target["expr"], bool(target.get("instant"))
            )


def all_targets(docs: dict[str, dict[str, Any]]) -> list[Target]:
    return [t for uid, doc in docs.items() for t in targets(uid, doc)]


def variables_used(text: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in _VAR_RE.finditer(text)}


def walk_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from walk_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_strings(value)


def walk_dicts(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk_dicts(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_dicts(value)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions, keywords or labels."""
    text = _STRING_RE.sub(" ", expr)
    text = _BRACES_RE.sub(" ", text)
    text = _BRACKETS_RE.sub(" ", text)
    text = _GROUPING_RE.sub(" ", text)
    text = _NUMBER_RE.sub(" ", text)
    names = set()
    for match in _IDENT_RE.finditer(text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group() in _KEYWORDS:
            continue  # a function or aggregation call, or an operator keyword
        names.add(match.group())
    return names


def substitute(expr: str, instance: str) -> str:
    """What Grafana would send: variables replaced by values that select the test's one agent."""
    values = {
        "township": ".*",
        "instance": instance,
        "__rate_interval": "1m",
        "__interval": "15s",
        "__range": "1h",
    }

    def repl(m: re.Match[str]) -> str:
        name = next(g for g in m.groups() if g)
        if name not in values:
            raise KeyError(f"no test value for variable ${name} in {expr!r}")
        return values[name]

    return _VAR_RE.sub(repl, expr)


def label_values_query(query: Any) -> tuple[str, str]:
    """A template variable's ``label_values(selector, label)`` as (selector, label)."""
    text = query if isinstance(query, str) else query.get("query", "")
    m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", text)
    if not m:
        raise ValueError(f"not a label_values() query: {text!r}")
    return m.group(1), m.group(2)
