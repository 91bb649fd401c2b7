"""A stand-in for what sits between a township and the centre: a reverse proxy on loopback in front of
VictoriaMetrics that forwards pushes, and can be told to be slow, to refuse large bodies with 413 (nginx's
client_max_body_size), or to answer 503 with Retry-After. It records what passed, in order."""

from __future__ import annotations

import gzip
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional


class PushProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.delay = 0.0
        self.max_body: Optional[int] = None
        self.unavailable = 0  # answer this many requests with 503 + Retry-After
        self.status_for_all: Optional[int] = None
        self.lock = threading.Lock()
        self.forwarded: list[list[int]] = []  # the sample timestamps (ms) of each forwarded body, in order
        self.refused: list[int] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PushProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _answer(self, status: int, body: bytes, headers: Optional[dict[str, str]] = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("content-length", "0")))
                if proxy.delay:
                    time.sleep(proxy.delay)
                with proxy.lock:
                    if proxy.status_for_all is not None:
                        self._answer(proxy.status_for_all, b"scripted\n")
                        return
                    if proxy.unavailable > 0:
                        proxy.unavailable -= 1
                        self._answer(503, b"upstream busy\n", {"Retry-After": "30"})
                        return
                if proxy.max_body is not None and len(raw) > proxy.max_body:
                    with proxy.lock:
                        proxy.refused.append(len(raw))
                    self._answer(413, b"<html><head><title>413 Request Entity Too Large</title></head></html>\n")
                    return
                request = urllib.request.Request(proxy.upstream + self.path, data=raw, method="POST")
                for key in ("Content-Type", "Content-Encoding"):
                    if self.headers.get(key):
                        request.add_header(key, self.headers[key])
                try:
                    with urllib.request.urlopen(request, timeout=30) as resp:
                        status, body = resp.status, resp.read()
                except urllib.error.HTTPError as err:
                    status, body = err.code, err.read()
                if status < 300:
                    try:
                        text = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
                        stamps = sorted({int(line.rsplit(b" ", 1)[1]) for line in text.splitlines() if line})
                    except (OSError, ValueError, IndexError):
                        stamps = []
                    with proxy.lock:
                        proxy.forwarded.append(stamps)
                self._answer(status, body)

        return Handler
