"""The real agent as a subprocess for tests (``shaobing agent run``), on an ephemeral loopback port.

Stable API (other suites import it):

    AgentProcess(workdir, config=None, *, web_config=None, env=None)
        config: dict or YAML text for agent.yml (listen_address and state_dir are filled in when absent);
        web_config: dict or YAML text for the exporter-toolkit web config (written to web.yml and referenced).
        .start(timeout=30) -> self: waits until the agent answers (any HTTP status, so 401 counts);
        .wait_for_metric(name, timeout=30, auth=None) -> body once a sample of ``name`` is exported;
        .stop() (SIGTERM, then SIGKILL), context manager; .url ("http(s)://127.0.0.1:PORT"), .port,
        .target ("127.0.0.1:PORT"), .log() (stderr so far), .config_file, .reload() (SIGHUP),
        .scrape(auth=(user, password) | None, ca=None) -> str (the /metrics body).
    SHAOBING: path of the `shaobing` console script in the current virtualenv.
"""

from __future__ import annotations

import base64
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from tests.support.prometheus import free_port

SHAOBING = str(Path(sys.executable).with_name("shaobing"))


def _text(doc: Union[str, dict[str, Any]]) -> str:
    return doc if isinstance(doc, str) else yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


class AgentProcess:
    def __init__(
        self,
        workdir: Path,
        config: Union[str, dict[str, Any], None] = None,
        *,
        web_config: Union[str, dict[str, Any], None] = None,
        env: Optional[dict[str, str]] = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        doc: dict[str, Any] = {}
        if isinstance(config, str):
            doc = yaml.safe_load(config) or {}
        elif config is not None:
            doc = dict(config)
        if "listen_address" not in doc:
            doc["listen_address"] = f"127.0.0.1:{free_port()}"
        doc.setdefault("state_dir", str(self.workdir / "state"))
        self.tls = False
        if web_config is not None:
            web_file = self.workdir / "web.yml"
            web_file.write_text(_text(web_config), encoding="utf-8")
            doc["web_config_file"] = str(web_file)
            web_doc = yaml.safe_load(_text(web_config)) or {}
            self.tls = bool(web_doc.get("tls_server_config"))
        self.config_file = self.workdir / "agent.yml"
        self.config_file.write_text(_text(doc), encoding="utf-8")
        self.port = int(str(doc["listen_address"]).rsplit(":", 1)[1])
        self.target = f"127.0.0.1:{self.port}"
        self.url = f"{'https' if self.tls else 'http'}://{self.target}"
        self.env = {**os.environ, **(env or {})}
        self._log_path = self.workdir / "agent.log"
        self._proc: Optional[subprocess.Popen[bytes]] = None

    def start(self, timeout: float = 30.0) -> AgentProcess:
        log = open(self._log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self._proc = subprocess.Popen(
            [SHAOBING, "agent", "run", "--config", str(self.config_file)],
            stdout=log, stderr=log, env=self.env, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"agent exited with {self._proc.returncode}:\n{self.log()}")
            if self._answers():
                break
            time.sleep(0.1)
        else:
            self.stop()
            raise TimeoutError(f"agent did not answer within {timeout}s:\n{self.log()}")
        return self

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    def _answers(self) -> bool:
        ctx = ssl._create_unverified_context() if self.tls else None
        try:
            urllib.request.urlopen(f"{self.url}/healthz", timeout=2, context=ctx).read()
        except urllib.error.HTTPError:
            return True  # e.g. 401: it is up, auth is on
        except (urllib.error.URLError, OSError):
            return False
        return True

    def scrape(self, auth: Optional[tuple[str, str]] = None, ca: Optional[Path] = None, timeout: float = 5) -> str:
        req = urllib.request.Request(f"{self.url}/metrics")
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        ctx: Optional[ssl.SSLContext] = None
        if self.tls:
            ctx = ssl.create_default_context(cafile=str(ca)) if ca else ssl._create_unverified_context()
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            body: bytes = resp.read()
        return body.decode("utf-8")

    def wait_for_metric(self, name: str, timeout: float = 30, auth: Optional[tuple[str, str]] = None) -> str:
        deadline = time.monotonic() + timeout
        body = ""
        while time.monotonic() < deadline:
            body = self.scrape(auth=auth)
            if any(line.startswith((name + " ", name + "{")) for line in body.splitlines()):
                return body
            time.sleep(0.2)
        raise TimeoutError(f"{name} not exported within {timeout}s:\n{self.log()[-3000:]}")

    def reload(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGHUP)

    def log(self) -> str:
        try:
            return self._log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def kill9(self) -> None:
        """SIGKILL, as a power cut or the OOM killer would: no shutdown code runs."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def __enter__(self) -> AgentProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
