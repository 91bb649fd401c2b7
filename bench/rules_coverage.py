#!/usr/bin/env python3
"""How many of the community's host alert and recording rules have data from the agent, beside Debian's
node_exporter, in one real Prometheus scraping both on this machine.

    sudo .venv/bin/python bench/rules_coverage.py --node-mixin DIR --awesome FILE [--warmup 90]

Rule sets (not shipped; fetch them):
  * node-mixin: ``docs/node-mixin`` of github.com/prometheus/node_exporter, rendered here with ``jsonnet``
    (Debian package ``jsonnet``) once per job through its own ``nodeExporterSelector`` -- the way docs/alerts.md
    tells users to run it on the agent;
  * awesome-prometheus-alerts: ``dist/rules/host-and-hardware/node-exporter.yml`` of
    github.com/samber/awesome-prometheus-alerts. Its expressions name no job; every ``node_*`` selector gets the
    job's matcher.

Each expression is run as an instant query with its thresholds removed: every comparison outside braces gets
``bool``, so it answers 0 or 1 for every series it compares instead of filtering them out. An expression "has
data" for a job when the query returns at least one series. Prints how many have data for each job and the
ones node_exporter answers and the agent does not.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.agent import AgentProcess  # noqa: E402
from tests.support.prometheus import PrometheusServer, free_port, prometheus_config, scrape_config  # noqa: E402

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
JOBS = ("shaobing", "node")
_RENDER = """
local m = (import 'config.libsonnet') + (import 'alerts/alerts.libsonnet') + (import 'rules/rules.libsonnet') + {
  _config+:: { nodeExporterSelector: std.extVar('selector') },
};
{ alerts: m.prometheusAlerts, rules: m.prometheusRules }
"""


def without_thresholds(expr: str) -> str:
    """``bool`` after every comparison operator outside ``{...}`` and string literals."""
    out: list[str] = []
    depth, i, quote = 0, 0, ""
    while i < len(expr):
        c = expr[i]
        if quote:
            out.append(c)
            if c == "\\" and i + 1 < len(expr):
                out.append(expr[i + 1])
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'`":
            quote = c
            out.append(c)
        elif c == "{":
            depth += 1
            out.append(c)
        elif c == "}":
            depth -= 1
            out.append(c)
        elif depth == 0 and c in "<>=!":
            op = expr[i:i + 2] if expr[i:i + 2] in ("<=", ">=", "==", "!=") else c
            if op in ("=", "!"):  # not a comparison (cannot occur outside braces in valid PromQL)
                out.append(c)
            else:
                out.append(op)
                i += len(op)
                if not re.match(r"\s*bool\b", expr[i:]):
                    out.append(" bool")
                continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def with_job(expr: str, job: str) -> str:
    """The job's matcher in every ``node_*`` selector (awesome-prometheus-alerts' expressions name no job)."""
    def one(m: re.Match[str]) -> str:
        name, brace = m.group(1), m.group(2)
        return f'{name}{{job="{job}",' if brace else f'{name}{{job="{job}"}}'
    return re.sub(r"\b(node_[A-Za-z0-9_:]+)\b(\{)?", one, expr)


def node_mixin(directory: Path, job: str) -> list[tuple[str, str]]:
    doc = json.loads(subprocess.run(
        ["jsonnet", "-J", str(directory), "--ext-str", f'selector=job="{job}"', "-"], input=_RENDER,
        capture_output=True, text=True, timeout=120, check=True, cwd=directory).stdout)
    found = []
    for kind in ("alerts", "rules"):
        for group in doc[kind]["groups"]:
            for rule in group["rules"]:
                found.append((f"{kind}:{rule.get('alert') or rule.get('record')}", str(rule["expr"])))
    return found


def awesome(path: Path, job: str) -> list[tuple[str, str]]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [(f"awesome:{r['alert']}", with_job(str(r["expr"]), job))
            for g in doc["groups"] for r in g["rules"] if "alert" in r]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--node-mixin", type=Path, required=True, help="docs/node-mixin of node_exporter")
    ap.add_argument("--awesome", type=Path, required=True, help="dist/rules/host-and-hardware/node-exporter.yml")
    ap.add_argument("--warmup", type=float, default=90.0, help="seconds of scraping before querying")
    args = ap.parse_args()
    sets = {job: node_mixin(args.node_mixin, job) + awesome(args.awesome, job) for job in JOBS}
    tmp = Path(tempfile.mkdtemp(prefix="shaobing-rules-"))
    ne_port = free_port()
    ne = subprocess.Popen([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{ne_port}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    agent = AgentProcess(tmp / "agent", {"collectors": {"health": {"interval": "5s"}}}).start()
    targets = {"shaobing": agent.target, "node": f"127.0.0.1:{ne_port}"}
    prom = PrometheusServer(tmp / "prom", prometheus_config(
        [scrape_config(job, [target], interval="5s") for job, target in targets.items()], interval="5s"))
    try:
        prom.start()
        for job in JOBS:
            prom.wait_for_targets(job=job, health="up", timeout=60)
        time.sleep(args.warmup)
        has: dict[str, dict[str, bool]] = {}
        refused: list[str] = []
        for job in JOBS:
            has[job] = {}
            for name, expr in sets[job]:
                try:
                    has[job][name] = bool(prom.query(without_thresholds(expr)))
                except Exception as exc:  # noqa: BLE001 - a query Prometheus rejects counts as no data, and is listed
                    refused.append(f"{job} {name}: {exc}")
                    has[job][name] = False
        names = [name for name, _ in sets["node"]]
        print(f"rules: {len(names)}; queries Prometheus refused: {len(refused)}")
        for line in refused:
            print("  refused:", line)
        print("| rule set | agent (job shaobing) | node_exporter (job node) | agent / node_exporter's |")
        print("| --- | --- | --- | --- |")
        for label, prefix in (("node-mixin alerts", "alerts:"), ("node-mixin recording rules", "rules:"),
                              ("awesome-prometheus-alerts host rules", "awesome:")):
            part = [n for n in names if n.startswith(prefix)]
            a = sum(has["shaobing"][n] for n in part)
            ne_count = sum(has["node"][n] for n in part)
            both = sum(has["shaobing"][n] and has["node"][n] for n in part)
            print(f"| {label} | {a}/{len(part)} | {ne_count}/{len(part)} | {both}/{ne_count} |")
        missing = [n for n in names if has["node"][n] and not has["shaobing"][n]]
        print(f"\n{len(missing)} rules node_exporter answers and the agent does not:")
        exprs = dict(sets["node"])
        for name in missing:
            metrics = sorted(set(re.findall(r"\b(node_[a-zA-Z0-9_]+)", exprs[name])))
            print(f"  - {name}: {', '.join(metrics)}")
        extra = [n for n in names if has["shaobing"][n] and not has["node"][n]]
        print(f"{len(extra)} rules the agent answers and node_exporter does not: {', '.join(extra) or '-'}")
        return 0
    finally:
        prom.stop()
        agent.stop()
        ne.terminate()
        ne.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
