"""Small loopback servers for the end-to-end alert test: a webhook receiver standing in for the relay, and the
HTTP / HTTPS endpoints the agent probes (each can be shut down or have its certificate swapped)."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Notification:
    path: str
    authorization: str
    body: dict[str, Any]
    received: float  # time.monotonic()

    def alerts(self, alertname: str, status: str) -> list[dict[str, Any]]:
        found = self.body.get("alerts", [])
        return [a for a in found if a["labels"].get("alertname") == alertname and a["status"] == status]


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


class WebhookReceiver:
    """Records every Alertmanager webhook POST (path, Authorization header, JSON body, arrival time)."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(_Quiet):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                note = Notification(self.path, self.headers.get("Authorization", ""), body, time.monotonic())
                with receiver._lock:
                    receiver.notifications.append(note)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def snapshot(self) -> list[Notification]:
        with self._lock:
            return list(self.notifications)

    def wait_for(self, predicate: Callable[[Notification], bool], timeout: float, what: str) -> Notification:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for note in self.snapshot():
                if predicate(note):
                    return note
            time.sleep(0.05)
        seen = [(n.path, n.body.get("status"), n.body.get("groupLabels")) for n in self.snapshot()]
        raise TimeoutError(f"no notification {what} within {timeout}s; received: {seen}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class ProbeTarget:
    """An HTTP server on loopback answering 200 to GET; with cert/key it serves HTTPS, and .use_cert swaps the
    certificate for new handshakes without closing the port. Give `port` to come back on a closed target's port."""

    def __init__(self, cert_file: Path | None = None, key_file: Path | None = None, port: int = 0) -> None:
        class Handler(_Quiet):
            def do_GET(self) -> None:
                body = b"ok\n"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._context: ssl.SSLContext | None = None
        if cert_file is not None and key_file is not None:
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._context.load_cert_chain(cert_file, key_file)
            self._server.socket = self._context.wrap_socket(self._server.socket, server_side=True)
        self.port = int(self._server.server_address[1])
        scheme = "https" if self._context else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/health"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self._closed = False

    def use_cert(self, cert_file: Path, key_file: Path) -> None:
        assert self._context is not None, "not a TLS target"
        self._context.load_cert_chain(cert_file, key_file)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._server.shutdown()
            self._server.server_close()


class ExpositionServer:
    """Serves a settable Prometheus text exposition at /metrics: a stand-in for a component under test."""

    def __init__(self, text: str = "") -> None:
        self.text = text
        owner = self

        class Handler(_Quiet):
            def do_GET(self) -> None:
                body = owner.text.encode()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.target = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
