"""Debian's victoria-metrics and prometheus-pushgateway as child processes on loopback, for push tests and
the fleet benchmark. Each runs in its own session in a temporary directory and is stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Optional

from tests.support.prometheus import free_port

VICTORIA_BIN = os.environ.get("SHAOBING_VICTORIA_METRICS", "/usr/bin/victoria-metrics")
PUSHGATEWAY_BIN = os.environ.get("SHAOBING_PUSHGATEWAY", "/usr/bin/prometheus-pushgateway")


class _Server:
    ready_path = "/"

    def __init__(self, workdir: Path, port: Optional[int] = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self._proc: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> _Server:
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 - the child's stderr for its lifetime
        self._proc = subprocess.Popen(self.command(), stdout=log, stderr=log, cwd=self.workdir,
                                      start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.command()[0]} exited: {self.log()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"{self.command()[0]} did not answer on {self.url}: {self.log()[-2000:]}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def log(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def get(self, path: str, params: Optional[list[tuple[str, str]]] = None) -> bytes:
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=30) as resp:
            body: bytes = resp.read()
            return body

    def __enter__(self) -> _Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class VictoriaMetrics(_Server):
    ready_path = "/health"

    def __init__(self, workdir: Path, port: Optional[int] = None, extra: tuple[str, ...] = ()) -> None:
        super().__init__(workdir, port)
        self.extra = extra

    def command(self) -> list[str]:
        return [VICTORIA_BIN, f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.workdir / 'data'}", "-retentionPeriod=100y",
                "-search.latencyOffset=0s", "-loggerLevel=WARN", *self.extra]

    def flush(self) -> None:
        self.get("/internal/force_flush")

    def export(self, match: str) -> list[dict[str, Any]]:
        """Raw samples per series (/api/v1/export: JSON lines of metric, values, timestamps)."""
        self.flush()
        body = self.get("/api/v1/export", [("match[]", match)])
        return [json.loads(line) for line in body.decode().splitlines() if line.strip()]

    def query(self, expr: str) -> list[dict[str, Any]]:
        self.flush()
        doc = json.loads(self.get("/api/v1/query", [("query", expr)]))
        result: list[dict[str, Any]] = doc["data"]["result"]
        return result


class Pushgateway(_Server):
    ready_path = "/-/ready"

    def command(self) -> list[str]:
        return [PUSHGATEWAY_BIN, f"--web.listen-address=127.0.0.1:{self.port}",
                f"--persistence.file={self.workdir / 'persist'}"]


VMALERT_BIN = os.environ.get("SHAOBING_VMALERT", "/usr/bin/vmalert")


class VmAlert(_Server):
    """Debian's vmalert: evaluates Prometheus rule files against VictoriaMetrics, notifies an Alertmanager."""

    ready_path = "/health"

    def __init__(self, workdir: Path, rules: list[Path], datasource: str, notifier: str) -> None:
        super().__init__(workdir)
        self.rules, self.datasource, self.notifier = rules, datasource, notifier

    def command(self) -> list[str]:
        return [VMALERT_BIN, f"-httpListenAddr=127.0.0.1:{self.port}", f"-datasource.url={self.datasource}",
                f"-notifier.url={self.notifier}", "-evaluationInterval=1s", "-loggerLevel=WARN",
                *[f"-rule={path}" for path in self.rules]]

    def alerts(self) -> list[dict[str, Any]]:
        doc = json.loads(self.get("/api/v1/alerts"))
        alerts: list[dict[str, Any]] = doc["data"]["alerts"] or []  # null when there are none
        return alerts
