"""Real Prometheus and Alertmanager for tests: start on loopback, query, stop.

Stable API (other suites import it; add, never break):

    free_port() -> int
        An ephemeral TCP port on 127.0.0.1 that was free a moment ago. Servers started here retry on a fresh
        port if the port was taken in between, so races with parallel test runs do not fail a test.

    PROMETHEUS_BIN, ALERTMANAGER_BIN, PROMTOOL_BIN, AMTOOL_BIN
        Paths of the Debian binaries; override with the environment variables SHAOBING_PROMETHEUS,
        SHAOBING_ALERTMANAGER, SHAOBING_PROMTOOL, SHAOBING_AMTOOL.

    scrape_config(job, targets, *, interval="1s", scheme="http", labels=None, **extra) -> dict
    prometheus_config(scrape_configs, *, interval="1s", rule_files=(), alertmanagers=()) -> dict
        Build a Prometheus config dict with short intervals (test-friendly defaults).

    PrometheusServer(workdir, config, *, files=None, extra_args=())
        config: YAML text or a dict. files: {relative name: text} written next to prometheus.yml (rule
        files, file_sd JSON, password files); paths in the config resolve relative to that directory, as
        Prometheus does.
        .start(timeout=30) -> self, .stop(), context manager; .url, .port, .workdir, .log() (its stderr).
        .query(expr, at=None) -> list of {"metric": {...}, "value": [t, "v"]} (instant query, vector or scalar
        normalised to a one-element list), .query_value(expr) -> float | None (first sample or None),
        .wait_for(expr, predicate=bool, timeout=30, interval=0.2) -> the result list once predicate(result)
        holds (raises TimeoutError with the last result and the log tail), .targets() -> active targets,
        .wait_for_targets(job=None, health="up", count=1, timeout=30), .alerts() -> /api/v1/alerts list,
        .rule_groups() -> /api/v1/rules groups, .reload() (POST /-/reload).

    AlertmanagerServer(workdir, config, *, files=None, extra_args=())
        Same lifecycle; clustering disabled. .alerts(**filters) -> /api/v2/alerts list,
        .post_alerts(alerts) to inject alerts directly (v2 API), .wait_for_alerts(predicate, timeout=30).

    run_tool(args, timeout=60) -> subprocess.CompletedProcess[str]
        Run promtool/amtool (or anything) with a timeout, capturing text output; never raises on exit status.

Both servers run as child processes in their own session, log to files in workdir, and are stopped by
SIGTERM (then SIGKILL after 10 s) in .stop(), which is safe to call twice. Example pytest fixture::

    @pytest.fixture
    def prom(tmp_path):
        cfg = prometheus_config([scrape_config("shaobing", [f"127.0.0.1:{port}"])])
        with PrometheusServer(tmp_path / "prom", cfg) as server:
            yield server
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self, Union

import yaml

__all__ = [
    "ALERTMANAGER_BIN",
    "AMTOOL_BIN",
    "PROMETHEUS_BIN",
    "PROMTOOL_BIN",
    "AlertmanagerServer",
    "PrometheusServer",
    "free_port",
    "prometheus_config",
    "run_tool",
    "scrape_config",
]

PROMETHEUS_BIN = os.environ.get("SHAOBING_PROMETHEUS", "/usr/bin/prometheus")
ALERTMANAGER_BIN = os.environ.get("SHAOBING_ALERTMANAGER", "/usr/bin/prometheus-alertmanager")
PROMTOOL_BIN = os.environ.get("SHAOBING_PROMTOOL", "/usr/bin/promtool")
AMTOOL_BIN = os.environ.get("SHAOBING_AMTOOL", "/usr/bin/amtool")

HTTP_TIMEOUT = 10.0
_START_ATTEMPTS = 3

ConfigLike = Union[str, Mapping[str, Any]]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that the kernel just handed out as free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_tool(args: Sequence[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run a command with a timeout and captured text output; the caller checks returncode."""
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)


def scrape_config(
    job: str,
    targets: Iterable[str],
    *,
    interval: str = "1s",
    scheme: str = "http",
    labels: Mapping[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One scrape job over static targets; extra keys (basic_auth, tls_config, ...) are copied in."""
    static: dict[str, Any] = {"targets": list(targets)}
    if labels:
        static["labels"] = dict(labels)
    cfg: dict[str, Any] = {
        "job_name": job,
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "scheme": scheme,
        "static_configs": [static],
    }
    cfg.update(extra)
    return cfg


def prometheus_config(
    scrape_configs: Iterable[Mapping[str, Any]],
    *,
    interval: str = "1s",
    rule_files: Iterable[str] = (),
    alertmanagers: Iterable[str] = (),
) -> dict[str, Any]:
    """A whole Prometheus config with short scrape and rule-evaluation intervals."""
    cfg: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
        "scrape_configs": [dict(sc) for sc in scrape_configs],
    }
    rules = list(rule_files)
    if rules:
        cfg["rule_files"] = rules
    ams = list(alertmanagers)
    if ams:
        cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": ams}]}]}
    return cfg


def _http(method: str, url: str, body: bytes | None = None, timeout: float = HTTP_TIMEOUT) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as err:
        return int(err.code), err.read()


class _Server:
    """A child process listening on a loopback port, with a readiness URL."""

    binary = ""
    name = ""

    def __init__(
        self,
        workdir: Union[str, Path],
        config: ConfigLike,
        *,
        files: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / f"{self.name}.yml"
        text = config if isinstance(config, str) else yaml.safe_dump(dict(config), sort_keys=False)
        self.config_path.write_text(text, encoding="utf-8")
        for rel, content in (files or {}).items():
            path = self.workdir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        self.extra_args = list(extra_args)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _args(self) -> list[str]:
        raise NotImplementedError

    def log(self) -> str:
        """The server's log output so far (stderr and stdout)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def start(self, timeout: float = 30.0) -> Self:
        """Start and wait until /-/ready answers 200; retry on a fresh port if the port was taken."""
        for _attempt in range(_START_ATTEMPTS):
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [self.binary, *self._args(), *self.extra_args],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.workdir,
                    start_new_session=True,
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    status, _ = _http("GET", f"{self.url}/-/ready", timeout=2.0)
                    if status == 200:
                        return self
                except (urllib.error.URLError, OSError):
                    pass
                time.sleep(0.1)
            exited = self.proc.poll() is not None
            self.stop()
            if not (exited and "address already in use" in self.log()):
                raise RuntimeError(f"{self.name} did not become ready in {timeout}s; log tail:\n{self._log_tail()}")
        raise RuntimeError(f"{self.name}: no free port after {_START_ATTEMPTS} attempts:\n{self._log_tail()}")

    def stop(self) -> None:
        """SIGTERM, wait up to 10 s, then SIGKILL. Safe to call more than once."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        url = f"{self.url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        status, body = _http("GET", url)
        if status != 200:
            raise RuntimeError(f"{self.name} GET {path} -> HTTP {status}: {body[:500]!r}")
        return json.loads(body)


class PrometheusServer(_Server):
    """A real Prometheus with its own TSDB in workdir; lifecycle API enabled for .reload()."""

    binary = PROMETHEUS_BIN
    name = "prometheus"

    def _args(self) -> list[str]:
        return [
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--log.level=info",
        ]

    def _api(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        doc = self._get_json(f"/api/v1/{path}", params)
        if doc.get("status") != "success":
            raise RuntimeError(f"prometheus /api/v1/{path}: {doc}")
        return doc["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query; a scalar or string result comes back as one sample without labels."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._api("query", params)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_value(self, expr: str) -> float | None:
        """The first sample's value, or None for an empty result."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait_for(
        self,
        expr: str,
        predicate: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout: float = 30.0,
        interval: float = 0.2,
    ) -> list[dict[str, Any]]:
        """Poll an instant query until predicate(result) is true; TimeoutError names the last result."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while True:
            result = self.query(expr)
            if predicate(result):
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{expr!r} did not satisfy the predicate in {timeout}s; last result {result!r}\n"
                    f"log tail:\n{self._log_tail()}"
                )
            time.sleep(interval)

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self._api("targets", {"state": "active"})["activeTargets"]
        return active

    def wait_for_targets(
        self, job: str | None = None, health: str = "up", count: int = 1, timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Wait until at least `count` active targets (of `job`, if given) have the given health."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [
                t
                for t in self.targets()
                if t.get("health") == health and (job is None or t.get("labels", {}).get("job") == job)
            ]
            if len(matching) >= count:
                return matching
            if time.monotonic() >= deadline:
                raise TimeoutError(f"targets (job={job}) not {health} in {timeout}s: {self.targets()!r}")
            time.sleep(0.2)

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts as Prometheus sees them (/api/v1/alerts)."""
        alerts: list[dict[str, Any]] = self._api("alerts")["alerts"]
        return alerts

    def rule_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self._api("rules")["groups"]
        return groups

    def reload(self) -> None:
        status, body = _http("POST", f"{self.url}/-/reload", body=b"")
        if status != 200:
            raise RuntimeError(f"prometheus reload failed: HTTP {status} {body[:500]!r}")


class AlertmanagerServer(_Server):
    """A real, single-node Alertmanager (gossip clustering disabled) with its storage in workdir."""

    binary = ALERTMANAGER_BIN
    name = "alertmanager"

    def _args(self) -> list[str]:
        return [
            f"--config.file={self.config_path}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=info",
        ]

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """Alerts held by Alertmanager (/api/v2/alerts); filters such as active="true" are passed through."""
        alerts: list[dict[str, Any]] = self._get_json("/api/v2/alerts", filters or None)
        return alerts

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        status, body = _http("POST", f"{self.url}/api/v2/alerts", body=json.dumps(list(alerts)).encode())
        if status != 200:
            raise RuntimeError(f"alertmanager rejected alerts: HTTP {status} {body[:500]!r}")

    def wait_for_alerts(
        self, predicate: Callable[[list[dict[str, Any]]], bool] = bool, timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            alerts = self.alerts()
            if predicate(alerts):
                return alerts
            if time.monotonic() >= deadline:
                raise TimeoutError(f"alertmanager alerts did not satisfy the predicate in {timeout}s: {alerts!r}")
            time.sleep(0.2)
