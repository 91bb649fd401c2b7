"""The HTTP endpoint: ``/metrics`` from pre-rendered bytes, ``/healthz``, a landing page; TLS and basic auth.

A scrape never runs a collector: each finished collector run swaps its rendered chunk into
``ExpositionCache``, which joins and gzips the page once per change (when next asked for), and requests only
read the current bytes. Only at the agent's start does a scrape wait (on a checker thread, bounded) for the
first round of the frequent collectors, so the first page is whole. The connections themselves are
agent.endpoint's: one loop, bounded heads and
deadlines, room made by closing the longest-waiting connection, so idle, slow or hostile clients cannot stop
the scrapes.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import logging
import struct
import threading
import time
import zlib
from typing import TYPE_CHECKING, Callable, Optional

from agent import __version__
from agent.endpoint import EndpointLoop, Limits, Request, Response, bind
from agent.webconfig import BasicAuth, WebConfig

if TYPE_CHECKING:
    import ssl  # only with TLS configured (agent.webconfig imports it then)

__all__ = ["ExpositionCache", "MetricsServer", "CONTENT_TYPE"]

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ExpositionCache:
    """The current /metrics page, rebuilt when any collector's chunk changes."""

    def __init__(self) -> None:
        self._chunks: dict[str, bytes] = {}
        self._order: list[str] = []
        self._lock = threading.Lock()
        # (plain, gzipped) swapped as one tuple: readers never see a half-built page.
        self._page: tuple[bytes, bytes] = (b"", gzip.compress(b"", compresslevel=1))
        self._stale = False
        # Chunks rendered when the page is built (the scheduler's per-collector health): fresh at every build,
        # and free while nobody scrapes.
        self._late: dict[str, Callable[[], bytes]] = {}
        # Clear from the agent's start until its frequent collectors have each finished a first run (the first
        # scheduler says when): a scrape before that waits for it (bounded) instead of taking a half page whose
        # missing series look absent. A cache nobody schedules for is complete as it is.
        self._complete = threading.Event()
        self._complete.set()
        self._first_round_begun = False

    @property
    def complete(self) -> bool:
        return self._complete.is_set()

    def begin_first_round(self) -> bool:
        """Hold scrapes until mark_complete(); False once that has happened (a reload's scheduler finds a full
        page; one replacing a scheduler stopped during its first round takes the hold over)."""
        with self._lock:
            if self._first_round_begun and self._complete.is_set():
                return False
            self._first_round_begun = True
            self._complete.clear()
            return True

    def mark_complete(self) -> None:
        self._complete.set()

    def wait_complete(self, timeout: float) -> bool:
        return self._complete.wait(max(0.0, timeout))

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

    def put_late(self, owner: str, render: Callable[[], bytes]) -> None:
        with self._lock:
            self._late[owner] = render
            self._stale = True

    def touch(self) -> None:
        """Something a late chunk renders has changed."""
        self._stale = True

    def retain(self, owners: set[str]) -> None:
        with self._lock:
            for owner in set(self._chunks) - owners:
                del self._chunks[owner]
            self._rebuild()

    def _rebuild(self) -> None:
        # Joined and gzipped when next asked for, once for however many collectors finished since: twenty
        # collectors ending within one scrape interval cost one compression, not twenty.
        self._stale = True

    def refresh(self) -> None:
        """Build the page now if anything changed: the scheduler calls this shortly after collectors finish, so
        a scrape finds the page already built (page() builds only when asked within that short delay)."""
        if self._stale:
            self._build()

    def _build(self) -> tuple[bytes, bytes]:
        with self._lock:
            if self._stale:
                self._stale = False  # before rendering: a touch() during the build makes the next one rebuild
                for owner, render in self._late.items():
                    self._chunks[owner] = render()
                ordered = [o for o in self._order if o in self._chunks] + sorted(set(self._chunks) - set(self._order))
                body = b"".join(self._chunks[o] for o in ordered)
                # Level 1: a third of level 6's CPU for a page 14 % larger (8.1 vs 7.1 KB for the node set's
                # 45 KB); built every 15 s, it is a visible part of an idle agent's CPU.
                self._page = (body, gzip.compress(body, compresslevel=1))
            return self._page

    def page(self, now: Optional[float] = None) -> tuple[bytes, bytes]:
        """The page; with ``now``, ``node_time_seconds`` is appended as of that moment (the time the page is
        served, not when the health collector last ran: the clock-skew alert compares it with the scrape's
        timestamp). The gzip answer gets it as a second gzip member (RFC 1952 §2.2), so the cached part is
        never recompressed, and that member is stored, not compressed (no compressor to set up per scrape)."""
        plain, gzipped = self._page if not self._stale else self._build()
        if now is None:
            return plain, gzipped
        block = (_TIME_HEAD + repr(float(now)) + "\n").encode()
        return plain + block, gzipped + gzip_stored(block)


_GZIP_HEAD = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no flags, no mtime, OS unknown


def gzip_stored(data: bytes) -> bytes:
    """One gzip member (RFC 1952) holding ``data`` (< 64 KiB) as a single stored deflate block (RFC 1951
    §3.2.4: BFINAL=1, BTYPE=00, LEN, NLEN): a valid member any gunzip reads, at the cost of a CRC-32. zlib's
    compressor allocates ~270 KB of state per call, which for the ~100-byte clock line of every scrape cost
    more than the rest of the answer."""
    size = len(data)
    if size > 0xFFFF:
        raise ValueError("gzip_stored: one stored block holds at most 65535 bytes")
    return (_GZIP_HEAD + struct.pack("<BHH", 1, size, size ^ 0xFFFF) + data
            + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, size))


_TIME_HEAD = ("# HELP node_time_seconds System time in seconds since epoch (1970).\n"
              "# TYPE node_time_seconds gauge\nnode_time_seconds ")


_LANDING = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>哨兵 Shaobing agent</title></head>
<body><h1>哨兵 Shaobing agent {version}</h1>
<p>乡镇服务器运维监控代理 — operations-monitoring agent for township servers.</p>
<ul><li><a href="/metrics">/metrics</a> Prometheus 指标 (metrics)</li>
<li><a href="/healthz">/healthz</a> 健康检查 (health check)</li></ul></body></html>
"""


# How long a scrape in the agent's first seconds waits for the first round of collectors: inside Prometheus'
# scrape timeout (it sends it as a header; 10 s by default), with room for the transfer.
FIRST_PAGE_WAIT = 8.0


def _first_page_wait(request: Request) -> float:
    try:
        scrape_timeout = float(request.headers.get("x-prometheus-scrape-timeout-seconds", ""))
    except ValueError:
        return FIRST_PAGE_WAIT
    return min(FIRST_PAGE_WAIT, scrape_timeout * 0.8) if scrape_timeout > 0 else FIRST_PAGE_WAIT


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(when: float) -> str:
    """RFC 9110 §5.6.7 IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``), as email.utils.formatdate(usegmt=True)
    writes it, without importing the email package (2 MiB of the agent's memory for one header)."""
    t = time.gmtime(when)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


class _Answers:
    """What the endpoint says: routing, basic auth and the pre-rendered pages (agent.endpoint does the I/O)."""

    def __init__(self, cache: ExpositionCache, web: WebConfig) -> None:
        self.cache = cache
        self.web = web
        self.auth = BasicAuth(web.basic_auth_users)

    def _credentials(self, request: Request) -> Optional[tuple[str, str]]:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        return (user, password) if sep else None

    def needs_slow_check(self, request: Request) -> bool:
        if request.path == "/metrics" and not self.cache.complete:
            return True  # answered on a checker thread, which may wait for the first round (never the loop)
        auth = self.auth
        if not auth.enabled:
            return False
        creds = self._credentials(request)
        return creds is not None and auth.cached(*creds) is None

    def _authorized(self, request: Request) -> bool:
        auth = self.auth
        if not auth.enabled:
            return True
        creds = self._credentials(request)
        return creds is not None and auth.check(*creds)

    def _send(self, status: int, body: bytes, ctype: str, extra: Optional[dict[str, str]] = None) -> Response:
        headers = [("Content-Type", ctype), ("Date", http_date(time.time()))]
        headers += list(self.web.http_server_config.headers.items())
        headers += list((extra or {}).items())
        return Response(status, body, headers)

    def respond(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._send(401, b"Unauthorized\n", "text/plain; charset=utf-8",
                              {"WWW-Authenticate": 'Basic realm="shaobing"'})
        path = request.path
        if path == "/metrics":
            if not self.cache.complete:
                self.cache.wait_complete(_first_page_wait(request))
            plain, gzipped = self.cache.page(time.time())
            if "gzip" in request.headers.get("accept-encoding", ""):
                return self._send(200, gzipped, CONTENT_TYPE, {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
            return self._send(200, plain, CONTENT_TYPE, {"Vary": "Accept-Encoding"})
        if path == "/healthz":
            return self._send(200, b"ok\n", "text/plain; charset=utf-8")
        if path == "/":
            return self._send(200, _LANDING.format(version=__version__).encode(), "text/html; charset=utf-8")
        return self._send(404, b"Not Found\n", "text/plain; charset=utf-8")


class MetricsServer:
    """Owns the listening socket and the thread of its connection loop (agent.endpoint)."""

    def __init__(self, cache: ExpositionCache, limits: Optional[Limits] = None) -> None:
        self.cache = cache
        self.limits = limits or Limits()
        self._answers: Optional[_Answers] = None
        self._ssl: Optional[ssl.SSLContext] = None
        self._loop: Optional[EndpointLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._port = 0

    @property
    def port(self) -> int:
        return self._port

    @property
    def loop(self) -> Optional[EndpointLoop]:
        return self._loop

    def start(self, host: str, port: int, web: WebConfig) -> None:
        self._ssl = web.ssl_context()
        self._answers = _Answers(self.cache, web)
        listener = bind(host or "0.0.0.0", port)
        self._port = int(listener.getsockname()[1])
        self._loop = EndpointLoop(listener, self._answers, lambda: self._ssl, f"shaobing/{__version__}", self.limits)
        self._thread = threading.Thread(target=self._loop.serve, name="http", daemon=True)
        self._thread.start()
        scheme = "https" if web.tls_server_config else "http"
        log.info("serving %s://%s:%d/metrics (basic auth %s)", scheme, host or "0.0.0.0", self.port,
                 "on" if web.basic_auth_users else "off")

    def update_web(self, web: WebConfig) -> None:
        """Apply a reloaded web config without closing the socket (new connections use the new TLS)."""
        if self._answers is None:
            return
        context = web.ssl_context()  # first: a certificate that fails to load changes nothing
        self._answers.web, self._answers.auth = web, BasicAuth(web.basic_auth_users)
        self._ssl = context

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.close()
            if self._thread is not None:
                self._thread.join(5)
            self._loop = None
