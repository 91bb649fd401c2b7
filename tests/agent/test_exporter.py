"""The HTTP endpoint: cached bytes, gzip, TLS (incl. client certificates), bcrypt basic auth under a burst."""

from __future__ import annotations

import base64
import gzip
import http.client
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from agent.exporter import CONTENT_TYPE, ExpositionCache, MetricsServer, gzip_stored
from agent.schema import SchemaError
from agent.webconfig import WebConfig, load_web_config
from tests.support.tls import make_ca, make_cert

PASSWORD = "s3cret-Scrape"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def cache() -> ExpositionCache:
    c = ExpositionCache()
    c.put("health", b"# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\nnode_load1 0.25\n")
    return c


def serve(cache: ExpositionCache, web: WebConfig) -> MetricsServer:
    server = MetricsServer(cache)
    server.start("127.0.0.1", 0, web)
    return server


@pytest.fixture
def plain_server(cache: ExpositionCache) -> Iterator[MetricsServer]:
    server = serve(cache, WebConfig())
    yield server
    server.stop()


def get(port: int, path: str, headers: dict[str, str] | None = None,
        context: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], bytes]:
    conn: http.client.HTTPConnection
    if context is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_metrics_landing_healthz_and_404(plain_server: MetricsServer) -> None:
    status, headers, body = get(plain_server.port, "/metrics")
    assert status == 200
    assert headers["content-type"] == CONTENT_TYPE
    assert b"node_load1 0.25" in body
    status, _, body = get(plain_server.port, "/healthz")
    assert (status, body) == (200, b"ok\n")
    status, _, body = get(plain_server.port, "/")
    assert status == 200 and "哨兵".encode() in body and b"/metrics" in body
    assert get(plain_server.port, "/nope")[0] == 404


def test_gzip_when_asked(plain_server: MetricsServer, cache: ExpositionCache) -> None:
    status, headers, body = get(plain_server.port, "/metrics", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    page = gzip.decompress(body)
    assert page.startswith(cache.page()[0]) and b"\nnode_time_seconds " in page


def test_node_time_seconds_is_the_time_the_page_is_served(plain_server: MetricsServer, cache: ExpositionCache) -> None:
    """The cached page does not change between the two scrapes; node_time_seconds does, with the wall clock
    at serve time (was: the health collector's last run, up to a cycle old). Plain and gzip (a second gzip
    member) both parse as one valid exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    def served(headers: dict[str, str]) -> tuple[float, float, list[str]]:
        before = time.time()
        _, got, body = get(plain_server.port, "/metrics", headers)
        after = time.time()
        text = (gzip.decompress(body) if got.get("content-encoding") == "gzip" else body).decode()
        families = list(text_string_to_metric_families(text))
        value = next(f.samples[0].value for f in families if f.name == "node_time_seconds")
        assert before - 0.01 <= value <= after + 0.01
        return value, after, [f.name for f in families]

    first, _, names = served({})
    assert names == ["node_load1", "node_time_seconds"]
    time.sleep(1.2)
    second, _, names = served({"Accept-Encoding": "gzip"})
    assert names == ["node_load1", "node_time_seconds"]
    assert second - first >= 1.2
    assert b"node_time_seconds" not in cache.page()[0]


@pytest.mark.parametrize("size", [0, 1, 97, 65535])
def test_the_stored_gzip_member_reads_back_in_gnu_gzip_and_python(size: int) -> None:
    """The clock line's gzip member is written by hand (a stored deflate block): GNU gzip (a decoder we did
    not write) and Python's zlib both accept it after a compressed member, and its CRC and length check."""
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    body = gzip.compress(b"a 1\n", compresslevel=1) + gzip_stored(data)
    assert gzip.decompress(body) == b"a 1\n" + data
    res = subprocess.run(["gzip", "-t"], input=body, capture_output=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert subprocess.run(["gzip", "-dc"], input=body, capture_output=True, timeout=30).stdout == b"a 1\n" + data
    broken = bytearray(body)
    broken[-5] ^= 0x01  # one bit of the CRC
    assert subprocess.run(["gzip", "-t"], input=bytes(broken), capture_output=True, timeout=30).returncode != 0
    with pytest.raises(ValueError, match="65535"):
        gzip_stored(bytes(65536))


def test_page_swaps_whole_chunks(cache: ExpositionCache) -> None:
    cache.set_order(["health", "self"])
    cache.put("self", b"b 1\n")
    assert cache.page()[0].endswith(b"b 1\n")
    cache.put("health", b"a 2\n")
    assert cache.page()[0] == b"a 2\nb 1\n"
    cache.retain({"self"})
    assert cache.page()[0] == b"b 1\n"
    assert gzip.decompress(cache.page()[1]) == b"b 1\n"


@pytest.fixture
def auth_server(cache: ExpositionCache) -> Iterator[MetricsServer]:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    server = serve(cache, WebConfig(basic_auth_users={"prometheus": hashed}))
    yield server
    server.stop()


def test_basic_auth(auth_server: MetricsServer) -> None:
    port = auth_server.port
    assert get(port, "/metrics")[0] == 401
    status, headers, _ = get(port, "/metrics", basic("prometheus", "wrong"))
    assert status == 401 and headers["www-authenticate"].startswith("Basic")
    assert get(port, "/metrics", basic("nobody", PASSWORD))[0] == 401
    assert get(port, "/metrics", {"Authorization": "Basic !!notbase64"})[0] == 401
    assert get(port, "/metrics", {"Authorization": "Bearer x"})[0] == 401
    status, _, body = get(port, "/metrics", basic("prometheus", PASSWORD))
    assert status == 200 and b"node_load1" in body


def test_keeps_serving_under_a_burst_of_bad_requests(auth_server: MetricsServer) -> None:
    """Distinct wrong passwords (each a bcrypt check) and slow clients; a good scrape still answers."""
    port = auth_server.port
    get(port, "/metrics", basic("prometheus", PASSWORD))  # Prometheus' credentials are cached from here on
    stop = threading.Event()
    bad_statuses: list[int] = []

    def attacker(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                bad_statuses.append(get(port, "/metrics", basic("prometheus", f"guess-{n}-{i}"))[0])
            except OSError:
                pass

    # Slow clients that connect and send nothing hold a connection each, not the server.
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
    threads = [threading.Thread(target=attacker, args=(n,), daemon=True) for n in range(8)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        worst = 0.0
        for _ in range(10):
            start = time.monotonic()
            status, _, body = get(port, "/metrics", basic("prometheus", PASSWORD))
            worst = max(worst, time.monotonic() - start)
            assert status == 200 and b"node_load1" in body
        # Generous bound for a loaded 2-core CI machine: the point is "answers", not a benchmark.
        assert worst < 5.0
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        for s in idle:
            s.close()
    assert bad_statuses and set(bad_statuses) == {401}


def write_web(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "web.yml"
    path.write_text(text)
    return path


def test_tls_and_client_certificates(tmp_path: Path, cache: ExpositionCache) -> None:
    ca = make_ca(tmp_path)
    make_cert(tmp_path, "server", ca)  # server.crt and server.key, named in the web config below
    client = make_cert(tmp_path, "client", ca, hosts=["prometheus"], client=True)
    web = load_web_config(str(write_web(tmp_path, (
        "tls_server_config:\n"
        "  cert_file: server.crt\n"  # relative to the web config file, as exporter-toolkit resolves it
        "  key_file: server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n"
        "  client_ca_file: ca.crt\n"
    ))))
    server = serve(cache, web)
    try:
        trusting = ssl.create_default_context(cafile=str(ca.cert_file))
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            get(server.port, "/metrics", context=trusting)  # no client certificate
        trusting.load_cert_chain(str(client.cert_file), str(client.key_file))
        status, _, body = get(server.port, "/metrics", context=trusting)
        assert status == 200 and b"node_load1" in body
        # Plain HTTP to a TLS port gets nothing useful and does not disturb the server.
        with pytest.raises((http.client.HTTPException, OSError)):
            get(server.port, "/metrics")
        assert get(server.port, "/healthz", context=trusting)[0] == 200
    finally:
        server.stop()


def test_web_config_errors(tmp_path: Path) -> None:
    with pytest.raises(SchemaError) as info:
        load_web_config(str(write_web(tmp_path, "tls_server_config:\n  cert_file: a\n  key_file: b\n")))
    assert "cannot load certificate/key" in str(info.value)
    with pytest.raises(SchemaError) as info:
        load_web_config(str(write_web(tmp_path, (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n"
            "basic_auth_users:\n  u: hunter2\nbasic_auth_user: {}\n"))))
    text = str(info.value)
    assert "tls_server_config.client_ca_file: client_auth_type RequireAndVerifyClientCert needs" in text
    assert "basic_auth_users.u: must be a bcrypt hash" in text
    assert "basic_auth_user: unknown key (did you mean 'basic_auth_users'?)" in text
    assert "hunter2" not in text  # a mistaken plain password is never echoed back


def test_a_flood_of_wrong_passwords_never_evicts_the_good_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    import bcrypt

    from agent.webconfig import BasicAuth

    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=4)).decode()
    auth = BasicAuth({"prometheus": hashed}, cache_size=16)
    assert auth.check("prometheus", "right")
    calls = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda p, h: calls.append(1) or real(p, h))
    for i in range(100):  # far more distinct wrong passwords than the bad-verdict cache holds
        assert not auth.check("prometheus", f"wrong-{i}")
    assert len(calls) == 100
    assert auth.check("prometheus", "right")  # still cached: no bcrypt, no wait behind the flood
    assert len(calls) == 100
    assert not auth.check("prometheus", "wrong-99")  # the most recent wrong ones are cached (LRU)
    assert not auth.check("prometheus", "wrong-0")  # the oldest was evicted: checked again
    assert len(calls) == 101
