"""HTTP(S) and TCP probes of the endpoints the operator names, blackbox_exporter style.

Sample::

    shaobing_probe_success{kind="http",target="oa-portal"} 1
    shaobing_probe_duration_seconds{kind="http",target="oa-portal"} 0.0231
    shaobing_probe_http_status_code{target="oa-portal"} 200
    shaobing_tls_cert_expiry_timestamp_seconds{target="oa-portal"} 1798761599
    shaobing_probe_success{kind="tcp",target="mysql"} 0
    shaobing_probe_duration_seconds{kind="tcp",target="mysql"} 0.0004

Behaviour:

- HTTP: one request with httpx, redirects followed (blackbox_exporter's default), no proxy from the environment,
  no keep-alive (every probe opens a fresh connection, so a dead listener is seen). Success when the final
  status is in ``expect_status`` (default 200-399). The status code is 0 when no response came.
- TLS expiry: for ``https://`` targets the leaf certificate's notAfter, taken from a separate handshake with
  verification off, so an expired, self-signed or wrong-host certificate still reports when it expires (that
  is exactly when the number matters). Absent when no handshake succeeds.
- TCP: a connect to ``address`` (``host:port``, ``[v6]:port``) within ``timeout``.
- No probes configured: the collector is not applicable (``shaobing_collector_applicable 0``).
- Every probe is bounded by its own timeout; at most ``max_concurrency`` run at once, and ``collect`` gives up
  on probes still queued or running shortly before the collector's own timeout (they read as failed).
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional
from urllib.parse import urlsplit

from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector, CollectorOptions, NotApplicable
from agent.compat import shutdown_now
from agent.redact import redact_url
from agent.report import Finding, Section

if TYPE_CHECKING:
    # Imported where used: httpx (and its TLS stack) costs megabytes of RSS on hosts that configure no probes.
    import ssl

    import httpx

__all__ = ["ProbesCollector", "ProbesOptions", "HttpProbe", "TcpProbe", "ProbeResult", "fetch_cert_expiry"]

log = logging.getLogger(__name__)

_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "OPTIONS")
_BODY_LIMIT = 4 << 20  # read at most this much of a body: enough to time a page, not to eat memory


@dataclass
class HttpProbe:
    """``collectors.probes.http[]``."""

    name: str
    url: str
    method: str = "GET"
    timeout: float = field(default=5.0, metadata={"duration": True, "min": 0.1})
    expect_status: list[int] = field(default_factory=list)  # empty: any 2xx or 3xx
    verify_tls: bool = True
    ca_file: Optional[str] = None  # noqa: UP045 - evaluated at runtime by the config loader on Python 3.9
    headers: dict[str, str] = field(default_factory=dict)
    follow_redirects: bool = True

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            shown = redact_url(self.url)
            out.append(("url", f"需要 http:// 或 https:// 地址 expected an http:// or https:// URL, got {shown!r}"))
        if self.method.upper() not in _HTTP_METHODS:
            out.append(("method", f"must be one of {', '.join(_HTTP_METHODS)}, got {self.method!r}"))
        for code in self.expect_status:
            if not 100 <= code <= 599:
                out.append(("expect_status", f"not an HTTP status code: {code}"))
        if self.ca_file is not None and not os.path.isfile(self.ca_file):
            out.append(("ca_file", f"文件不存在 no such file: {self.ca_file}"))
        return out


@dataclass
class TcpProbe:
    """``collectors.probes.tcp[]``."""

    name: str
    address: str  # host:port or [v6]:port
    timeout: float = field(default=3.0, metadata={"duration": True, "min": 0.1})

    def problems(self) -> list[tuple[str, str]]:
        try:
            split_address(self.address)
        except ValueError as exc:
            return [("address", str(exc))]
        return []


@dataclass
class ProbesOptions(CollectorOptions):
    """``collectors.probes`` in agent.yml."""

    http: list[HttpProbe] = field(default_factory=list)
    tcp: list[TcpProbe] = field(default_factory=list)
    max_concurrency: int = field(default=8, metadata={"min": 1, "max": 64})

    def problems(self) -> list[tuple[str, str]]:
        seen: set[str] = set()
        out: list[tuple[str, str]] = []
        for key, names in (("http", [p.name for p in self.http]), ("tcp", [p.name for p in self.tcp])):
            for name in names:
                if name in seen:
                    out.append((key, f"探测名称重复 duplicate probe name {name!r} (names label the series)"))
                seen.add(name)
        return out


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` / ``[::1]:port`` -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"需要 host:port 形式 expected host:port, got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"IPv6 地址需加方括号 put an IPv6 address in brackets, [::1]:80, got {address!r}")
    return host, int(port)


@dataclass
class ProbeResult:
    kind: str
    name: str
    success: bool
    duration: float
    status_code: Optional[int] = None  # noqa: UP045
    cert_expiry: Optional[float] = None  # noqa: UP045


def fetch_cert_expiry(host: str, port: int, timeout: float, server_name: str | None = None) -> float | None:
    """notAfter of the leaf certificate (Unix time) from a handshake that verifies nothing, or None."""
    try:
        from cryptography import x509  # lazy: only agents with https probes pay for the import
    except ImportError:
        # A CPU the bundle has no cryptography wheel for (docs/deploy.md): the expiry series is absent, not 0.
        log.warning("no cryptography module: the certificate expiry of https probes is not exported")
        return None

    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
        with raw, ctx.wrap_socket(raw, server_hostname=server_name or host) as tls:
            der = tls.getpeercert(binary_form=True)
    except (OSError, ValueError) as exc:
        log.debug("TLS handshake with %s:%d for the certificate failed: %s", host, port, exc)
        return None
    if not der:
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        log.debug("certificate of %s:%d does not parse: %s", host, port, exc)
        return None
    after = getattr(cert, "not_valid_after_utc", None)  # cryptography 42+; 40 (Python 3.6) has the naive UTC one
    if after is None:
        after = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return float(after.timestamp())


class ProbesCollector(Collector):
    """The HTTP(S) and TCP probes named in ``collectors.probes``."""

    name = "probes"
    title = "探测 (Probes)"
    options_class = ProbesOptions
    default_interval = 30.0
    default_timeout = 25.0
    default_jitter = 2.0
    metrics = (
        MetricSpec(
            "shaobing_probe_success", "gauge", "Whether the probe succeeded (1) or not (0).", ("target", "kind")
        ),
        MetricSpec(
            "shaobing_probe_duration_seconds",
            "gauge",
            "How long the probe took, in seconds.",
            ("target", "kind"),
            "seconds",
        ),
        MetricSpec(
            "shaobing_probe_http_status_code",
            "gauge",
            "Status code of the final HTTP response (0: no response).",
            ("target",),
        ),
        MetricSpec(
            "shaobing_tls_cert_expiry_timestamp_seconds",
            "gauge",
            "When the leaf TLS certificate of an https target expires (notAfter), valid or not.",
            ("target",),
            "seconds",
        ),
    )

    def __init__(self, options: ProbesOptions, context: AgentContext) -> None:
        super().__init__(options, context)
        self.options: ProbesOptions = options
        # Building an SSL context loads the CA bundle (milliseconds of CPU): one client per TLS setting, reused.
        self._clients: dict[tuple[bool, str | None, bool], httpx.Client] = {}
        self._clients_lock = threading.Lock()  # probes run in worker threads

    def close(self) -> None:
        with self._clients_lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def _client(self, probe: HttpProbe) -> httpx.Client:
        key = (probe.verify_tls, probe.ca_file, probe.follow_redirects)
        with self._clients_lock:
            return self._clients.get(key) or self._new_client(key, probe)

    def _new_client(self, key: tuple[bool, str | None, bool], probe: HttpProbe) -> httpx.Client:
        import ssl

        import httpx

        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=probe.ca_file) if probe.verify_tls else False
        client = httpx.Client(
            verify=verify,
            follow_redirects=probe.follow_redirects,
            trust_env=False,  # a proxy from the environment would probe the proxy, not the target
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={"User-Agent": "shaobing-probe"},
        )
        self._clients[key] = client
        return client

    def collect(self, out: MetricSet) -> None:
        probes: list[HttpProbe | TcpProbe] = [*self.options.http, *self.options.tcp]
        if not probes:
            raise NotApplicable("no probes configured (collectors.probes.http / tcp)")
        started = time.monotonic()
        # Leave the scheduler's hard timeout some room: a probe still running then reads as failed, not hung.
        budget = max(0.5, min(self.timeout - 1.0, self.timeout * 0.9))
        pool = ThreadPoolExecutor(
            max_workers=min(self.options.max_concurrency, len(probes)), thread_name_prefix="probe"
        )
        try:
            futures: dict[Future[ProbeResult], HttpProbe | TcpProbe] = {}
            for probe in probes:
                fn = self._probe_http if isinstance(probe, HttpProbe) else self._probe_tcp
                futures[pool.submit(fn, probe)] = probe  # type: ignore[arg-type]
            done, _ = wait(futures, timeout=budget)
        finally:
            shutdown_now(pool)
        for fut, probe in futures.items():
            kind = "http" if isinstance(probe, HttpProbe) else "tcp"
            if fut in done and fut.exception() is None:
                result = fut.result()
            else:
                if fut not in done:
                    log.warning("probe %s did not finish within the collector's %.1fs budget", probe.name, budget)
                else:
                    log.warning("probe %s raised: %r", probe.name, fut.exception())
                result = ProbeResult(kind, probe.name, False, time.monotonic() - started, 0 if kind == "http" else None)
            labels = {"target": probe.name, "kind": kind}
            out.add("shaobing_probe_success", 1 if result.success else 0, labels)
            out.add("shaobing_probe_duration_seconds", result.duration, labels)
            if result.status_code is not None:
                out.add("shaobing_probe_http_status_code", result.status_code, {"target": probe.name})
            if result.cert_expiry is not None:
                out.add("shaobing_tls_cert_expiry_timestamp_seconds", result.cert_expiry, {"target": probe.name})

    def report(self) -> Section | None:
        out = self.last_metrics
        if out is None:
            return None
        section = Section(self.title)
        for sample in out.samples("shaobing_probe_success"):
            if sample.value:
                continue
            labels = dict(sample.labels)
            target = labels["target"]
            code = out.get("shaobing_probe_http_status_code", {"target": target})
            detail = f"HTTP 状态码 {code:.0f}" if code else "无响应或连接失败 (no response)"
            section.findings.append(
                Finding("critical", f"探测 {target} 失败 (probe failed)", detail, "检查该服务及其网络连通性")
            )
        now = self.context.clock()
        for sample in out.samples("shaobing_tls_cert_expiry_timestamp_seconds"):
            target = dict(sample.labels)["target"]
            days = (sample.value - now) / 86400
            if days < 30:
                section.findings.append(
                    Finding(
                        "critical" if days < 7 else "warning",
                        f"{target} 的 TLS 证书{'已过期' if days < 0 else f'{days:.0f} 天后过期'} (certificate expiry)",
                        fix="续期证书并重新加载服务",
                    )
                )
        return section

    def _probe_tcp(self, probe: TcpProbe) -> ProbeResult:
        host, port = split_address(probe.address)
        started = time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=probe.timeout):
                ok = True
        except OSError as exc:
            log.debug("tcp probe %s (%s) failed: %s", probe.name, probe.address, exc)
            ok = False
        return ProbeResult("tcp", probe.name, ok, time.monotonic() - started)

    def _probe_http(self, probe: HttpProbe) -> ProbeResult:
        import httpx

        started = time.monotonic()
        deadline = started + probe.timeout
        status = 0
        try:
            with self._client(probe).stream(
                probe.method.upper(), probe.url, headers=probe.headers, timeout=probe.timeout
            ) as response:
                status = response.status_code
                read = 0
                # httpx's timeouts are per socket operation; a server trickling bytes must not outlast ours.
                for chunk in response.iter_raw():
                    read += len(chunk)
                    if read >= _BODY_LIMIT or time.monotonic() > deadline:
                        break
            if time.monotonic() > deadline:
                status_ok = False
                log.debug("http probe %s: response slower than %.1fs", probe.name, probe.timeout)
            else:
                status_ok = status in probe.expect_status if probe.expect_status else 200 <= status < 400
        except (httpx.HTTPError, OSError) as exc:  # ssl.SSLError is an OSError
            log.debug("http probe %s (%s) failed: %s", probe.name, redact_url(probe.url), type(exc).__name__)
            status_ok = False
        duration = time.monotonic() - started
        expiry = None
        parts = urlsplit(probe.url)
        if parts.scheme == "https" and parts.hostname:
            remaining = max(0.5, deadline - time.monotonic())
            expiry = fetch_cert_expiry(parts.hostname, parts.port or 443, remaining)
        return ProbeResult("http", probe.name, status_ok, duration, status, expiry)
