"""Helpers shared by the relay tests: config files pointing at the loopback fakes, a relay process,
and Alertmanager payloads in the exact webhook format (version "4")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.relay.relay_fakes import SECRETS, FakeProviders

REPO = Path(__file__).resolve().parents[2]


def write_secrets(tmp: Path) -> Path:
    folder = tmp / "secrets"
    folder.mkdir(exist_ok=True)
    for name, value in SECRETS.items():
        (folder / name).write_text(value + "\n")
    return folder


def config_text(
    tmp: Path, fakes: FakeProviders, port: int, delivery: str = "", channels: str = "", routes: str = ""
) -> str:
    s = write_secrets(tmp)
    delivery = (
        delivery
        or """
  backoff_initial_seconds: 0.2
  backoff_max_seconds: 1
  request_timeout_seconds: 2
  reconcile_delay_seconds: 0.5
  reconcile_grace_seconds: 1
  reconcile_give_up_seconds: 30
  poll_interval_seconds: 0.1
"""
    )
    channels = (
        channels
        or f"""
  ding:
    type: dingtalk
    base_url: {fakes.url("/dingtalk/robot/send")}
    access_token: {{secret_file: {s}/ding_token}}
    secret: {{secret_file: {s}/ding_secret}}
  sms:
    type: aliyun_sms
    base_url: {fakes.url("/aliyun/")}
    access_key_id: {{secret_file: {s}/aliyun_id}}
    access_key_secret: {{secret_file: {s}/aliyun_secret}}
    sign_name: 哨兵
    template_code: SMS_0001
    recipients: [zhang]
"""
    )
    routes = (
        routes
        or """
  ops:
    channels: [ding, sms]
"""
    )
    return f"""
server:
  listen: 127.0.0.1:{port}
  auth:
    bearer_tokens: [{{secret_file: {s}/bearer}}]
store:
  path: {tmp / "relay.db"}
delivery:{delivery}
people:
  zhang: {{name: 张三, phone: "13800001234"}}
  li: {{name: 李四, phone: "13900005678"}}
channels:{channels}
routes:{routes}
"""


def alert(i: int, status: str = "firing", severity: str = "critical", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": f"TestAlert{i}", "severity": severity, "instance": f"10.0.0.{i % 250}:9100", **labels},
        "annotations": {"summary": f"测试告警 {i}", "description": "磁盘将满 https://example.invalid/x"},
        "startsAt": "2026-11-27T04:00:00.123456789Z",
        "endsAt": "2026-11-27T04:10:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.local/graph?g0.expr=up",
        "fingerprint": f"{i:016x}",
    }


def payload(alerts: list[dict[str, Any]], group: str = '{}:{alertname="x"}', receiver: str = "relay") -> dict[str, Any]:
    """Alertmanager's webhook body, version 4, as documented in its configuration reference."""
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": group,
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": receiver,
        "groupLabels": {"alertname": "x"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.local:9093",
        "alerts": alerts,
    }


def assert_loopback_config(path: Path) -> None:
    """Every channel of a config the tests run points at 127.0.0.1, never at a provider's default URL."""
    from relay.config import load_config

    for channel in load_config(path).channels.values():
        if channel.type == "smpp":  # a TCP session, not a URL
            assert channel.options.get("host") == "127.0.0.1", (
                f"{channel.name} would reach {channel.options.get('host')}"
            )
            continue
        if channel.type == "gsm_modem":  # a serial port: the tests' pseudo-terminal, no network at all
            assert str(channel.options.get("port", "")).startswith("/dev/pts/"), f"{channel.name}: not a pty"
            continue
        url = str(channel.options.get("base_url") or channel.options.get("url"))
        assert url.startswith("http://127.0.0.1:"), f"{channel.name} would reach {url}"


class RelayProcess:
    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert_loopback_config(self.config)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "relay.cli", "serve", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=str(REPO),
                env=env,
            )
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"relay exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("relay did not become healthy")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def post(self, body: Any, route: str = "ops", token: str = SECRETS["bearer"]) -> httpx.Response:
        return httpx.post(
            f"{self.base}/alertmanager/{route}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def metric(self, name: str, **labels: str) -> float:
        text = httpx.get(self.base + "/metrics", timeout=5).text
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(name + " ")):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def wait_until(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
