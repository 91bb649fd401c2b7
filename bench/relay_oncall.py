"""On-call features vs the relay before them: ingest throughput of critical alerts, side by side in one run.

    .venv/bin/python bench/relay_oncall.py [--base 89bf8bf] [--rounds 3] [--duration 10] [--alerts-per-request 1]

"before": the relay of commit --base (checked out into a temporary git worktree), with an SMS channel to fixed
people. "on-call": this checkout's relay with the same channel resolving the person on duty from a roster by the
alert's township (`on_duty`), acknowledgement links, and an escalation chain on the route — so every critical
webhook also writes its incident row in the same transaction. Both get the same wrk load (bench/relay_ingest.py's
Lua payload, severity critical, a unique fingerprint per alert), alternating rounds so the machine's drift hits
both alike. The SMS channel points at a closed loopback port (delivery is not what is measured).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.relay_ingest import LUA, free_port, run_wrk, wait_healthy  # noqa: E402

COMMON = """
server:
  listen: 127.0.0.1:{port}
  max_body_bytes: 4194304
  auth:
    bearer_tokens: [{{secret_file: {tmp}/token}}]
store:
  path: {db}
  synchronous: full
people:
  zhang: {{name: 张三, phone: "13800001234"}}
  li: {{name: 李四, phone: "13900005678"}}
  wang: {{name: 王五, phone: "13700002468"}}
"""
BEFORE = (
    COMMON
    + """
channels:
  sms:
    type: sms_gateway
    url: http://127.0.0.1:9/sms
    body_template: '{{"to": "{{{{ phone }}}}", "text": "{{{{ text }}}}"}}'
    recipients: [zhang, li]
routes:
  bench:
    channels: [sms]
"""
)
ONCALL = (
    COMMON
    + """
rosters:
  town:
    townships: [城关镇]
    shifts:
      - {{days: [mon, tue, wed, thu, fri], from: "08:30", to: "17:30", person: li}}
      - {{days: [mon, tue, wed, thu, fri, sat, sun], from: "17:30", to: "08:30", person: wang}}
      - {{days: [sat, sun], from: "08:30", to: "17:30", person: li}}
  county:
    townships: ["*"]
    shifts:
      - {{days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "00:00", person: li}}
channels:
  sms:
    type: sms_gateway
    url: http://127.0.0.1:9/sms
    body_template: '{{"to": "{{{{ phone }}}}", "text": "{{{{ text }}}}"}}'
    recipients: [zhang, on_duty]
  leader:
    type: sms_gateway
    url: http://127.0.0.1:9/sms
    body_template: '{{"to": "{{{{ phone }}}}", "text": "{{{{ text }}}}"}}'
    recipients: [wang]
routes:
  bench:
    channels: [sms]
    escalation:
      after_minutes: 15
      levels: [[leader]]
acknowledge:
  public_url: http://127.0.0.1:9
  secret: {{secret_file: {tmp}/ack}}
  alertmanagers: [http://127.0.0.1:9]
"""
)


def _relay(checkout: Path, config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "relay.cli", "serve", "--config", str(config), "--log-level", "warning"],
        cwd=str(checkout),
        env=dict(os.environ, PYTHONPATH=str(checkout)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="89bf8bf", help="the relay before the on-call work (a commit)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--alerts-per-request", type=int, default=1)
    args = parser.parse_args()
    args.duration = max(1, min(args.duration, 120))
    if shutil.which("wrk") is None:
        print("wrk is required (apt-get install wrk)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="relay-oncall-"))
    worktree = tmp / "before"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.base],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (tmp / "token").write_text("bench-token\n")
    (tmp / "ack").write_text("an-acknowledgement-signing-secret\n")
    lua = tmp / "bench.lua"
    lua.write_text(
        LUA.replace('"severity":"warning"', '"severity":"critical"').replace(
            '"instance":"host%d"}', '"instance":"host%d","township":"城关镇"}'
        )
    )
    results: dict[str, list[dict[str, float]]] = {"before": [], "on-call": []}
    try:
        for round_no in range(args.rounds):
            for name, checkout, template in (("before", worktree, BEFORE), ("on-call", REPO, ONCALL)):
                port = free_port()
                config = tmp / f"{name}-{round_no}.yml"
                config.write_text(template.format(port=port, tmp=tmp, db=tmp / f"{name}-{round_no}.db"))
                proc = _relay(checkout, config)
                try:
                    wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
                    url = f"http://127.0.0.1:{port}/alertmanager/bench"
                    results[name].append(run_wrk(url, lua, args, f"{name[0]}{round_no}"))
                finally:
                    proc.terminate()
                    proc.wait(timeout=20)
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"\n{args.rounds} rounds x {args.duration}s, {args.connections} connections, "
        f"{args.alerts_per_request} critical alert(s) per request, {os.cpu_count()} CPUs\n"
    )
    print("| relay | requests/s (each round) | median | p50 ms | p99 ms | non-2xx |")
    print("|---|---|---:|---:|---:|---:|")
    medians = {}
    for name, rows in results.items():
        rps = [r["rps"] for r in rows]
        medians[name] = statistics.median(rps)
        print(
            f"| {name} | {', '.join(f'{v:.0f}' for v in rps)} | {medians[name]:.0f} | "
            f"{statistics.median(r['p50'] for r in rows):.2f} | {statistics.median(r['p99'] for r in rows):.2f} | "
            f"{sum(r['non2xx'] for r in rows):.0f} |"
        )
    print(f"\non-call / before: {medians['on-call'] / medians['before']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
