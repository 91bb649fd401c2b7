"""Fleet simulator and capacity benchmark: N simulated agents on loopback, a real Prometheus scraping them, and
Debian's VictoriaMetrics fed by Prometheus' remote_write.

    python bench/fleet_sim.py capture                   # re-capture bench/fleet_exposition.prom (shaobing agent once)
    python bench/fleet_sim.py serve --hosts 1000        # only the simulator (one process), until Ctrl-C
    python bench/fleet_sim.py run --hosts 1000 5000 --measure 120 [--json bench/fleet_results.json]

The exposition is one real agent run (``shaobing agent once``), with per-CPU series cloned up to ``--cpus``
(a township server has more cores than the capture machine). Every host gets its own address on loopback
(127.20.x.y, one listening socket each) so Prometheus sees N distinct targets, exactly as in production; each
scrape varies the values per host and per scrape (gauges wander, counters grow at a per-host rate), so the
TSDB compresses realistic data rather than constants.

``run`` measures, for each N: ingestion (samples/s, head series), scrape duration, rule-evaluation time of
the real alert_rules/ groups, the fleet dashboard's queries (instant + range, taken from
dashboards/json/shaobing-fleet.json) against Prometheus and against VictoriaMetrics, and the memory and CPU of
Prometheus, VictoriaMetrics and the simulator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CAPTURE = REPO / "bench" / "fleet_exposition.prom"
HOSTS_PER_TOWNSHIP = 25
SIM_PORT = 10130
RULE_FILES = ["health.yml", "currency.yml", "security.yml", "agent.yml", "relay.yml", "records.yml"]

_LINE_RE = re.compile(rb"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$")


# ------------------------------------------------------------------------------------------- exposition


def host_address(i: int) -> str:
    return f"127.20.{i // 250}.{i % 250 + 1}"


class Template:
    """The captured page split into fixed series text and varying numbers."""

    def __init__(self, text: bytes, cpus: int) -> None:
        counters: set[bytes] = set()
        lines = text.splitlines()
        for line in lines:
            if line.startswith(b"# TYPE ") and line.endswith(b" counter"):
                counters.add(line.split()[2])
        lines = self._clone_cpus(lines, cpus)
        self.started = time.time()
        # (prefix "name{labels} ", base value, kind): kind is counter, timestamp, or gauge
        self.series: list[tuple[bytes, float, str]] = []
        self.comments: dict[int, bytes] = {}
        for line in lines:
            if line.startswith(b"#") or not line.strip():
                self.comments[len(self.series)] = self.comments.get(len(self.series), b"") + line + b"\n"
                continue
            m = _LINE_RE.match(line)
            if not m:
                continue
            value = float(m.group(3))
            name = m.group(1)
            kind = "counter" if name in counters else "timestamp" if name.endswith(b"timestamp_seconds") else "gauge"
            self.series.append((name + (m.group(2) or b"") + b" ", value, kind))

    @staticmethod
    def _clone_cpus(lines: list[bytes], cpus: int) -> list[bytes]:
        have = {m.group(1) for ln in lines for m in [re.search(rb'cpu="(\d+)"', ln)] if m}
        if cpus <= len(have):
            return lines
        out: list[bytes] = []
        for ln in lines:
            out.append(ln)
            if b'cpu="0"' in ln:
                out.extend(ln.replace(b'cpu="0"', b'cpu="%d"' % c) for c in range(len(have), cpus))
        return out

    def render(self, host: int, now: float) -> bytes:
        parts: list[bytes] = []
        phase = host * 0.7
        rate = 0.5 + (host % 17) / 10.0
        for idx, (prefix, base, kind) in enumerate(self.series):
            comment = self.comments.get(idx)
            if comment:
                parts.append(comment)
            if kind == "counter":
                value = base + rate * (now - self.started) * (1 + idx % 5)
            elif kind == "timestamp":  # last-success times and the like: recent
                value = now - (idx % 7) if base > 1e9 else base
            elif base in (0.0, 1.0) or base > 1e9:  # booleans, info series, boot time: constant
                value = base
            else:
                value = base * (1 + 0.1 * math.sin(now / 300 + phase + idx))
            parts.append(prefix + repr(round(value, 6)).encode() + b"\n")
        tail = self.comments.get(len(self.series))
        if tail:
            parts.append(tail)
        return b"".join(parts)


# ------------------------------------------------------------------------------------------- simulator


async def _serve(template: Template, hosts: int, port: int, ready: asyncio.Event) -> None:
    by_address = {host_address(i): i for i in range(hosts)}
    served = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = by_address.get(writer.get_extra_info("sockname")[0], 0)
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                if not request:
                    break
                body = template.render(host, time.time())
                served[0] += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    servers = []
    for address in by_address:
        servers.append(await asyncio.start_server(handle, address, port, backlog=16, reuse_address=True))
    ready.set()
    print(f"serving {hosts} hosts on 127.20.0.1-{host_address(hosts - 1)}:{port}", flush=True)
    await asyncio.Event().wait()


def cmd_serve(args: argparse.Namespace) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.hosts * 3 + 1024)), hard))
    template = Template(CAPTURE.read_bytes(), args.cpus)
    # 5,000 transports take long to close one by one; a benchmark server has nothing to flush.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    try:
        asyncio.run(_serve(template, args.hosts, args.port, asyncio.Event()))
    except (KeyboardInterrupt, SystemExit):
        pass
    return 0


def cmd_capture(args: argparse.Namespace) -> int:
    shaobing = Path(sys.executable).with_name("shaobing")
    proc = subprocess.run([str(shaobing), "agent", "once"], capture_output=True, timeout=300, check=False)
    if not proc.stdout:
        print(proc.stderr.decode(errors="replace"), file=sys.stderr)
        return 1
    CAPTURE.write_bytes(proc.stdout)
    print(f"{CAPTURE}: {sum(1 for ln in proc.stdout.splitlines() if ln and not ln.startswith(b'#'))} series")
    return 0


# ------------------------------------------------------------------------------------------- measurement


def _get(url: str, params: list[tuple[str, str]], timeout: float = 60) -> Any:
    full = url + "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(full, timeout=timeout) as resp:
        return json.loads(resp.read())


def _scalar(base: str, expr: str) -> float:
    try:
        doc = _get(base + "/api/v1/query", [("query", expr)], timeout=120)
    except OSError:
        return float("nan")
    result = doc["data"]["result"]
    return float(result[0]["value"][1]) if result else float("nan")


def fleet_queries() -> list[str]:
    doc = json.loads((REPO / "dashboards" / "json" / "shaobing-fleet.json").read_text(encoding="utf-8"))
    exprs: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                if t.get("expr"):
                    exprs.append(t["expr"].replace("$township", ".*").replace("$instance", ".*")
                                 .replace("$__rate_interval", "1m"))

    walk(doc["panels"])
    return exprs


def _timed(url: str, params: list[tuple[str, str]], timeout: float) -> float | None:
    """Milliseconds for one API call, or None when it failed or took longer than ``timeout``."""
    t0 = time.perf_counter()
    try:
        _get(url, params, timeout=timeout)
    except OSError:
        return None
    return (time.perf_counter() - t0) * 1000


def time_queries(base: str, exprs: list[str], end: float, repeat: int = 3, timeout: float = 30,
                 budget: float = 240) -> dict[str, Any]:
    """The whole fleet dashboard, every panel query in turn (as one Grafana refresh), instant and 1 h range at
    15 s steps: median total ms over ``repeat`` refreshes, the slowest single query, and queries that failed
    or exceeded ``timeout`` (Grafana's default data-source timeout is 30 s). Stops repeating after ``budget``
    seconds, so an overloaded server bounds the benchmark's run time."""
    totals: dict[str, list[float]] = {"instant": [], "range_1h": []}
    slowest = 0.0
    failed = 0
    started = time.monotonic()
    for _ in range(repeat):
        if time.monotonic() - started > budget:
            break
        for kind in totals:
            total = 0.0
            for e in exprs:
                params = [("query", e), ("time", f"{end:.3f}")] if kind == "instant" else [
                    ("query", e), ("start", f"{end - 3600:.0f}"), ("end", f"{end:.0f}"), ("step", "15")]
                ms = _timed(base + ("/api/v1/query" if kind == "instant" else "/api/v1/query_range"), params,
                            timeout)
                if ms is None:
                    failed += 1
                    ms = timeout * 1000
                total += ms
                slowest = max(slowest, ms)
            totals[kind].append(total)
    return {"instant_ms": round(statistics.median(totals["instant"])),
            "range_1h_ms": round(statistics.median(totals["range_1h"])),
            "slowest_query_ms": round(slowest), "failed_or_timed_out": failed, "queries": len(exprs)}


def _proc_stats(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds) of a process from /proc."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return rss, cpu


def run_size(hosts: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from tests.deploy.servers import VictoriaMetrics
    from tests.support.prometheus import PrometheusServer

    remote_write = not args.no_remote_write
    sim = subprocess.Popen([sys.executable, __file__, "serve", "--hosts", str(hosts), "--cpus", str(args.cpus),
                            "--port", str(args.port)], stdout=subprocess.PIPE, text=True, start_new_session=True)
    vm = VictoriaMetrics(workdir / "vm", extra=("-dedup.minScrapeInterval=15s",))
    prom = None
    try:
        assert sim.stdout is not None
        print(sim.stdout.readline().strip(), flush=True)
        if remote_write:
            vm.start()
        targets = [{"targets": [f"{host_address(i)}:{args.port}"],
                    "labels": {"township": f"乡镇{i // HOSTS_PER_TOWNSHIP:03d}", "role": "web" if i % 3 else "db",
                               "host": f"h{i:05d}"}} for i in range(hosts)]
        rules_dir = workdir / "prom"
        rules_dir.mkdir(parents=True, exist_ok=True)
        files = {"targets.json": json.dumps(targets)}
        for name in RULE_FILES:
            files[f"alert_rules/{name}"] = (REPO / "alert_rules" / name).read_text(encoding="utf-8")
        config = {
            "global": {"scrape_interval": "15s", "scrape_timeout": "10s", "evaluation_interval": "15s"},
            "rule_files": [f"alert_rules/{n}" for n in RULE_FILES],
            "scrape_configs": [
                {"job_name": "shaobing", "file_sd_configs": [{"files": ["targets.json"]}]},
            ],
        }
        if remote_write:
            config["remote_write"] = [{"url": f"{vm.url}/api/v1/write",
                                       "queue_config": {"capacity": 20000, "max_shards": 30,
                                                        "max_samples_per_send": 5000}}]
        prom = PrometheusServer(rules_dir, config, files=files)
        prom.start(timeout=60)
        base = prom.url
        t_start = time.time()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if _scalar(base, 'count(up{job="shaobing"} == 1)') == hosts:
                break
            time.sleep(2)
        warm = time.time() - t_start
        print(f"  {hosts} hosts up after {warm:.0f} s; measuring {args.measure} s", flush=True)
        vm_pid = vm._proc.pid if remote_write and vm._proc is not None else None
        cpu0 = {"prom": _proc_stats(prom.proc.pid)[1], "vm": _proc_stats(vm_pid)[1] if vm_pid else 0.0,
                "sim": _proc_stats(sim.pid)[1]}
        p0, v0, t0 = _metrics(base), _metrics(vm.url) if vm_pid else {}, time.monotonic()
        api_timeouts = 0
        rule_max: dict[str, float] = {}
        rss_max = {"prom": 0.0, "vm": 0.0}
        while time.monotonic() - t0 < args.measure:
            time.sleep(5)
            try:
                current = _metrics(base)
            except OSError:  # an overloaded Prometheus answers its own /metrics late: that is a finding too
                api_timeouts += 1
                continue
            for key, value in current.items():
                if key.startswith("prometheus_rule_group_last_duration_seconds{"):
                    group = key.split('rule_group="', 1)[1].split('"', 1)[0].rsplit(";", 1)[-1]
                    rule_max[group] = max(rule_max.get(group, 0.0), value * 1000)
            rss_max["prom"] = max(rss_max["prom"], _proc_stats(prom.proc.pid)[0])  # type: ignore[union-attr]
            if vm_pid:
                rss_max["vm"] = max(rss_max["vm"], _proc_stats(vm_pid)[0])
        p1, v1, elapsed = _metrics(base, 120), _metrics(vm.url) if vm_pid else {}, time.monotonic() - t0
        cpu1 = {"prom": _proc_stats(prom.proc.pid)[1], "vm": _proc_stats(vm_pid)[1] if vm_pid else 0.0,
                "sim": _proc_stats(sim.pid)[1]}
        window = f"{min(args.measure, 120)}s"
        end = time.time()

        def delta(a: dict[str, float], b: dict[str, float], prefix: str) -> float:
            return sum(v for k, v in b.items() if k.startswith(prefix)) - sum(
                v for k, v in a.items() if k.startswith(prefix))

        out: dict[str, Any] = {
            "hosts": hosts,
            "remote_write": remote_write,
            "seconds_until_all_up": round(warm),
            "metrics_api_timeouts": api_timeouts,
            "series_per_host": _scalar(base, 'avg(scrape_samples_scraped{job="shaobing"})'),
            "head_series": p1.get("prometheus_tsdb_head_series", float("nan")),
            "samples_per_s": delta(p0, p1, "prometheus_tsdb_head_samples_appended_total") / elapsed,
            "scrape_duration_avg_ms": 1000 * _scalar(base, 'avg(scrape_duration_seconds{job="shaobing"})'),
            "scrape_duration_max_ms": 1000 * _scalar(base, 'max(max_over_time(scrape_duration_seconds'
                                                            f'{{job="shaobing"}}[{window}]))'),
            "targets_down": _scalar(base, 'count(up{job="shaobing"} == 0) or vector(0)'),
            "rule_group_max_ms": {k: round(v, 1) for k, v in sorted(rule_max.items())},
            "rule_eval_max_ms": max(rule_max.values(), default=float("nan")),
            "rule_failures": delta({}, p1, "prometheus_rule_evaluation_failures_total"),
            "prometheus_rss_mib": rss_max["prom"],
            "prometheus_cpu_cores": (cpu1["prom"] - cpu0["prom"]) / elapsed,
            "vm_rss_mib": rss_max["vm"],
            "vm_cpu_cores": (cpu1["vm"] - cpu0["vm"]) / elapsed,
            "vm_rows_per_s": delta(v0, v1, "vm_rows_inserted_total") / elapsed,
            "sim_cpu_cores": (cpu1["sim"] - cpu0["sim"]) / elapsed,
            # Other work on the machine inflates every latency here: record how busy it was.
            "loadavg_1m_at_end": os.getloadavg()[0],
            "remote_write_pending": delta({}, p1, "prometheus_remote_storage_samples_pending"),
            "remote_write_failed": delta({}, p1, "prometheus_remote_storage_samples_failed_total"),
            "remote_write_dropped": delta({}, p1, "prometheus_remote_storage_samples_dropped_total"),
        }
        print(json.dumps(out, ensure_ascii=False), flush=True)  # steady-state numbers, before the queries
        rules = _get(base + "/api/v1/rules", [], timeout=120)["data"]["groups"]
        slow = sorted(((r["evaluationTime"], g["name"], r["name"]) for g in rules for r in g["rules"]), reverse=True)
        out["slowest_rules_ms"] = [f"{g}/{n}: {t * 1000:.0f}" for t, g, n in slow[:6]]
        exprs = fleet_queries()
        # Both a little in the past, so the last remote_write batch has landed in VictoriaMetrics.
        at = end - 20
        out["dashboard_prometheus"] = time_queries(base, exprs, at)
        if vm_pid:
            vm.flush()
            out["dashboard_victoriametrics"] = time_queries(vm.url, exprs, at)
        prom_hosts = _get(base + "/api/v1/query", [("query", 'sum(township:shaobing_hosts:count)'),
                                                    ("time", f"{at:.0f}")], timeout=120)["data"]["result"]
        vm_hosts = _get(vm.url + "/api/v1/query", [("query", 'sum(township:shaobing_hosts:count)'),
                                                    ("time", f"{at:.0f}")], timeout=120)["data"]["result"] \
            if vm_pid else []
        out["fleet_hosts_prometheus"] = float(prom_hosts[0]["value"][1]) if prom_hosts else None
        out["fleet_hosts_victoriametrics"] = float(vm_hosts[0]["value"][1]) if vm_hosts else None
        return out
    finally:
        if prom is not None:
            prom.stop()
        if remote_write:
            vm.stop()
        os.killpg(sim.pid, signal.SIGTERM)
        sim.wait(30)


def _metrics(url: str, timeout: float = 30) -> dict[str, float]:
    """A server's own /metrics as {series: value} (comments skipped)."""
    out: dict[str, float] = {}
    with urllib.request.urlopen(url + "/metrics", timeout=timeout) as resp:
        for line in resp.read().decode().splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                try:
                    out[key] = float(value)
                except ValueError:
                    continue
    return out


def cmd_run(args: argparse.Namespace) -> int:
    results = []
    for hosts in args.hosts:
        with tempfile.TemporaryDirectory(prefix=f"fleet-{hosts}-") as tmp:
            print(f"== {hosts} hosts", flush=True)
            t0 = time.monotonic()
            result = run_size(hosts, args, Path(tmp))
            result["wall_s"] = round(time.monotonic() - t0)
            results.append(result)
            print(json.dumps(result, ensure_ascii=False, indent=1), flush=True)
            if args.json:  # after every size: a later size that falls over keeps the earlier numbers
                Path(args.json).write_text(json.dumps(
                    {"measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
                     "measure_s": args.measure, "results": results}, ensure_ascii=False, indent=1) + "\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("capture")
    serve = sub.add_parser("serve")
    serve.add_argument("--hosts", type=int, default=1000)
    serve.add_argument("--cpus", type=int, default=8)
    serve.add_argument("--port", type=int, default=SIM_PORT)
    run = sub.add_parser("run")
    run.add_argument("--hosts", type=int, nargs="+", default=[1000, 5000])
    run.add_argument("--cpus", type=int, default=8, help="per-CPU series cloned up to this many CPUs")
    run.add_argument("--port", type=int, default=SIM_PORT)
    run.add_argument("--measure", type=int, default=120, help="seconds of steady state per size")
    run.add_argument("--json", help="write the results here")
    run.add_argument("--no-remote-write", action="store_true", help="Prometheus alone (no VictoriaMetrics)")
    args = parser.parse_args()
    return {"capture": cmd_capture, "serve": cmd_serve, "run": cmd_run}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
