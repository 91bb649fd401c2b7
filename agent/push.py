"""Push mode, for township hosts behind NAT that the centre cannot scrape.

Every ``interval`` the pusher takes the agent's current exposition (the same bytes /metrics serves) and
delivers it to one of:

* **VictoriaMetrics** (``mode: victoriametrics``): ``POST /api/v1/import/prometheus`` with the host's labels as
  ``extra_label`` parameters. Each snapshot is stamped with the time it was taken and written to a disk buffer
  under ``<state_dir>/push-buffer/`` *before* any delivery attempt, so a link outage of hours loses nothing:
  when the link is back the segments are sent oldest first and each keeps its original timestamps. The
  buffer is bounded (``buffer_max_bytes``); when full the oldest segments are dropped and counted.
* **Pushgateway** (``mode: pushgateway``): ``PUT /metrics/job/<job>/instance/<instance>/<label>/<value>...``.
  A Pushgateway holds only the latest state of a group, so there is nothing to buffer: a missed push is
  simply retried with fresher numbers next time.

Exported under the cache owner ``~push`` (declared in ``PUSH_METRICS``)::

    shaobing_push_last_success_timestamp_seconds 1.7e9
    shaobing_push_failures_total 3
    shaobing_push_buffered_bytes 18234
    shaobing_push_buffered_samples 912
    shaobing_push_dropped_samples_total 0
"""

from __future__ import annotations

import base64
import gzip
import logging
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Optional
from urllib.parse import quote, urlencode, urlsplit

from agent import __version__
from agent.catalog import MetricSet, MetricSpec, render
from agent.exporter import ExpositionCache
from agent.schema import Problem, SchemaError

if TYPE_CHECKING:
    # Imported where used: agent.config imports this module on every host, push mode or not, and httpx costs
    # megabytes of RSS.
    import httpx

__all__ = ["PUSH_METRICS", "PUSH_OWNER", "PushOptions", "DiskBuffer", "Pusher", "timestamped_lines"]

log = logging.getLogger(__name__)

PUSH_OWNER = "~push"

PUSH_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("shaobing_push_last_success_timestamp_seconds", "gauge",
               "When the agent last delivered its metrics to the push target (absent until it has).",
               (), "seconds"),
    MetricSpec("shaobing_push_failures_total", "counter",
               "Push attempts that failed (network error, timeout or a non-2xx answer)."),
    MetricSpec("shaobing_push_buffered_bytes", "gauge",
               "Bytes of snapshots waiting on disk for delivery (VictoriaMetrics mode).", (), "bytes"),
    MetricSpec("shaobing_push_buffered_samples", "gauge",
               "Samples waiting on disk for delivery (VictoriaMetrics mode)."),
    MetricSpec("shaobing_push_dropped_samples_total", "counter",
               "Samples dropped unsent because the disk buffer was full (oldest first)."),
)

_SEGMENT_RE = re.compile(r"^(\d{13})-(\d{6})-(\d+)\.prom\.gz$")
# Pushgateway path segments: plain when safe, otherwise its documented ``@base64`` form (Chinese names, '/').
_PLAIN_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass
class PushOptions:
    """``push:`` in agent.yml. The labels pushed with every sample come from the top-level ``labels:``."""

    url: str
    mode: Literal["victoriametrics", "pushgateway"] = "victoriametrics"
    interval: float = field(default=60.0, metadata={"duration": True, "min": 5.0})
    timeout: float = field(default=10.0, metadata={"duration": True, "min": 1.0})
    job: str = "shaobing"
    # Defaults to the host name; it becomes the ``instance`` label, so keep it stable and unique.
    instance: Optional[str] = None
    buffer_max_bytes: int = field(default=64 * 1024 * 1024, metadata={"min": 1024 * 1024})
    username: Optional[str] = None
    password_file: Optional[str] = None
    ca_file: Optional[str] = None
    insecure_skip_verify: bool = False

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            out.append(("url", f"expected an http:// or https:// URL, got {self.url!r}"))
        if (self.username is None) != (self.password_file is None):
            out.append(("password_file", "username and password_file go together"))
        if not self.job or "/" in self.job:
            out.append(("job", "must be non-empty and contain no '/'"))
        return out


def timestamped_lines(page: bytes, timestamp_ms: int) -> bytes:
    """The sample lines of an exposition with a timestamp appended; comments and blank lines dropped.

    >>> timestamped_lines(b'# HELP a x\\n# TYPE a gauge\\na{b="1"} 2\\n', 1700000000000)
    b'a{b="1"} 2 1700000000000\\n'
    """
    out = []
    suffix = b" %d" % timestamp_ms
    for line in page.splitlines():
        if line and not line.startswith(b"#"):
            out.append(line + suffix)
    return b"\n".join(out) + b"\n" if out else b""


class DiskBuffer:
    """Snapshots waiting for delivery: one gzipped file per snapshot, named so that sorting is age order.

    File name: ``<ms timestamp>-<sequence>-<samples>.prom.gz``. Writes go to a temporary name and are renamed
    into place, so a crash never leaves a half-written segment that would be sent.
    """

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.dropped_samples = 0
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for stale in directory.glob("*.tmp"):
            stale.unlink(missing_ok=True)
        self._seq = 0

    def segments(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if _SEGMENT_RE.match(p.name))

    def stats(self) -> tuple[int, int]:
        """(bytes, samples) currently buffered."""
        size = samples = 0
        for p in self.segments():
            try:
                size += p.stat().st_size
            except FileNotFoundError:
                continue
            samples += _samples_of(p)
        return size, samples

    def append(self, lines: bytes, timestamp_ms: int) -> Optional[Path]:
        if not lines:
            return None
        samples = lines.count(b"\n")
        self._seq = (self._seq + 1) % 1_000_000
        name = f"{timestamp_ms:013d}-{self._seq:06d}-{samples}.prom.gz"
        final = self.directory / name
        tmp = self.directory / (name + ".tmp")
        data = gzip.compress(lines, compresslevel=6)
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        self._enforce_bound()
        return final

    def _enforce_bound(self) -> None:
        segments = self.segments()
        sizes = [p.stat().st_size for p in segments]
        total = sum(sizes)
        i = 0
        # Keep at least the newest segment even if it alone exceeds the bound.
        while total > self.max_bytes and i < len(segments) - 1:
            self.dropped_samples += _samples_of(segments[i])
            segments[i].unlink(missing_ok=True)
            total -= sizes[i]
            i += 1
        if i:
            log.warning("push buffer full (%d bytes max): dropped the %d oldest snapshot(s)", self.max_bytes, i)


def _samples_of(path: Path) -> int:
    m = _SEGMENT_RE.match(path.name)
    return int(m.group(3)) if m else 0


def _pushgateway_segment(name: str, value: str) -> str:
    if value and _PLAIN_SEGMENT_RE.match(value):
        return f"{name}/{quote(value, safe='')}"
    encoded = base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii")
    # An empty value must be written as "=" in base64 form (Pushgateway's documented rule).
    return f"{name}@base64/{encoded or '='}"


class Pusher:
    """The push loop: a daemon thread that snapshots the cache and delivers it every ``interval``."""

    def __init__(
        self,
        options: PushOptions,
        cache: ExpositionCache,
        state_dir: Path,
        labels: Optional[dict[str, str]] = None,
        transport: Optional[httpx.BaseTransport] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        self.options = options
        self.cache = cache
        self.labels = dict(labels or {})
        self.instance = options.instance or socket.gethostname()
        self.clock: Callable[[], float] = clock or time.time
        self.buffer: Optional[DiskBuffer] = None
        if options.mode == "victoriametrics":
            self.buffer = DiskBuffer(state_dir / "push-buffer", options.buffer_max_bytes)
        self.failures = 0
        self.last_success: Optional[float] = None
        self._failing_since: Optional[float] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        import httpx

        self._client = httpx.Client(
            timeout=options.timeout,
            transport=transport,
            verify=_verify(options),
            auth=_auth(options),
            headers={"User-Agent": f"shaobing-agent/{__version__}"},
        )
        self._publish()

    # -- the loop -----------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="push", daemon=True)
        self._thread.start()
        log.info("pushing to %s (%s) every %gs as instance %s", self.options.url, self.options.mode,
                 self.options.interval, self.instance)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._client.close()
        self.cache.drop(PUSH_OWNER)

    def _loop(self) -> None:
        # The first snapshot waits one interval, so the collectors have filled the cache.
        while not self._stop.wait(self.options.interval):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the push loop must outlive any single failure
                log.exception("push round failed")

    def tick(self) -> bool:
        """One round: snapshot, then deliver. True when everything pending was delivered."""
        now = self.clock()
        plain, _ = self.cache.page()
        if self.buffer is not None:
            self.buffer.append(timestamped_lines(plain, int(now * 1000)), int(now * 1000))
            ok = self._drain()
        else:
            ok = self._push_gateway(plain)
        self._publish()
        return ok

    # -- delivery -----------------------------------------------------------------------------------------

    def _drain(self) -> bool:
        assert self.buffer is not None
        params = [("extra_label", f"job={self.options.job}"), ("extra_label", f"instance={self.instance}")]
        params += [("extra_label", f"{k}={v}") for k, v in sorted(self.labels.items())]
        url = self.options.url.rstrip("/") + "/api/v1/import/prometheus"
        for segment in self.buffer.segments():
            if self._stop.is_set():
                return False
            try:
                body = segment.read_bytes()
            except FileNotFoundError:  # dropped by the bound meanwhile
                continue
            if not self._send("POST", url, body, params, gzipped=True):
                return False
            segment.unlink(missing_ok=True)
        return True

    def _push_gateway(self, page: bytes) -> bool:
        path = "/metrics/" + _pushgateway_segment("job", self.options.job)
        path += "/" + _pushgateway_segment("instance", self.instance)
        for k, v in sorted(self.labels.items()):
            path += "/" + _pushgateway_segment(k, v)
        # Our own push metrics describe this push; the Pushgateway adds push_time_seconds for that.
        return self._send("PUT", self.options.url.rstrip("/") + path, page, [], gzipped=False)

    def _send(self, method: str, url: str, body: bytes, params: list[tuple[str, str]], gzipped: bool) -> bool:
        import httpx

        headers = {"Content-Type": "text/plain; version=0.0.4"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        try:
            response = self._client.request(method, url, content=body, params=urlencode(params),
                                            headers=headers)
        except httpx.HTTPError as exc:
            return self._failed(f"{type(exc).__name__}: {exc}")
        if response.status_code >= 300:
            return self._failed(f"HTTP {response.status_code}: {response.text[:200]}")
        if self._failing_since is not None:
            log.info("push target reachable again after %.0fs", self.clock() - self._failing_since)
            self._failing_since = None
        self.last_success = self.clock()
        return True

    def _failed(self, reason: str) -> bool:
        self.failures += 1
        # A link that is down for a day must not fill the journal: warn when it starts, then at debug level.
        if self._failing_since is None:
            self._failing_since = self.clock()
            log.warning("push to %s failed: %s (retrying every round)", self.options.url, reason)
        else:
            log.debug("push to %s failed: %s", self.options.url, reason)
        return False

    def _publish(self) -> None:
        out = MetricSet(PUSH_METRICS)
        if self.last_success is not None:
            out.add("shaobing_push_last_success_timestamp_seconds", self.last_success)
        out.add("shaobing_push_failures_total", self.failures)
        size, samples = self.buffer.stats() if self.buffer is not None else (0, 0)
        out.add("shaobing_push_buffered_bytes", size)
        out.add("shaobing_push_buffered_samples", samples)
        out.add("shaobing_push_dropped_samples_total", self.buffer.dropped_samples if self.buffer else 0)
        self.cache.put(PUSH_OWNER, render(out.families()))


def _verify(options: PushOptions) -> bool | ssl.SSLContext:
    if options.insecure_skip_verify:
        return False
    if options.ca_file:
        return ssl.create_default_context(cafile=options.ca_file)
    return True


def _auth(options: PushOptions) -> Optional[httpx.BasicAuth]:
    import httpx

    if options.username is None or options.password_file is None:
        return None
    try:
        password = Path(options.password_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SchemaError([Problem(options.password_file, None, "push.password_file",
                                   f"cannot read: {exc.strerror}")]) from None
    return httpx.BasicAuth(options.username, password)
