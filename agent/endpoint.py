"""The agent's HTTP/1.1 connection loop: one selector thread owns every connection, bounded by design.

Why not a thread per connection: 64 idle sockets used to take every worker and no scrape got through. Here an
idle, slow or hostile connection costs a file descriptor and at most ``max_head_bytes`` of buffer, never a
thread:

* the whole request head (TLS handshake included, for a new connection) must arrive within ``head_timeout``,
  however slowly it trickles; a keep-alive connection may wait ``idle_timeout`` for its next request;
* a head larger than ``max_head_bytes`` or with more than ``max_headers`` lines is answered 431 and closed
  before any authentication work; a GET or HEAD that announces a body is refused (400) rather than read, so
  a body can never be taken for the next request;
* connections are capped in total and per client address; at a cap the connection that has waited longest
  without completing a request is closed to make room, so a client that sends its request promptly -- a
  Prometheus scrape -- is always served, whatever slow clients hold. Only a connection that has waited at
  least ``evict_after`` is closed so; while every waiting one is younger, newcomers are parked (a descriptor,
  no TLS work) and admitted oldest first as room appears, and when ``max_parked`` are parked the rest wait in
  the kernel's listen backlog. Closing the youngest instead lets a connect flood close every handshake
  before it can finish -- each accept closing the one admitted just before -- a scrape's among them, and
  then nothing completes at all;
* a request is answered in the loop when that needs no bcrypt (no auth, or credentials already verified);
  only unverified credentials go to a small bounded pool of checkers, whose queue sheds load with 503.

Responses leave in one buffer (headers and body together), written without blocking as the socket allows.
"""

from __future__ import annotations

import collections
import errno
import heapq
import itertools
import logging
import queue
import selectors
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from agent.compat import Protocol, SimpleQueue, shutdown_now

if TYPE_CHECKING:
    import ssl

__all__ = ["Limits", "Request", "Response", "Handler", "EndpointLoop", "bind"]

log = logging.getLogger(__name__)


class _NeverRaised(Exception):
    """Stands for ssl.SSLWantReadError/SSLWantWriteError until a TLS connection exists: the ssl module (libssl
    and libcrypto, 5 MiB resident) is loaded only by an agent that serves TLS. ssl.SSLError is an OSError, so
    ``except OSError`` covers it either way."""


_WANT_READ: type[Exception] = _NeverRaised
_WANT_WRITE: type[Exception] = _NeverRaised


def _tls_in_use() -> None:
    global _WANT_READ, _WANT_WRITE
    import ssl

    _WANT_READ, _WANT_WRITE = ssl.SSLWantReadError, ssl.SSLWantWriteError


@dataclass(frozen=True)
class Limits:
    max_connections: int = 512
    max_per_client: int = 64
    head_timeout: float = 10.0
    evict_after: float = 1.0  # a waiting connection younger than this is never closed to make room
    max_parked: int = 128  # newcomers waiting for room, beyond which accepting pauses
    idle_timeout: float = 30.0
    write_timeout: float = 30.0
    max_head_bytes: int = 8192
    max_headers: int = 64
    auth_workers: int = 2
    auth_queue: int = 32


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False
    head_only: bool = False  # a HEAD request: headers as for GET, no body


class Handler(Protocol):
    def needs_slow_check(self, request: Request) -> bool:
        """True when answering would cost a bcrypt check (credentials not verified before)."""

    def respond(self, request: Request) -> Response: ...


_REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 431: "Request Header Fields Too Large", 503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


def encode(response: Response, server: str) -> bytes:
    lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}", f"Server: {server}",
             f"Content-Length: {len(response.body)}"]
    lines += [f"{k}: {v}" for k, v in response.headers]
    if response.close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    return head if response.head_only else head + response.body


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def parse_head(head: bytes, max_headers: int) -> Request:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
        raise _BadRequest(400, "undecodable head") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
        raise _BadRequest(400, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequest(505, "unsupported HTTP version")
    if len(lines) - 1 > max_headers:
        raise _BadRequest(431, "too many header lines")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or " " in name:
            raise _BadRequest(400, "malformed header line")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Request(method, target, version, headers)


# Connection states.
_HANDSHAKE, _HEAD, _IDLE, _CHECKING, _WRITING = "handshake", "head", "idle", "checking", "writing"
_WAITING = (_HANDSHAKE, _HEAD, _IDLE)  # may be closed to make room: they have not completed a request


class _Conn:
    __slots__ = ("sock", "client", "state", "inbuf", "out", "close_after", "since", "deadline", "serial", "events")

    def __init__(self, sock: socket.socket, client: str, state: str, now: float, deadline: float) -> None:
        self.sock = sock
        self.client = client
        self.state = state
        self.inbuf = bytearray()
        self.out: Optional[memoryview] = None
        self.close_after = False
        self.since = now
        self.deadline = deadline
        self.serial = 0
        self.events = 0


def bind(host: str, port: int, backlog: int = 128) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class EndpointLoop:
    def __init__(
        self,
        listener: socket.socket,
        handler: Handler,
        tls: Callable[[], Optional[ssl.SSLContext]],
        server_name: str,
        limits: Optional[Limits] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.listener = listener
        self.handler = handler
        self.tls = tls
        self.server_name = server_name
        self.limits = limits = limits or Limits()
        self.clock = clock
        self._sel = selectors.DefaultSelector()
        self._conns: dict[int, _Conn] = {}  # by fileno
        self._per_client: dict[str, int] = {}
        self._timers: list[tuple[float, int, int, int]] = []  # (deadline, tiebreak, fileno, serial)
        self._tiebreak = itertools.count()
        self._done: SimpleQueue[tuple[int, int, Response]] = SimpleQueue()
        self._waker_r, self._waker_w = socket.socketpair()
        self._waker_r.setblocking(False)
        self._waker_w.setblocking(False)
        self._checkers = ThreadPoolExecutor(max_workers=limits.auth_workers, thread_name_prefix="http-auth")
        self._checking = 0
        self._parked: collections.deque[tuple[socket.socket, str, float]] = collections.deque()
        self._listening = False
        self._closing = False
        self.evicted = 0
        self.refused = 0
        self.shed = 0

    # -- lifecycle -----------------------------------------------------------------------------------

    def close(self) -> None:
        self._closing = True
        try:
            self._waker_w.send(b"x")
        except OSError:
            pass

    def serve(self) -> None:
        self._listen(True)
        self._sel.register(self._waker_r, selectors.EVENT_READ, "wake")
        try:
            while not self._closing:
                timeout = None
                if self._timers:
                    timeout = max(self._timers[0][0] - self.clock(), 0.0)
                if self._parked:  # room appears when a waiting connection has aged past evict_after
                    timeout = min(timeout, 0.05) if timeout is not None else 0.05
                for key, mask in self._sel.select(timeout):
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        self._woken()
                    else:
                        conn = self._conns.get(key.fd)
                        if conn is not None:
                            self._ready(conn, mask)
                self._expire()
                self._unpark()
        finally:
            for conn in list(self._conns.values()):
                self._close(conn)
            while self._parked:
                self._parked.popleft()[0].close()
            self._sel.close()
            self.listener.close()
            self._waker_r.close()
            self._waker_w.close()
            shutdown_now(self._checkers)

    # -- bookkeeping ---------------------------------------------------------------------------------

    def _arm(self, conn: _Conn, deadline: float) -> None:
        # Serials are unique across connections: a descriptor number is reused as soon as it is closed.
        conn.serial = next(self._tiebreak)
        conn.deadline = deadline
        heapq.heappush(self._timers, (deadline, next(self._tiebreak), conn.sock.fileno(), conn.serial))

    def _expire(self) -> None:
        now = self.clock()
        while self._timers and self._timers[0][0] <= now:
            _, _, fd, serial = heapq.heappop(self._timers)
            conn = self._conns.get(fd)
            if conn is not None and conn.serial == serial and conn.state != _CHECKING:
                log.debug("closing %s connection from %s: deadline passed", conn.state, conn.client)
                self._close(conn)

    def _watch(self, conn: _Conn, events: int) -> None:
        if events == conn.events:
            return
        fd = conn.sock.fileno()
        if conn.events and events:
            self._sel.modify(fd, events, "conn")
        elif events:
            self._sel.register(fd, events, "conn")
        else:
            self._sel.unregister(fd)
        conn.events = events

    def _close(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        if self._conns.pop(fd, None) is None:
            return
        if conn.events:
            try:
                self._sel.unregister(fd)
            except (KeyError, ValueError):
                pass
        left = self._per_client.get(conn.client, 1) - 1
        if left > 0:
            self._per_client[conn.client] = left
        else:
            self._per_client.pop(conn.client, None)
        try:
            conn.sock.close()
        except OSError:
            pass

    def _listen(self, on: bool) -> None:
        if on != self._listening:
            if on:
                self._sel.register(self.listener, selectors.EVENT_READ, "listen")
            else:
                self._sel.unregister(self.listener)
            self._listening = on

    def _room_for(self, client: str) -> bool:
        over = (len(self._conns) >= self.limits.max_connections
                or self._per_client.get(client, 0) >= self.limits.max_per_client)
        return not over or self._make_room(client)

    def _unpark(self) -> None:
        """Admit parked newcomers oldest first as room appears; close those parked past the head deadline."""
        if not self._parked:
            self._listen(True)
            return
        now = self.clock()
        waiting: collections.deque[tuple[socket.socket, str, float]] = collections.deque()
        blocked: set[str] = set()  # keeps a client's order: none of its later ones may overtake
        full = False  # the total cap, with no room to make: nobody else can be admitted this round
        for sock, client, accepted in self._parked:
            if now - accepted >= self.limits.head_timeout:
                sock.close()
                self.refused += 1
            elif not full and client not in blocked and self._room_for(client):
                self._admit(sock, client, accepted)
            else:
                blocked.add(client)
                full = full or len(self._conns) >= self.limits.max_connections
                waiting.append((sock, client, accepted))
        self._parked = waiting
        self._listen(len(waiting) < self.limits.max_parked)

    def _make_room(self, client: str) -> bool:
        """At a cap: close the connection that has waited longest without completing a request (of this
        client when its own cap is hit). False when every connection is busy with a request or has waited
        less than ``evict_after``."""
        own = self._per_client.get(client, 0) >= self.limits.max_per_client
        settled = self.clock() - self.limits.evict_after
        victims = [c for c in self._conns.values()
                   if c.state in _WAITING and c.since <= settled and (not own or c.client == client)]
        if not victims:
            return False
        self._close(min(victims, key=lambda c: c.since))
        self.evicted += 1
        return True

    # -- events --------------------------------------------------------------------------------------

    def _accept(self) -> None:
        for _ in range(64):  # bounded per wake-up, so a connect flood cannot starve the other sockets
            if len(self._parked) >= self.limits.max_parked:
                self._listen(False)  # the rest wait in the kernel's listen backlog
                return
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors: make room by closing the longest-waiting connection.
                    log.warning("accept failed: %s", exc)
                    self._make_room("")
                return
            client = str(addr[0])
            if self._parked or not self._room_for(client):
                self._parked.append((sock, client, self.clock()))  # first come, first admitted
                continue
            self._admit(sock, client)

    def _admit(self, sock: socket.socket, client: str, accepted: Optional[float] = None) -> None:
        """The head deadline runs from the accept; the age that makes a connection a victim, from now."""
        now = self.clock()
        deadline = (now if accepted is None else accepted) + self.limits.head_timeout
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        state = _HEAD
        context = self.tls()
        if context is not None:
            _tls_in_use()
            try:
                sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            except OSError:
                sock.close()
                return
            state = _HANDSHAKE
        conn = _Conn(sock, client, state, now, deadline)
        self._conns[sock.fileno()] = conn
        self._per_client[client] = self._per_client.get(client, 0) + 1
        self._arm(conn, deadline)
        self._watch(conn, selectors.EVENT_READ)

    def _ready(self, conn: _Conn, mask: int) -> None:
        if conn.state == _HANDSHAKE:
            self._handshake(conn)
        elif conn.state == _WRITING:
            self._write(conn)
        elif conn.state in (_HEAD, _IDLE):
            self._read(conn)

    def _handshake(self, conn: _Conn) -> None:
        import ssl  # loaded: the connection is a TLS one

        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(conn, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._watch(conn, selectors.EVENT_WRITE)
            return
        except OSError as exc:
            log.debug("TLS handshake with %s failed: %s", conn.client, exc)
            self._close(conn)
            return
        conn.state = _HEAD
        self._watch(conn, selectors.EVENT_READ)
        self._read(conn)  # application data may already be decrypted and waiting

    def _read(self, conn: _Conn) -> None:
        limit = self.limits.max_head_bytes
        while True:
            try:
                data = conn.sock.recv(16384)
            except (BlockingIOError, InterruptedError, _WANT_READ, _WANT_WRITE):
                break
            except OSError:
                self._close(conn)
                return
            if not data:
                self._close(conn)
                return
            if conn.state == _IDLE:
                conn.state = _HEAD
                conn.since = self.clock()
                self._arm(conn, conn.since + self.limits.head_timeout)
            conn.inbuf += data
            if len(conn.inbuf) > limit + 4:
                break
        self._next_request(conn)

    def _next_request(self, conn: _Conn) -> None:
        end = conn.inbuf.find(b"\r\n\r\n")
        if end < 0:
            if len(conn.inbuf) > self.limits.max_head_bytes:
                self._reply(conn, Response(431, b"request head too large\n", close=True))
            return
        if end > self.limits.max_head_bytes:
            self._reply(conn, Response(431, b"request head too large\n", close=True))
            return
        head = bytes(conn.inbuf[:end])
        del conn.inbuf[: end + 4]
        try:
            request = parse_head(head, self.limits.max_headers)
        except _BadRequest as exc:
            self._reply(conn, Response(exc.status, f"{exc}\n".encode(), close=True))
            return
        if request.method not in ("GET", "HEAD"):
            self._reply(conn, Response(405, b"only GET and HEAD\n", [("Allow", "GET, HEAD")], close=True))
            return
        if request.headers.get("content-length", "0").strip() != "0" or "transfer-encoding" in request.headers:
            # A GET carries no body; reading one would be work for an attacker, skipping it a desync.
            self._reply(conn, Response(400, b"a GET or HEAD request carries no body\n", close=True))
            return
        if self.handler.needs_slow_check(request):
            if self._checking >= self.limits.auth_queue:
                self.shed += 1
                self._reply(conn, Response(503, b"busy\n", [("Retry-After", "1")], close=True))
                return
            self._checking += 1
            conn.state = _CHECKING
            self._watch(conn, 0)
            fd, serial = conn.sock.fileno(), conn.serial
            self._checkers.submit(self._check, fd, serial, request)
            return
        self._reply(conn, self._respond(request))

    def _respond(self, request: Request) -> Response:
        try:
            response = self.handler.respond(request)
        except Exception:  # noqa: BLE001 - a bug in one answer must not end the loop
            log.exception("request handler failed")
            response = Response(500, b"internal error\n", close=True)
        if not request.keep_alive:
            response.close = True
        response.head_only = request.method == "HEAD"
        return response

    def _check(self, fd: int, serial: int, request: Request) -> None:
        """On a checker thread: the bcrypt work, then hand the answer back to the loop."""
        self._done.put((fd, serial, self._respond(request)))
        try:
            self._waker_w.send(b"x")
        except OSError:
            pass

    def _woken(self) -> None:
        try:
            while self._waker_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return
        while True:
            try:
                fd, serial, response = self._done.get_nowait()
            except queue.Empty:
                return
            self._checking -= 1
            conn = self._conns.get(fd)
            if conn is not None and conn.serial == serial and conn.state == _CHECKING:
                self._reply(conn, response)

    def _reply(self, conn: _Conn, response: Response) -> None:
        conn.out = memoryview(encode(response, self.server_name))
        conn.close_after = response.close
        conn.state = _WRITING
        self._arm(conn, self.clock() + self.limits.write_timeout)
        self._write(conn)

    def _write(self, conn: _Conn) -> None:
        out = conn.out
        while out is not None and len(out):
            try:
                sent = conn.sock.send(out)
            except (BlockingIOError, InterruptedError, _WANT_WRITE):
                self._watch(conn, selectors.EVENT_WRITE)
                conn.out = out
                return
            except _WANT_READ:
                self._watch(conn, selectors.EVENT_READ)
                conn.out = out
                return
            except OSError:
                self._close(conn)
                return
            out = out[sent:]
        conn.out = None
        if conn.close_after:
            self._close(conn)
            return
        conn.state = _IDLE
        conn.since = self.clock()
        self._arm(conn, conn.since + self.limits.idle_timeout)
        self._watch(conn, selectors.EVENT_READ)
        if conn.inbuf:  # a pipelined request is already here
            conn.state = _HEAD
            self._arm(conn, conn.since + self.limits.head_timeout)
            self._next_request(conn)
