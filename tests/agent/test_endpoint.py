"""The connection loop's edges, on raw sockets: head limits, bodies on GET, methods, keep-alive and pipelining,
HTTP/1.0, deadlines, room made by closing the longest-waiting connection, and a connect burst that must not
close connections still in progress."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from agent.endpoint import Limits
from agent.exporter import ExpositionCache, MetricsServer
from agent.webconfig import WebConfig


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    cache = ExpositionCache()
    cache.put("health", b"# TYPE node_load1 gauge\nnode_load1 0.5\n")
    limits = Limits(max_connections=8, max_per_client=6, head_timeout=1.0, evict_after=0.3, idle_timeout=2.0,
                    max_head_bytes=2048, max_headers=10, max_parked=4)
    srv = MetricsServer(cache, limits)
    srv.start("127.0.0.1", 0, WebConfig())
    yield srv
    srv.stop()


def _talk(port: int, data: bytes, timeout: float = 3.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except TimeoutError:
            pass
    return out


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0


def test_head_too_large_or_too_many_lines_is_431(server: MetricsServer) -> None:
    big = b"GET /metrics HTTP/1.1\r\nX-A: " + b"a" * 5000 + b"\r\n\r\n"
    assert _status(_talk(server.port, big)) == 431
    many = b"GET /metrics HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(20)) + b"\r\n"
    assert _status(_talk(server.port, many)) == 431


def test_a_get_with_a_body_is_refused_not_read_as_the_next_request(server: MetricsServer) -> None:
    smuggled = b"GET /metrics HTTP/1.1\r\nContent-Length: 25\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n"
    raw = _talk(server.port, smuggled)
    assert _status(raw) == 400 and raw.count(b"HTTP/1.1 ") == 1
    chunked = b"GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    assert _status(_talk(server.port, chunked)) == 400


def test_methods_versions_and_malformed_lines(server: MetricsServer) -> None:
    assert _status(_talk(server.port, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")) == 405
    assert _status(_talk(server.port, b"GET /metrics HTTP/2.0\r\n\r\n")) == 505
    assert _status(_talk(server.port, b"GET\r\n\r\n")) == 400
    assert _status(_talk(server.port, b"GET / HTTP/1.1\r\nno colon here\r\n\r\n")) == 400
    head = _talk(server.port, b"HEAD /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert _status(head) == 200 and head.endswith(b"\r\n\r\n")  # headers only
    old = _talk(server.port, b"GET /metrics HTTP/1.0\r\n\r\n")  # HTTP/1.0: closes after one answer
    assert _status(old) == 200 and b"node_load1 0.5" in old and b"Connection: close" in old


def test_keep_alive_and_pipelined_requests_answer_in_order(server: MetricsServer) -> None:
    two = b"GET /healthz HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n"
    raw = _talk(server.port, two)
    first, second = raw.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"200") and first.endswith(b"ok\n")
    assert second.startswith(b"200") and b"node_load1 0.5" in second


def test_the_whole_head_has_one_deadline_however_it_trickles(server: MetricsServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\n")
        start = time.monotonic()
        closed_after = None
        for _ in range(10):
            time.sleep(0.3)
            try:
                sock.sendall(b"X-Slow: 1\r\n")
                if sock.recv(1, socket.MSG_DONTWAIT) == b"":
                    closed_after = time.monotonic() - start
                    break
            except BlockingIOError:
                continue
            except OSError:
                closed_after = time.monotonic() - start
                break
    assert closed_after is not None and closed_after < 2.0  # head_timeout is 1 s; each line came in 0.3 s


def test_at_the_cap_the_longest_waiting_connection_makes_room(server: MetricsServer) -> None:
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(6)]
    try:
        time.sleep(0.1)
        # The per-client cap (6) is reached: a prompt request still gets in, and the oldest idle one goes.
        raw = _talk(server.port, b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert _status(raw) == 200
        assert server.loop is not None and server.loop.evicted >= 1
        idle[0].settimeout(2)
        assert idle[0].recv(1) == b""  # the longest-waiting connection was closed
    finally:
        for sock in idle:
            sock.close()


def test_a_connect_burst_at_the_cap_parks_newcomers_instead_of_closing_requests_in_progress(
        server: MetricsServer) -> None:
    # Six connections (the per-client cap) have begun their requests; six more arrive at once before any of
    # the first has finished. Closing the longest-waiting one per arrival would close all six in progress.
    started = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(6)]
    burst = []
    try:
        for sock in started:
            sock.sendall(b"GET /metrics HTTP/1.1\r\n")
        time.sleep(0.05)
        burst = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(6)]
        for sock in burst:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
        time.sleep(0.1)
        for sock in started:  # each finishes its head well inside the deadline
            sock.sendall(b"Connection: close\r\n\r\n")
        answers = []
        for sock in started + burst:
            out = b""
            while chunk := sock.recv(65536):
                out += chunk
            answers.append(_status(out))
        assert answers == [200] * 12, answers
        assert server.loop is not None and server.loop.evicted == 0
    finally:
        for sock in started + burst:
            sock.close()


def test_newcomers_beyond_the_parking_wait_in_the_backlog_and_all_get_in(server: MetricsServer) -> None:
    # Six slow connections hold the per-client cap, younger than evict_after. Eight prompt requests arrive
    # at once, more than max_parked (4): four are parked, the rest wait in the kernel's backlog, and every one
    # is answered once the slow ones have aged past evict_after -- none is refused.
    slow = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(6)]
    try:
        for sock in slow:
            sock.sendall(b"GET /metrics HTTP/1.1\r\n")
        time.sleep(0.05)
        with ThreadPoolExecutor(8) as pool:
            raws = list(pool.map(lambda _: _talk(server.port, b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n"),
                                 range(8)))
        assert [_status(r) for r in raws] == [200] * 8
        assert server.loop is not None and server.loop.evicted >= 1 and server.loop.refused == 0
    finally:
        for sock in slow:
            sock.close()
