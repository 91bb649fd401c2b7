"""Report generation for a county: 1,000 hosts (the fleet simulator's layout: 25 per township, 40 townships)
over 7 days, against a real Prometheus holding that week.

    python bench/report_fleet.py [--hosts 1000] [--days 7] [--cpus 4] [--json out.json]

The history holds the series the report reads (tests/report/history.py: up, CPU per core, memory, a
filesystem, OS info, password/exposure/EOL/update/reboot/baseline series, ALERTS) at one sample a minute,
with seeded faults: outages, days without data, weak accounts, exposed services, EOL systems, filling disks.
(The simulator's full 309-series exposition for 1,000 hosts over a week would be 3.1 billion samples.)
It is imported with promtool in chunks of 100 hosts. Measured: wall time of `shaobing-report generate -v`
(queries / HTML with charts / PDF), the report process's peak RSS, Prometheus' peak RSS, PDF pages.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from report.period import TZ  # noqa: E402
from tests.report.history import DAY, GIB, HostPlan, build_tsdb  # noqa: E402
from tests.support.prometheus import PrometheusServer  # noqa: E402

HOSTS_PER_TOWNSHIP = 25


def fleet(hosts: int, period: int, cpus: int, seed: int = 7) -> list[HostPlan]:
    rng = random.Random(seed)
    out = []
    for i in range(hosts):
        township = f"乡镇{i // HOSTS_PER_TOWNSHIP + 1:02d}"
        down: tuple[tuple[int, int], ...] = ()
        if rng.random() < 0.05:
            at = rng.randrange(0, period - 4 * 3600, 60)
            down = ((at, at + rng.randrange(600, 4 * 3600, 60)),)
        missing: tuple[tuple[int, int], ...] = ()
        if rng.random() < 0.02:
            at = rng.randrange(0, period - DAY, 3600)
            missing = ((at, at + DAY),)
        weak: tuple[tuple[str, str, tuple[tuple[int, int], ...]], ...] = ()
        if rng.random() < 0.1:
            weak = (("dictionary", "human", ((-7200, rng.randint(1, 3)),)),)
        filling = rng.random() < 0.05
        out.append(
            HostPlan(
                f"host-{i:04d}",
                township,
                cpus=cpus,
                down=down,
                missing=missing,
                weak=weak,
                exposed_from=rng.randrange(0, period, 60) if rng.random() < 0.05 else None,
                eol_os=rng.random() < 0.05,
                updates=rng.choice([0, 0, 0, 3, 12]),
                updates_since_days=rng.choice([2, 20]),
                fs_avail_start=60 * GIB if filling else 70 * GIB,
                fs_avail_end=45 * GIB if filling else 70 * GIB,
                baseline=(0.7, 0.75) if rng.random() < 0.3 else None,
                baseline_failed=6,
            )
        )
    return out


def import_history(data: Path, start: int, period: int, plans: list[HostPlan], work: Path) -> tuple[int, float]:
    began = time.monotonic()
    samples = build_tsdb(data, start, period, plans, work, chunk=100)
    return samples, time.monotonic() - began


def _vmhwm(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--cpus", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    period = args.days * DAY
    end = int(dt.datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
    start = end - period
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        work = Path(tmp)
        samples, import_s = import_history(work / "data", start, period, fleet(args.hosts, period, args.cpus), work)
        print(f"history: {args.hosts} hosts, {samples / 1e6:.1f} M samples, imported in {import_s:.0f} s", flush=True)
        config = {"global": {"scrape_interval": "15s"}, "scrape_configs": []}
        with PrometheusServer(work, config, extra_args=["--storage.tsdb.retention.time=90d"]) as prom:
            assert prom.proc is not None
            baseline_rss = _vmhwm(prom.proc.pid)
            iso = lambda t: dt.datetime.fromtimestamp(t, TZ).isoformat()  # noqa: E731
            began = time.monotonic()
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "report",
                    "generate",
                    "-v",
                    "--prometheus",
                    prom.url,
                    "--from",
                    iso(start),
                    "--to",
                    iso(end),
                    "--out",
                    str(work / "out"),
                ],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.monotonic() - began
            out, err = child.stdout.read(), child.stderr.read()  # type: ignore[union-attr]
            assert os.waitstatus_to_exitcode(status) == 0, err
            prom_rss = _vmhwm(prom.proc.pid)
        pdf = next((work / "out").glob("*.pdf"))
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))  # type: ignore[union-attr]
        first = subprocess.run(
            ["pdftotext", "-f", "1", "-l", "1", str(pdf), "-"], capture_output=True, text=True
        ).stdout
        townships = {p.township for p in fleet(args.hosts, period, args.cpus)}
        result = {
            "hosts": args.hosts,
            "days": args.days,
            "samples_million": round(samples / 1e6, 1),
            "wall_seconds": round(wall, 1),
            "stages": err.strip().splitlines()[-1],
            "report_peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "prometheus_rss_mib_before": round(baseline_rss, 1),
            "prometheus_peak_rss_mib": round(prom_rss, 1),
            "pdf_pages": pages,
            "summary_on_one_page": all(t in first for t in townships) and "本周最要紧的事" in first,
            "pdf_mib": round(pdf.stat().st_size / 2**20, 2),
            "html_mib": round(next((work / "out").glob("*.html")).stat().st_size / 2**20, 2),
        }
        del out
    print(json.dumps(result, ensure_ascii=False, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
