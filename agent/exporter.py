"""The HTTP endpoint: ``/metrics`` from pre-rendered bytes, ``/healthz``, a landing page; TLS and basic auth.

A scrape never waits for a collector: each finished collector run swaps its rendered chunk into
``ExpositionCache``, which joins and gzips the page once, and requests only read the current bytes. TLS
handshakes happen on the worker threads, connections are bounded, and idle or slow clients time out, so a
burst of bad requests cannot stop the scrapes.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import logging
import socket
import socketserver
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from typing import Any, Optional

from agent import __version__
from agent.webconfig import BasicAuth, WebConfig

__all__ = ["ExpositionCache", "MetricsServer", "CONTENT_TYPE"]

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_CONNECTIONS = 64
IDLE_TIMEOUT = 30.0


class ExpositionCache:
    """The current /metrics page, rebuilt when any collector's chunk changes."""

    def __init__(self) -> None:
        self._chunks: dict[str, bytes] = {}
        self._order: list[str] = []
        self._lock = threading.Lock()
        # (plain, gzipped) swapped as one tuple: readers never see a half-built page.
        self._page: tuple[bytes, bytes] = (b"", gzip.compress(b"", compresslevel=6))

    def set_order(self, owners: list[str]) -> None:
        with self._lock:
            self._order = list(owners)

    def put(self, owner: str, chunk: bytes) -> None:
        with self._lock:
            if self._chunks.get(owner) == chunk:
                return
            self._chunks[owner] = chunk
            self._rebuild()

    def drop(self, owner: str) -> None:
        with self._lock:
            if self._chunks.pop(owner, None) is not None:
                self._rebuild()

    def retain(self, owners: set[str]) -> None:
        with self._lock:
            for owner in set(self._chunks) - owners:
                del self._chunks[owner]
            self._rebuild()

    def _rebuild(self) -> None:
        ordered = [o for o in self._order if o in self._chunks] + sorted(set(self._chunks) - set(self._order))
        body = b"".join(self._chunks[o] for o in ordered)
        self._page = (body, gzip.compress(body, compresslevel=6))

    def page(self) -> tuple[bytes, bytes]:
        return self._page


_LANDING = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>哨兵 Shaobing agent</title></head>
<body><h1>哨兵 Shaobing agent {version}</h1>
<p>乡镇服务器运维监控代理 — operations-monitoring agent for township servers.</p>
<ul><li><a href="/metrics">/metrics</a> Prometheus 指标 (metrics)</li>
<li><a href="/healthz">/healthz</a> 健康检查 (health check)</li></ul></body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = f"shaobing/{__version__}"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    # Headers and body leave in one write (flushed after each request): written separately on a keep-alive
    # connection, the small header packet waits for the client's delayed ACK, ~40 ms per scrape.
    wbufsize = 256 * 1024

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature from the base class
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, ctype: str, extra: Optional[dict[str, str]] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in self.server.web.http_server_config.headers.items():
            self.send_header(k, v)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _authorized(self) -> bool:
        auth = self.server.auth
        if not auth.enabled:
            return True
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return bool(sep) and auth.check(user, password)

    def do_GET(self) -> None:
        if not self._authorized():
            self._send(401, b"Unauthorized\n", "text/plain; charset=utf-8",
                       {"WWW-Authenticate": 'Basic realm="shaobing"'})
            return
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            plain, gzipped = self.server.cache.page()
            if "gzip" in self.headers.get("Accept-Encoding", ""):
                self._send(200, gzipped, CONTENT_TYPE, {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
            else:
                self._send(200, plain, CONTENT_TYPE, {"Vary": "Accept-Encoding"})
        elif path == "/healthz":
            self._send(200, b"ok\n", "text/plain; charset=utf-8")
        elif path == "/":
            self._send(200, _LANDING.format(version=__version__).encode(), "text/html; charset=utf-8")
        else:
            self._send(404, b"Not Found\n", "text/plain; charset=utf-8")

    do_HEAD = do_GET


class _Server(socketserver.TCPServer):
    allow_reuse_address = True
    request_queue_size = 128  # listen backlog: a burst of connections queues instead of being refused
    daemon_threads = True

    def __init__(self, address: tuple[str, int], cache: ExpositionCache, web: WebConfig) -> None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        self.cache = cache
        self.web = web
        self.auth = BasicAuth(web.basic_auth_users)
        self.ssl_context = web.ssl_context()
        self._pool = ThreadPoolExecutor(max_workers=MAX_CONNECTIONS, thread_name_prefix="http")
        self._active = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._closing = False
        super().__init__(address, _Handler)

    def serve_until_closed(self) -> None:
        """Accept connections until ``close_listener``. It blocks in accept() instead of polling (as
        socketserver's serve_forever does twice a second), so an idle agent does not wake up at all."""
        while not self._closing:
            try:
                conn, addr = self.socket.accept()
            except OSError as exc:
                if self._closing:
                    return
                log.warning("accept failed: %s", exc)
                time.sleep(0.1)  # e.g. out of file descriptors: back off rather than spin
                continue
            self.process_request(conn, addr)

    def close_listener(self) -> None:
        self._closing = True
        try:
            self.socket.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._active.acquire(blocking=False):
            # Every worker is busy: refuse this connection rather than queue it without bound.
            self.shutdown_request(request)
            return
        self._pool.submit(self._serve_one, request, client_address)

    def _serve_one(self, request: socket.socket, client_address: Any) -> None:
        conn: socket.socket = request
        try:
            conn.settimeout(IDLE_TIMEOUT)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl_context is not None:
                # The handshake runs here, on a worker, so a slow client cannot hold up accept().
                conn = self.ssl_context.wrap_socket(request, server_side=True)
            self.finish_request(conn, client_address)
        except (OSError, ssl.SSLError) as exc:
            log.debug("connection from %s ended: %s", client_address[0], exc)
        finally:
            try:
                self.shutdown_request(conn)
            finally:
                self._active.release()

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


class MetricsServer:
    """Owns the listening socket and its serving thread."""

    def __init__(self, cache: ExpositionCache) -> None:
        self.cache = cache
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def start(self, host: str, port: int, web: WebConfig) -> None:
        server = _Server((host or "0.0.0.0", port), self.cache, web)
        self._server = server
        self._thread = threading.Thread(target=server.serve_until_closed, name="http-accept", daemon=True)
        self._thread.start()
        scheme = "https" if web.tls_server_config else "http"
        log.info("serving %s://%s:%d/metrics (basic auth %s)", scheme, host or "0.0.0.0", self.port,
                 "on" if web.basic_auth_users else "off")

    def update_web(self, web: WebConfig) -> None:
        """Apply a reloaded web config without closing the socket."""
        if self._server is None:
            return
        ssl_context = web.ssl_context()
        self._server.web = web
        self._server.auth = BasicAuth(web.basic_auth_users)
        self._server.ssl_context = ssl_context

    def stop(self) -> None:
        if self._server is not None:
            self._server.close_listener()
            if self._thread is not None:
                self._thread.join(5)
            self._server = None
