#!/usr/bin/env python3
"""How much of the community's "Node Exporter Full" dashboard (grafana.com 1860) has data from the agent, beside
Debian's node_exporter, in one real Prometheus scraping both on this machine.

    sudo .venv/bin/python bench/dashboard_coverage.py --dashboard node-exporter-full.json [--warmup 60]

The dashboard JSON is not shipped (LGPL-3.0, rfmoz/grafana-dashboards): download it from
https://grafana.com/api/dashboards/1860/revisions/latest/download or that repository's
prometheus/node-exporter-full.json. Every panel target is run as an instant query with $job set to the
agent's job ("shaobing") or node_exporter's ("node"), $node to that job's instance and $__rate_interval to 1m;
a target "has data" when the query returns at least one series. Prints targets and panels with data for each,
and the targets node_exporter fills and the agent does not (the families still missing).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.agent import AgentProcess  # noqa: E402
from tests.support.prometheus import PrometheusServer, free_port, prometheus_config, scrape_config  # noqa: E402

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"


def targets(dashboard: dict[str, object]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []

    def walk(panels: object) -> None:
        for panel in panels if isinstance(panels, list) else []:
            walk(panel.get("panels", []))
            for row in panel.get("rows", []) if isinstance(panel.get("rows"), list) else []:
                walk(row.get("panels", []))
            for target in panel.get("targets", []) or []:
                if isinstance(target, dict) and target.get("expr") and not target.get("hide"):
                    out.append((str(panel.get("title", "")), str(target["expr"])))

    walk(dashboard.get("panels", []))
    walk([{"panels": r.get("panels", [])} for r in dashboard.get("rows", []) or []])  # type: ignore[union-attr]
    return out


def substitute(expr: str, job: str, instance: str) -> str:
    expr = re.sub(r"\$\{?__rate_interval\}?|\$\{?__interval\}?|\$\{?__range\}?", "1m", expr)
    expr = re.sub(r"\$\{?job\}?", job, expr)
    return re.sub(r"\$\{?node\}?", instance, expr)  # "." in a =~ matcher matches itself too


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dashboard", type=Path, required=True)
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds of scraping before querying")
    args = ap.parse_args()
    dashboard = json.loads(args.dashboard.read_text(encoding="utf-8"))
    found = targets(dashboard)
    tmp = Path(tempfile.mkdtemp(prefix="shaobing-1860-"))
    ne_port = free_port()
    ne = subprocess.Popen([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{ne_port}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    agent = AgentProcess(tmp / "agent", {"collectors": {"health": {"interval": "5s"}}}).start()
    jobs = {"shaobing": agent.target, "node": f"127.0.0.1:{ne_port}"}
    prom = PrometheusServer(tmp / "prom", prometheus_config(
        [scrape_config(job, [target], interval="5s") for job, target in jobs.items()], interval="5s"))
    try:
        prom.start()
        prom.wait_for_targets(job="shaobing", health="up", timeout=60)
        prom.wait_for_targets(job="node", health="up", timeout=60)
        time.sleep(args.warmup)
        has: dict[str, list[bool]] = {}
        errors = 0
        for job, instance in jobs.items():
            row = []
            for _, expr in found:
                try:
                    row.append(bool(prom.query(substitute(expr, job, instance))))
                except Exception:  # noqa: BLE001 - a query Prometheus rejects counts as no data, and is listed
                    errors += 1
                    row.append(False)
            has[job] = row
        panels: dict[str, dict[str, bool]] = {}
        for i, (title, _) in enumerate(found):
            for job in jobs:
                panels.setdefault(title, {}).setdefault(job, False)
                panels[title][job] |= has[job][i]
        print(f"dashboard: {dashboard.get('title')} (version {dashboard.get('version')}), {len(found)} targets, "
              f"{len(panels)} panels; queries Prometheus refused: {errors}")
        print("| | agent (job shaobing) | node_exporter (job node) |")
        print("| --- | --- | --- |")
        for what, count in (("targets with data", lambda j: sum(has[j])),
                            ("panels with data", lambda j: sum(p[j] for p in panels.values()))):
            total = len(found) if what.startswith("targets") else len(panels)
            a, n = count("shaobing"), count("node")
            print(f"| {what} | {a}/{total} ({100 * a / total:.0f} %) | {n}/{total} ({100 * n / total:.0f} %) |")
        missing = [found[i] for i in range(len(found)) if has["node"][i] and not has["shaobing"][i]]
        print(f"\n{len(missing)} targets node_exporter fills and the agent does not:")
        for title, expr in missing:
            names = sorted(set(re.findall(r"\b(node_[a-zA-Z0-9_]+)", expr)))
            print(f"  - {title}: {', '.join(names)}")
        return 0
    finally:
        prom.stop()
        agent.stop()
        ne.terminate()
        ne.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
