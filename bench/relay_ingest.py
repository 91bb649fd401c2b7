"""Ingest benchmark: shaobing-relay vs a minimal in-memory receiver, side by side in one run.

Both are uvicorn processes on loopback. The minimal receiver reads the body and answers 200 (no
auth, no parsing, no storage): the floor for "accept a webhook" on this stack. The relay parses,
authenticates, deduplicates and commits every alert to SQLite (WAL, synchronous=FULL) before it
answers. wrk drives both with the same Lua script: every request is an Alertmanager v4 payload whose
alert fingerprint is unique, so nothing is deduplicated away.

    .venv/bin/python bench/relay_ingest.py --duration 10 --connections 16 --alerts-per-request 1
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]

MINIMAL = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"status":"ok"}'})
"""

LUA = r"""
counter = 0
local alerts = tonumber(os.getenv("BENCH_ALERTS") or "1")
local prefix = os.getenv("BENCH_PREFIX") or "x"
request = function()
  counter = counter + 1
  local items = {}
  for i = 1, alerts do
    items[i] = string.format('{"status":"firing","labels":{"alertname":"Bench","severity":"warning",' ..
      '"instance":"host%d"},"annotations":{"summary":"bench"},"startsAt":"2026-11-27T04:00:00Z",' ..
      '"endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"%s-%d-%d-%d"}', i, prefix, id or 0, counter, i)
  end
  local body = '{"version":"4","groupKey":"bench","status":"firing","receiver":"relay","groupLabels":{},' ..
    '"commonLabels":{},"commonAnnotations":{},"externalURL":"","truncatedAlerts":0,"alerts":[' ..
    table.concat(items, ",") .. ']}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer bench-token"}, body)
end
id = 0
setup = function(thread) id = id + 1; thread:set("id", id) end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early ({url})")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit(f"server did not start ({url})")


def run_wrk(url: str, lua: Path, args: argparse.Namespace, prefix: str) -> dict[str, float]:
    env = dict(os.environ, BENCH_ALERTS=str(args.alerts_per_request), BENCH_PREFIX=prefix)
    proc = subprocess.run(
        [
            "wrk",
            "-t",
            str(args.threads),
            "-c",
            str(args.connections),
            "-d",
            f"{args.duration}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(lua),
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=args.duration + 60,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed: {proc.stderr or proc.stdout}")
    out = proc.stdout

    def unit_ms(value: str, unit: str) -> float:
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    result: dict[str, float] = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s|m)\b", out)
        result[f"p{pct}"] = unit_ms(m.group(1), m.group(2)) if m else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["non2xx"] = float(errors.group(1)) if errors else 0.0
    result["requests"] = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per target (bounded)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--alerts-per-request", type=int, default=1)
    parser.add_argument("--synchronous", choices=("full", "normal"), default="full")
    args = parser.parse_args()
    args.duration = max(1, min(args.duration, 120))
    if shutil.which("wrk") is None:
        print("wrk is required (apt-get install wrk)", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    (tmp / "token").write_text("bench-token\n")
    (tmp / "minimal.py").write_text(MINIMAL)
    lua = tmp / "bench.lua"
    lua.write_text(LUA)
    minimal_port, relay_port = free_port(), free_port()
    config = tmp / "relay.yml"
    config.write_text(f"""
server:
  listen: 127.0.0.1:{relay_port}
  max_body_bytes: 4194304
  auth:
    bearer_tokens: [{{secret_file: {tmp}/token}}]
store:
  path: {tmp}/relay.db
  synchronous: {args.synchronous}
channels:
  sink:
    type: webhook
    url: http://127.0.0.1:{minimal_port}/sink
    rate_limits: [{{window_seconds: 60, max: 20}}]
routes:
  bench:
    channels: [sink]
""")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        minimal = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(tmp),
                "minimal:app",
                "--port",
                str(minimal_port),
                "--host",
                "127.0.0.1",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(minimal)
        relay = subprocess.Popen(
            [sys.executable, "-m", "relay.cli", "serve", "--config", str(config), "--log-level", "warning"],
            cwd=str(REPO),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(relay)
        wait_healthy(f"http://127.0.0.1:{minimal_port}/", minimal)
        wait_healthy(f"http://127.0.0.1:{relay_port}/healthz", relay)
        rows = {
            "minimal receiver (uvicorn, read body, 200)": run_wrk(f"http://127.0.0.1:{minimal_port}/x", lua, args, "m"),
            f"shaobing-relay (auth, parse, SQLite {args.synchronous})": run_wrk(
                f"http://127.0.0.1:{relay_port}/alertmanager/bench", lua, args, "r"
            ),
        }
        with httpx.Client() as client:
            stored = sum(
                float(line.rsplit(" ", 1)[1])
                for line in client.get(f"http://127.0.0.1:{relay_port}/metrics").text.splitlines()
                if line.startswith("shaobing_relay_alerts_received_total{")
            )
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"\n{args.duration}s per target, {args.connections} connections, {args.threads} wrk threads, "
        f"{args.alerts_per_request} alert(s) per request, {os.cpu_count()} CPUs\n"
    )
    print("| target | requests/s | alerts/s | p50 ms | p99 ms | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['rps']:.0f} | {r['rps'] * args.alerts_per_request:.0f} | {r['p50']:.2f} | "
            f"{r['p99']:.2f} | {r['non2xx']:.0f} |"
        )
    print(f"\nalerts received by the relay: {stored:.0f}")
    print(json.dumps({"relay_alerts_received": stored}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
