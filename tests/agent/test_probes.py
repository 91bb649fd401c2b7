"""The probes collector against real HTTP, HTTPS and TCP endpoints on 127.0.0.1."""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.catalog import MetricSet
from agent.collector import AgentContext, NotApplicable
from agent.collectors.probes import HttpProbe, ProbesCollector, ProbesOptions, TcpProbe, split_address
from tests.agent.scan_helpers import run_once
from tests.support.tls import make_cert


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        code = {"/ok": 200, "/fail": 500, "/missing": 404}.get(self.path, 404)
        body = f"status {code}\n".encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        pass


@dataclass
class Server:
    base: str
    port: int


def serve(tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    port = httpd.server_address[1]
    try:
        yield Server(f"{'https' if tls else 'http'}://127.0.0.1:{port}", port)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


@pytest.fixture
def http_server() -> Iterator[Server]:
    yield from serve()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel completes the handshake) and never says anything."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture
def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connections are refused at once
    return port


def collect(opts: ProbesOptions, tmp_path: Path) -> MetricSet:
    c = ProbesCollector(opts, AgentContext(state_dir=tmp_path))
    try:
        out = c.new_metric_set()
        c.collect(out)
        return out
    finally:
        c.close()


def http(out: MetricSet, target: str) -> tuple[float | None, float | None, float | None]:
    labels = {"target": target, "kind": "http"}
    return (
        out.get("shaobing_probe_success", labels),
        out.get("shaobing_probe_http_status_code", {"target": target}),
        out.get("shaobing_probe_duration_seconds", labels),
    )


def test_http_status_and_redirects(http_server: Server, tmp_path: Path) -> None:
    opts = ProbesOptions(
        http=[
            HttpProbe("ok", f"{http_server.base}/ok"),
            HttpProbe("fail", f"{http_server.base}/fail"),
            HttpProbe("redirect", f"{http_server.base}/redirect"),
            HttpProbe("redirect-not-followed", f"{http_server.base}/redirect", follow_redirects=False),
            HttpProbe("expect-404", f"{http_server.base}/missing", expect_status=[404]),
        ]
    )
    out = collect(opts, tmp_path)
    assert http(out, "ok")[:2] == (1, 200)
    assert 0 < (http(out, "ok")[2] or 0) < 5
    assert http(out, "fail")[:2] == (0, 500)
    assert http(out, "redirect")[:2] == (1, 200)
    assert http(out, "redirect-not-followed")[:2] == (1, 302)  # 3xx counts as up by default
    assert http(out, "expect-404")[:2] == (1, 404)
    assert out.samples("shaobing_tls_cert_expiry_timestamp_seconds") == []  # plain http: no certificate


def test_https_certificate_expiry_valid_and_expired(tmp_path: Path) -> None:
    # Self-signed for 127.0.0.1: each certificate is its own CA, trusted only where ca_file names it.
    soon_cert = make_cert(tmp_path, "soon", None, days=2)
    past_cert = make_cert(tmp_path, "expired", None, days=-3)
    soon, past = soon_cert.cert.not_valid_after_utc, past_cert.cert.not_valid_after_utc
    good = serve(tls_context(soon_cert.cert_file, soon_cert.key_file))
    old = serve(tls_context(past_cert.cert_file, past_cert.key_file))
    good_srv, old_srv = next(good), next(old)
    try:
        opts = ProbesOptions(
            http=[
                HttpProbe("trusted", f"{good_srv.base}/ok", ca_file=str(soon_cert.cert_file)),
                HttpProbe("untrusted", f"{good_srv.base}/ok"),  # self-signed, system CAs: verification fails
                HttpProbe("insecure", f"{good_srv.base}/ok", verify_tls=False),
                HttpProbe("expired", f"{old_srv.base}/ok", ca_file=str(past_cert.cert_file)),
            ]
        )
        out = collect(opts, tmp_path)
    finally:
        good.close()
        old.close()
    expiry = "shaobing_tls_cert_expiry_timestamp_seconds"
    assert http(out, "trusted")[:2] == (1, 200)
    assert out.get(expiry, {"target": "trusted"}) == soon.timestamp()
    assert http(out, "untrusted")[:2] == (0, 0)
    assert out.get(expiry, {"target": "untrusted"}) == soon.timestamp()  # reported although not trusted
    assert http(out, "insecure")[:2] == (1, 200)
    assert http(out, "expired")[:2] == (0, 0)
    assert out.get(expiry, {"target": "expired"}) == past.timestamp()  # the expiry of an expired certificate


def test_silent_and_closed_ports_fail_within_their_timeout(
    silent_port: int, closed_port: int, http_server: Server, tmp_path: Path
) -> None:
    opts = ProbesOptions(
        http=[
            HttpProbe("silent-http", f"http://127.0.0.1:{silent_port}/", timeout=0.5),
            HttpProbe("closed-http", f"http://127.0.0.1:{closed_port}/", timeout=0.5),
        ],
        tcp=[
            TcpProbe("silent-tcp", f"127.0.0.1:{silent_port}", timeout=0.5),  # accepts: the TCP probe succeeds
            TcpProbe("closed-tcp", f"127.0.0.1:{closed_port}", timeout=0.5),
            TcpProbe("web-tcp", f"127.0.0.1:{http_server.port}"),
        ],
    )
    started = time.monotonic()
    out = collect(opts, tmp_path)
    assert time.monotonic() - started < 2.0
    success, code, duration = http(out, "silent-http")
    assert (success, code) == (0, 0)
    assert duration is not None and 0.4 < duration < 1.5
    assert http(out, "closed-http")[:2] == (0, 0)
    assert (http(out, "closed-http")[2] or 1) < 0.4
    tcp = {
        dict(s.labels)["target"]: s.value for s in out.samples("shaobing_probe_success") if ("kind", "tcp") in s.labels
    }
    assert tcp == {"silent-tcp": 1, "closed-tcp": 0, "web-tcp": 1}


def test_concurrency_bounds_the_total_time(silent_port: int, tmp_path: Path) -> None:
    # 16 probes that each hang for their 0.5 s timeout, 8 at a time: about 1 s, not 8 s.
    opts = ProbesOptions(
        http=[HttpProbe(f"p{i}", f"http://127.0.0.1:{silent_port}/", timeout=0.5) for i in range(16)],
        max_concurrency=8,
    )
    started = time.monotonic()
    out = collect(opts, tmp_path)
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 3.0
    assert {s.value for s in out.samples("shaobing_probe_success")} == {0}


def test_collector_budget_caps_slow_probes(silent_port: int, tmp_path: Path) -> None:
    # Probe timeouts longer than the collector's own: collect() still returns in time, the probe reads failed.
    opts = ProbesOptions(http=[HttpProbe("slow", f"http://127.0.0.1:{silent_port}/", timeout=30)], timeout=1.0)
    started = time.monotonic()
    out = collect(opts, tmp_path)
    assert time.monotonic() - started < 1.5
    assert http(out, "slow")[:2] == (0, 0)


def test_options_validation() -> None:
    assert [k for k, _ in HttpProbe("x", "ftp://host/").problems()] == ["url"]
    assert [k for k, _ in HttpProbe("x", "http://h/", method="TRACE").problems()] == ["method"]
    assert [k for k, _ in HttpProbe("x", "http://h/", expect_status=[99]).problems()] == ["expect_status"]
    assert [k for k, _ in HttpProbe("x", "https://h/", ca_file="/nonexistent/ca.pem").problems()] == ["ca_file"]
    assert [k for k, _ in TcpProbe("x", "::1:80").problems()] == ["address"]
    assert TcpProbe("x", "[::1]:80").problems() == []
    assert split_address("db.example:3306") == ("db.example", 3306)
    dup = ProbesOptions(http=[HttpProbe("a", "http://h/")], tcp=[TcpProbe("a", "h:1")]).problems()
    assert [k for k, _ in dup] == ["tcp"]


def test_no_probes_is_not_applicable(tmp_path: Path) -> None:
    with pytest.raises(NotApplicable):
        collect(ProbesOptions(), tmp_path)
    c = ProbesCollector(ProbesOptions(), AgentContext(state_dir=tmp_path))
    assert not run_once(c).applicable
    assert c.report() is None


def test_scan_report(tmp_path: Path, closed_port: int, http_server: Server) -> None:
    soon_cert = make_cert(tmp_path, "soon", None, days=2)
    tls = serve(tls_context(soon_cert.cert_file, soon_cert.key_file))
    srv = next(tls)
    try:
        opts = ProbesOptions(
            http=[
                HttpProbe("portal", f"{srv.base}/ok", ca_file=str(soon_cert.cert_file)),
                HttpProbe("api", f"{http_server.base}/fail"),
            ],
            tcp=[TcpProbe("db", f"127.0.0.1:{closed_port}", timeout=0.5)],
        )
        c = ProbesCollector(opts, AgentContext(state_dir=tmp_path))
        try:
            assert c.report() is None  # nothing to say before a run
            assert run_once(c).success
            section = c.report()
        finally:
            c.close()
    finally:
        tls.close()
    assert section is not None
    titles = {(f.severity, f.title, f.detail) for f in section.findings}
    assert ("critical", "探测 api 失败 (probe failed)", "HTTP 状态码 500") in titles
    assert ("critical", "探测 db 失败 (probe failed)", "无响应或连接失败 (no response)") in titles
    assert ("critical", "portal 的 TLS 证书2 天后过期 (certificate expiry)", "") in titles
    assert not any("portal" in t and "探测" in t for _, t, _ in titles)


def test_urls_in_log_lines_and_errors_carry_no_credentials_or_query() -> None:
    from agent.redact import redact_url

    assert redact_url("https://admin:hunter2@oa.example:8443/x?token=abc&k=v") == "https://oa.example:8443/x?…"
    assert redact_url("http://[::1]:9/") == "http://[::1]:9/"
    assert "hunter2" not in redact_url("ftp//admin:hunter2@x")


def test_certificate_expiry_with_cryptography_40_and_without_cryptography(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.6 gets cryptography 40 (no not_valid_after_utc); a CPU without a cryptography wheel gets none: the
    expiry is then absent, and the probe itself still runs."""
    from cryptography import x509

    from agent.collectors.probes import fetch_cert_expiry

    cert = make_cert(tmp_path, "soon", None, days=9)
    soon = cert.cert.not_valid_after_utc
    gen = serve(tls_context(cert.cert_file, cert.key_file))
    srv = next(gen)
    port = int(srv.base.rsplit(":", 1)[1])
    real = x509.load_der_x509_certificate

    class Cryptography40Certificate:  # the 40.x API: a naive UTC datetime, no *_utc properties
        def __init__(self, der: bytes) -> None:
            self.not_valid_after = real(der).not_valid_after_utc.replace(tzinfo=None)

    try:
        monkeypatch.setattr(x509, "load_der_x509_certificate", Cryptography40Certificate)
        assert fetch_cert_expiry("127.0.0.1", port, 5) == soon.timestamp()
        monkeypatch.setitem(sys.modules, "cryptography", None)  # import fails as if not installed
        assert fetch_cert_expiry("127.0.0.1", port, 5) is None
        out = collect(ProbesOptions(http=[HttpProbe("site", f"{srv.base}/ok", verify_tls=False)]), tmp_path)
        assert http(out, "site")[:2] == (1, 200)
        assert out.samples("shaobing_tls_cert_expiry_timestamp_seconds") == []
    finally:
        gen.close()
