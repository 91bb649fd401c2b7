"""Benchmark: scrapes under hostile clients, the Shaobing agent beside Debian's prometheus-node-exporter, one run.

Both get the same exporter-toolkit web config (TLS + one bcrypt user, cost 10) on loopback. For each target in
turn, for ``--duration`` seconds: ``--slow`` connections that send nothing (half of them after a TLS
handshake), ``--headers`` connections sending endless header lines, and an open-loop flood of new
wrong-password connections (``--flood`` per second); meanwhile one authenticated scrape every 0.25 s. Reported:
good-scrape success rate, p50/p99 latency, the target's peak RSS and CPU seconds over the run.

    .venv/bin/python bench/hostile_clients.py [--duration 20] [--slow 200] [--headers 60] [--flood 200]

Everything stays on 127.0.0.1; every loop is bounded by --duration.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import bcrypt
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.support.tls import make_ca, make_cert  # noqa: E402 - test certificates, made here

NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
SHAOBING = str(REPO / ".venv" / "bin" / "shaobing")
PASSWORD = "bench-hostile-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(port: int, ctx: ssl.SSLContext, password: str, timeout: float = 5.0) -> int:
    token = base64.b64encode(f"prometheus:{password}".encode()).decode()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        sock.sendall(f"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n"
                     "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1") else 0


def wait_up(port: int, ctx: ssl.SSLContext, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("target exited")
        try:
            if scrape(port, ctx, PASSWORD) == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("target did not answer")


def attack(port: int, ctx: ssl.SSLContext, args: argparse.Namespace, pid: int) -> dict[str, float]:
    stop = threading.Event()
    held: list[socket.socket] = []
    lock = threading.Lock()

    def hold(sock: socket.socket) -> None:
        with lock:
            held.append(sock)

    def slow(i: int) -> None:
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            hold(ctx.wrap_socket(raw, server_hostname="127.0.0.1") if i % 2 else raw)
        except OSError:
            pass

    def headers() -> None:
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            hold(sock)
            sock.sendall(b"GET /metrics HTTP/1.1\r\n")
            while not stop.is_set():
                sock.sendall(b"X-Padding: " + b"a" * 4000 + b"\r\n")
        except OSError:
            pass

    def flood() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            threading.Thread(target=lambda n=i: _quiet(port, ctx, f"guess-{n}"), daemon=True).start()
            time.sleep(1.0 / args.flood)

    threads = [threading.Thread(target=slow, args=(i,), daemon=True) for i in range(args.slow)]
    threads += [threading.Thread(target=headers, daemon=True) for _ in range(args.headers)]
    threads.append(threading.Thread(target=flood, daemon=True))
    cpu0, peak = cpu_seconds(pid), rss_mb(pid)
    for t in threads:
        t.start()
    ok, latencies = 0, []
    end = time.monotonic() + args.duration
    tries = 0
    time.sleep(1.0)
    while time.monotonic() < end:
        tries += 1
        start = time.monotonic()
        try:
            if scrape(port, ctx, PASSWORD, timeout=5.0) == 200:
                ok += 1
                latencies.append(time.monotonic() - start)
        except OSError:
            pass
        peak = max(peak, rss_mb(pid))
        time.sleep(0.25)
    cpu = cpu_seconds(pid) - cpu0
    stop.set()
    for t in threads:
        t.join(10)
    for sock in held:
        sock.close()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan")
    return {"tries": tries, "ok": ok, "p50": statistics.median(latencies) if latencies else float("nan"),
            "p99": p99, "rss": peak, "cpu": cpu}


def _quiet(port: int, ctx: ssl.SSLContext, password: str) -> None:
    try:
        scrape(port, ctx, password, timeout=5.0)
    except OSError:
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--headers", type=int, default=60)
    parser.add_argument("--flood", type=float, default=200.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    ca = make_ca(tmp / "certs")
    cert = make_cert(tmp / "certs", "agent", ca, hosts=["127.0.0.1"], days=30)
    web = tmp / "web.yml"
    web.write_text(yaml.safe_dump({
        "tls_server_config": {"cert_file": str(cert.cert_file), "key_file": str(cert.key_file)},
        "basic_auth_users": {"prometheus": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()},
    }))
    ctx = ssl.create_default_context(cafile=str(ca.cert_file))
    results = {}
    for name in ("shaobing agent", "prometheus-node-exporter"):
        port = free_port()
        if name == "shaobing agent":
            config = tmp / "agent.yml"
            config.write_text(yaml.safe_dump({"listen_address": f"127.0.0.1:{port}", "web_config_file": str(web),
                                              "state_dir": str(tmp / "state"), "log_level": "error"}))
            cmd = [SHAOBING, "agent", "run", "--config", str(config)]
        else:
            cmd = [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}", f"--web.config.file={web}",
                   "--log.level=error"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_up(port, ctx, proc)
            time.sleep(3)
            results[name] = attack(port, ctx, args, proc.pid)
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"\n{args.slow} silent + {args.headers} endless-header connections, {args.flood:g} new bad-auth "
          f"connections/s, {args.duration:g} s; one good scrape every 0.25 s; {os.cpu_count()} cores\n")
    print("| target | good scrapes | p50 ms | p99 ms | peak RSS MB | CPU s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['ok']:.0f}/{r['tries']:.0f} | {r['p50'] * 1000:.1f} | {r['p99'] * 1000:.1f} | "
              f"{r['rss']:.0f} | {r['cpu']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
