"""Benchmark: the Shaobing agent beside Debian's prometheus-node-exporter, in one run, on loopback.

    .venv/bin/python bench/agent_vs_node_exporter.py [--settle 300] [--load 30] [--cycles 8]

Measures, for both, side by side:
  * RSS after ``--settle`` seconds of running (default 300 s = the issue's "after 5 minutes");
  * /metrics latency p50/p99 under one connection of steady load (wrk -t1 -c1 for ``--load`` seconds);
  * CPU per 15 s health cycle: the health collector's own CPU, read from the agent's
    ``shaobing_collector_cpu_seconds_total{collector="health"}`` over ``--cycles`` cycles, beside
    node_exporter's CPU per scrape (it collects when scraped); and the whole agent's CPU per 15 s with every
    default collector and no scrapes (what an idle township machine pays);
  * series count of one /metrics page.
Targets (issue 2): agent RSS <= 40 MB; agent p99 <= 0.3x node_exporter's; <= 20 ms CPU per health cycle.
Prints a Markdown table for docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAOBING = str(Path(sys.executable).with_name("shaobing"))
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(url)


def series(url: str) -> int:
    body = urllib.request.urlopen(url, timeout=10).read().decode()
    return sum(1 for line in body.splitlines() if line and not line.startswith("#"))


def collector_cpu(url: str, collector: str) -> float:
    body = urllib.request.urlopen(url, timeout=10).read().decode()
    m = re.search(rf'^shaobing_collector_cpu_seconds_total{{collector="{collector}"}} (\S+)$', body, re.M)
    if not m:
        raise RuntimeError(f"no CPU counter for {collector}")
    return float(m.group(1))


def wrk_latency(url: str, seconds: int) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, requests/s) from wrk with one thread and one connection."""
    out = subprocess.run(["wrk", "-t1", "-c1", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout

    def ms(pct: str) -> float:
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            raise RuntimeError(f"cannot parse wrk output:\n{out}")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return ms("50"), ms("99"), float(rps.group(1)) if rps else 0.0


def node_parity_cpu(cycles: int, warmup: int) -> tuple[float, float, int, int]:
    """Whole-process CPU per 15 s of the agent with only node_exporter's collector set (health, the node
    families, textfile) beside node_exporter, both scraped every 15 s for ``cycles`` cycles after ``warmup``
    seconds, in the same window: (agent s, node_exporter s, agent series, node_exporter series)."""
    sys.path.insert(0, str(ROOT))
    from agent.collectors import registry
    from agent.collectors.health import HealthCollector
    from agent.collectors.node.base import NodeFamily

    node = {c.name for c in registry() if issubclass(c, (NodeFamily, HealthCollector))} - {"systemd"}
    tmp = Path(tempfile.mkdtemp(prefix="shaobing-bench-node-"))
    agent_port, ne_port = free_port(), free_port()
    cols = "".join(f"  {c.name}: {{enabled: {'true' if c.name in node else 'false'}}}\n" for c in registry())
    (tmp / "agent.yml").write_text(f"listen_address: 127.0.0.1:{agent_port}\nstate_dir: {tmp / 'state'}\n"
                                   f"collectors:\n{cols}")
    agent = subprocess.Popen([SHAOBING, "agent", "run", "--config", str(tmp / "agent.yml")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ne = subprocess.Popen([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{ne_port}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    urls = (f"http://127.0.0.1:{agent_port}/metrics", f"http://127.0.0.1:{ne_port}/metrics")
    try:
        for url in urls:
            wait_http(url)
        time.sleep(warmup)
        before = cpu_seconds(agent.pid), cpu_seconds(ne.pid)
        start = time.monotonic()
        for i in range(cycles):
            for url in urls:
                urllib.request.urlopen(url, timeout=10).read()
            time.sleep(max(0.0, start + 15 * (i + 1) - time.monotonic()))
        after = cpu_seconds(agent.pid), cpu_seconds(ne.pid)
        counts = series(urls[0]), series(urls[1])
    finally:
        for p in (agent, ne):
            p.terminate()
            p.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    return (after[0] - before[0]) / cycles, (after[1] - before[1]) / cycles, counts[0], counts[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--settle", type=int, default=300, help="seconds to run before reading RSS")
    ap.add_argument("--load", type=int, default=30, help="seconds of wrk load per endpoint")
    ap.add_argument("--cycles", type=int, default=8, help="15 s health cycles to average CPU over")
    ap.add_argument("--node-cycles", type=int, default=8, help="15 s cycles for the node-parity CPU comparison")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    print(f"node parity: agent with node_exporter's collectors beside node_exporter, {args.node_cycles} cycles ...",
          file=sys.stderr)
    node_agent, node_ne, node_agent_series, node_ne_series = node_parity_cpu(args.node_cycles, 30)

    tmp = Path(tempfile.mkdtemp(prefix="shaobing-bench-"))
    agent_port, ne_port = free_port(), free_port()
    cfg = tmp / "agent.yml"
    # The default collectors, as a zero-config install runs them (the password audit's child process and
    # its CPU are excluded from the agent's numbers: it runs once a day at idle priority).
    cfg.write_text(f"listen_address: 127.0.0.1:{agent_port}\nstate_dir: {tmp / 'state'}\n")
    agent = subprocess.Popen([SHAOBING, "agent", "run", "--config", str(cfg)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ne = subprocess.Popen([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{ne_port}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        agent_url = f"http://127.0.0.1:{agent_port}/metrics"
        ne_url = f"http://127.0.0.1:{ne_port}/metrics"
        wait_http(agent_url)
        wait_http(ne_url)

        print(f"settling {args.settle}s ...", file=sys.stderr)
        time.sleep(args.settle)
        agent_rss, ne_rss = rss_bytes(agent.pid), rss_bytes(ne.pid)
        agent_series, ne_series = series(agent_url), series(ne_url)

        print(f"CPU over {args.cycles} health cycles without scrapes ...", file=sys.stderr)
        health_before = collector_cpu(agent_url, "health")
        before = cpu_seconds(agent.pid)
        time.sleep(15 * args.cycles)
        agent_cpu_cycle = (cpu_seconds(agent.pid) - before) / args.cycles
        health_cpu_cycle = (collector_cpu(agent_url, "health") - health_before) / args.cycles

        scrapes = 50
        before = cpu_seconds(ne.pid)
        for _ in range(scrapes):
            urllib.request.urlopen(ne_url, timeout=10).read()
        ne_cpu_scrape = (cpu_seconds(ne.pid) - before) / scrapes

        print(f"wrk {args.load}s each ...", file=sys.stderr)
        a50, a99, arps = wrk_latency(agent_url, args.load)
        n50, n99, nrps = wrk_latency(ne_url, args.load)
    finally:
        for p in (agent, ne):
            p.terminate()
            p.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    ne_version = subprocess.run([NODE_EXPORTER, "--version"], capture_output=True, text=True, timeout=10)
    ne_v = (ne_version.stdout + ne_version.stderr).splitlines()[0]
    print(f"\nnode_exporter: {ne_v}; {os.cpu_count()} cores; Python {sys.version.split()[0]}\n")
    print("| measure | shaobing agent | prometheus-node-exporter | target | met |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| RSS after {args.settle} s | {agent_rss / 2**20:.1f} MiB | {ne_rss / 2**20:.1f} MiB | <= 40 MB "
          f"| {'yes' if agent_rss <= 40e6 else 'no'} |")
    print(f"| /metrics p50 (wrk -t1 -c1, {args.load} s) | {a50:.3f} ms | {n50:.3f} ms | | |")
    print(f"| /metrics p99 | {a99:.3f} ms | {n99:.3f} ms | <= 0.3x node_exporter | "
          f"{'yes' if a99 <= 0.3 * n99 else 'no'} ({a99 / n99:.2f}x) |")
    print(f"| requests/s, one connection | {arps:.0f} | {nrps:.0f} | | |")
    print(f"| CPU per 15 s health cycle | {health_cpu_cycle * 1000:.1f} ms (health collector) "
          f"| {ne_cpu_scrape * 1000:.1f} ms per scrape | <= 20 ms | {'yes' if health_cpu_cycle <= 0.020 else 'no'} |")
    print(f"| whole process CPU per 15 s, idle (every default collector, no scrapes) | "
          f"{agent_cpu_cycle * 1000:.1f} ms | (collects only when scraped) | | |")
    print(f"| series per page | {agent_series} | {ne_series} | | |")
    ratio = node_agent / node_ne if node_ne else float("inf")
    print(f"| whole process CPU per 15 s, node_exporter's collector set only, both scraped every 15 s "
          f"({node_agent_series} vs {node_ne_series} series) | {node_agent * 1000:.1f} ms | {node_ne * 1000:.1f} ms "
          f"| <= 1.5x | {'yes' if ratio <= 1.5 else 'no'} ({ratio:.2f}x) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
