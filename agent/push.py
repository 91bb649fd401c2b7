"""Push mode, for township hosts behind NAT that the centre cannot scrape.

Every ``interval`` the pusher takes the agent's current exposition (the same bytes /metrics serves) and
delivers it to one of:

* **VictoriaMetrics** (``mode: victoriametrics``): ``POST /api/v1/import/prometheus`` with the host's labels as
  ``extra_label`` parameters. Each snapshot is stamped with the time it was taken and written to a disk buffer
  under ``<state_dir>/push-buffer/`` (files 0600) *before* any delivery attempt, so a link outage of hours
  loses nothing. The buffer is bounded (``buffer_max_bytes``); when full the oldest segments are dropped and
  counted.
* **Pushgateway** (``mode: pushgateway``): ``PUT /metrics/job/<job>/instance/<instance>/<label>/<value>...``.
  A Pushgateway holds only the latest state of a group, so there is nothing to buffer: a missed push is
  simply retried with fresher numbers.

Snapshots run on their own clock (a fixed-rate thread): sending never delays or skips one, however slow the
link. A second thread sends: **the newest snapshot first** (the centre sees the present as soon as the link is
back, and the silent-host alert clears), **then the backlog oldest first**, in bounded batches, looking for a
newer snapshot between every two segments. Answers are classified: 2xx delivered; 400, 413, 415 and 422
reject *this segment* (corrupt, too large for a proxy): it is moved to ``<state_dir>/push-quarantine/``
(bounded), counted and logged with the server's reason, and the drain goes on; everything else (network
errors, timeouts, 5xx, 401/403/404, 408, 429) is the target's or the link's problem: the segment stays and the
sender backs off exponentially with jitter, honouring Retry-After.

Exported under the cache owner ``~push`` (declared in ``PUSH_METRICS``)::

    shaobing_push_last_success_timestamp_seconds 1.7e9
    shaobing_push_failures_total 3
    shaobing_push_buffered_bytes 18234
    shaobing_push_buffered_samples 912
    shaobing_push_oldest_buffered_timestamp_seconds 1.7e9
    shaobing_push_dropped_samples_total 0
    shaobing_push_quarantined_segments_total 0

The two loss counters (dropped, quarantined) are kept in ``<state_dir>/push-totals.json`` and survive restarts;
``failures_total`` starts at 0 with the process, like every process counter (rate() handles the reset).
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional
from urllib.parse import quote, urlencode, urlsplit

from agent import __version__
from agent.catalog import MetricSet, MetricSpec
from agent.compat import Literal, unlink_missing
from agent.exporter import ExpositionCache
from agent.redact import redact_url
from agent.schema import Problem, SchemaError
from agent.state import write_private_json

if TYPE_CHECKING:
    # Imported where used: agent.config imports this module on every host, push mode or not, and httpx costs
    # megabytes of RSS.
    import ssl

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
    MetricSpec("shaobing_push_oldest_buffered_timestamp_seconds", "gauge",
               "When the oldest snapshot still waiting for delivery was taken (absent when none waits).",
               (), "seconds"),
    MetricSpec("shaobing_push_dropped_samples_total", "counter",
               "Samples dropped unsent because the disk buffer was full (oldest first); survives restarts."),
    MetricSpec("shaobing_push_quarantined_segments_total", "counter",
               "Buffered snapshots the push target rejected for good (400, 413, 415, 422), moved aside to "
               "push-quarantine/; survives restarts."),
)

# Answers that condemn the request body itself; anything else is the target's or the link's state.
PERMANENT_STATUSES = frozenset({400, 413, 415, 422})
QUARANTINE_MAX_SEGMENTS = 32
BACKLOG_BATCH = 16
MAX_BACKOFF_SECONDS = 600.0

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
            out.append(("url", f"expected an http:// or https:// URL, got {redact_url(self.url)!r}"))
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
            unlink_missing(stale)
        self._seq = 0

    def segments(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if _SEGMENT_RE.match(p.name))

    def oldest_timestamp(self) -> Optional[float]:
        segments = self.segments()
        m = _SEGMENT_RE.match(segments[0].name) if segments else None
        return int(m.group(1)) / 1000.0 if m else None

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
        # 0600 like every other state file: a snapshot holds the host's whole exposition.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
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
            unlink_missing(segments[i])
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
    """Two daemon threads: ``push-snapshot`` takes a snapshot every ``interval``; ``push-send`` delivers."""

    def __init__(
        self,
        options: PushOptions,
        cache: ExpositionCache,
        state_dir: Path,
        labels: Optional[dict[str, str]] = None,
        transport: Optional[httpx.BaseTransport] = None,
        clock: Optional[Callable[[], float]] = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.options = options
        self.cache = cache
        self.labels = dict(labels or {})
        self.instance = options.instance or socket.gethostname()
        self.clock: Callable[[], float] = clock or time.time
        self.rng = rng
        self.state_dir = state_dir
        self.buffer: Optional[DiskBuffer] = None
        if options.mode == "victoriametrics":
            self.buffer = DiskBuffer(state_dir / "push-buffer", options.buffer_max_bytes)
        self.quarantine_dir = state_dir / "push-quarantine"
        self._totals_path = state_dir / "push-totals.json"
        totals = self._load_totals()
        if self.buffer is not None:
            self.buffer.dropped_samples = totals.get("dropped_samples", 0)
        self.quarantined = totals.get("quarantined_segments", 0)
        self.failures = 0
        self.last_success: Optional[float] = None
        self._failing_since: Optional[float] = None
        self._last_quarantine_reason = ""
        self._reason = ""  # the server's words for the last refused segment
        self._newest_sent = ""  # name of the newest segment delivered (or refused) so far
        self._latest_page: Optional[bytes] = None  # Pushgateway: the page waiting to be sent
        self._backoff_attempts = 0
        self._retry_at = 0.0
        self._lock = threading.Lock()  # one drain at a time; the snapshot thread never takes it
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        import httpx

        self._client = httpx.Client(
            timeout=options.timeout,
            transport=transport,
            verify=_verify(options),
            auth=_auth(options),
            headers={"User-Agent": f"shaobing-agent/{__version__}"},
        )
        self._publish()

    # -- persisted loss counters ----------------------------------------------------------------------

    def _load_totals(self) -> dict[str, int]:
        try:
            doc = json.loads(self._totals_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(doc, dict):
            return {}
        return {k: int(v) for k, v in doc.items() if isinstance(v, int) and v >= 0}

    def _save_totals(self) -> None:
        dropped = self.buffer.dropped_samples if self.buffer is not None else 0
        try:
            totals = {"dropped_samples": dropped, "quarantined_segments": self.quarantined}
            write_private_json(self._totals_path, totals)
        except OSError as exc:
            log.warning("cannot record push totals in %s: %s", self._totals_path, exc)

    # -- the threads ----------------------------------------------------------------------------------

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._snapshot_loop, name="push-snapshot", daemon=True),
            threading.Thread(target=self._send_loop, name="push-send", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("pushing to %s (%s) every %gs as instance %s", redact_url(self.options.url), self.options.mode,
                 self.options.interval, self.instance)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        self._client.close()
        self.cache.drop(PUSH_OWNER)

    def _snapshot_loop(self) -> None:
        # Fixed rate: the k-th snapshot is due at start + k * interval, whatever the sender is doing. The first
        # waits one interval, so the collectors have filled the cache.
        interval = self.options.interval
        due = time.monotonic() + interval
        while not self._stop.wait(max(due - time.monotonic(), 0.0)):
            try:
                self.snapshot()
            except Exception:  # noqa: BLE001 - the push loop must outlive any single failure
                log.exception("push snapshot failed")
            due += interval
            if due < time.monotonic():  # suspended or starved for more than an interval: do not burst
                due = time.monotonic() + interval

    def _send_loop(self) -> None:
        while True:
            wait = self._retry_at - self.clock()
            if wait > 0:  # backing off after a transient failure; snapshots go on meanwhile
                if self._stop.wait(wait):
                    return
            else:
                self._wake.wait(self.options.interval)
                self._wake.clear()
                if self._stop.is_set():
                    return
            try:
                # Round after round while there is backlog, until it is gone or the target says "not now".
                while not self._stop.is_set() and not self.drain() and self._retry_at <= self.clock():
                    pass
            except Exception:  # noqa: BLE001 - the push loop must outlive any single failure
                log.exception("push delivery round failed")

    # -- snapshot and delivery ------------------------------------------------------------------------

    def snapshot(self, now: Optional[float] = None) -> None:
        """Take one snapshot now: to the disk buffer (VictoriaMetrics) or as the page to push (Pushgateway)."""
        now = self.clock() if now is None else now
        plain, _ = self.cache.page(now)
        if self.buffer is not None:
            before = self.buffer.dropped_samples
            self.buffer.append(timestamped_lines(plain, int(now * 1000)), int(now * 1000))
            if self.buffer.dropped_samples != before:
                self._save_totals()
        else:
            self._latest_page = plain  # one reference: the sender takes whichever page is latest
        self._publish()
        self._wake.set()

    def tick(self) -> bool:
        """One snapshot, then one delivery round (tests and `agent once`). True when nothing is left."""
        self.snapshot()
        return self.drain()

    def drain(self) -> bool:
        """One bounded delivery round. True when nothing is left to send (or a transient error stopped it
        and the sender should back off: then ``_retry_at`` is in the future)."""
        with self._lock:
            if self.buffer is None:
                return self._drain_pushgateway()
            try:
                return self._drain_buffer()
            finally:
                self._publish()

    def _drain_buffer(self) -> bool:
        assert self.buffer is not None
        params = [("extra_label", f"job={self.options.job}"), ("extra_label", f"instance={self.instance}")]
        params += [("extra_label", f"{k}={v}") for k, v in sorted(self.labels.items())]
        url = self.options.url.rstrip("/") + "/api/v1/import/prometheus"
        for _ in range(BACKLOG_BATCH):
            if self._stop.is_set():
                return False
            segments = self.buffer.segments()
            if not segments:
                return True
            # Names sort by snapshot time. The newest not yet sent goes first (the present); then the backlog
            # in time order. A snapshot taken meanwhile is again the newest not sent, and jumps the queue.
            newest = segments[-1]
            segment = newest if newest.name > self._newest_sent else segments[0]
            try:
                body = segment.read_bytes()
            except FileNotFoundError:  # dropped by the bound meanwhile
                continue
            verdict = self._send("POST", url, body, params, gzipped=True)
            if verdict == "transient":
                return False
            if verdict == "permanent":
                self._quarantine(segment)
            else:
                unlink_missing(segment)
            self._newest_sent = max(self._newest_sent, segment.name)
        return not self.buffer.segments()

    def _drain_pushgateway(self) -> bool:
        page = self._latest_page
        if page is None:
            return True
        path = "/metrics/" + _pushgateway_segment("job", self.options.job)
        path += "/" + _pushgateway_segment("instance", self.instance)
        for k, v in sorted(self.labels.items()):
            path += "/" + _pushgateway_segment(k, v)
        # Our own push metrics describe this push; the Pushgateway adds push_time_seconds for that.
        verdict = self._send("PUT", self.options.url.rstrip("/") + path, page, [], gzipped=False)
        if verdict != "transient" and self._latest_page is page:
            self._latest_page = None  # delivered, or refused for good (the next snapshot is a new page)
        self._publish()
        return verdict != "transient"

    def _send(self, method: str, url: str, body: bytes, params: list[tuple[str, str]], gzipped: bool) -> str:
        """'ok', 'permanent' (this body is refused for good) or 'transient' (the target or the link)."""
        import httpx

        headers = {"Content-Type": "text/plain; version=0.0.4"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        try:
            response = self._client.request(method, url, content=body, params=urlencode(params),
                                            headers=headers)
        except httpx.HTTPError as exc:
            return self._failed(f"{type(exc).__name__}", None)
        if response.status_code in PERMANENT_STATUSES:
            self.failures += 1
            self._reason = f"HTTP {response.status_code}: {_short(response.text)}"
            return "permanent"
        if response.status_code >= 300:
            return self._failed(f"HTTP {response.status_code}: {_short(response.text)}", response)
        if self._failing_since is not None:
            log.info("push target reachable again after %.0fs", self.clock() - self._failing_since)
            self._failing_since = None
        self._backoff_attempts = 0
        self._retry_at = 0.0
        self.last_success = self.clock()
        return "ok"

    def _failed(self, reason: str, response: Optional[httpx.Response]) -> str:
        self.failures += 1
        self._backoff_attempts += 1
        base = min(self.options.interval * 2 ** min(self._backoff_attempts - 1, 16), MAX_BACKOFF_SECONDS)
        delay = base * (0.8 + 0.4 * self.rng())
        retry_after = _retry_after(response)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_BACKOFF_SECONDS))
        self._retry_at = self.clock() + delay
        # A link that is down for a day must not fill the journal: warn when it starts, then at debug level.
        if self._failing_since is None:
            self._failing_since = self.clock()
            log.warning("push to %s failed: %s (retrying with backoff, next in %.0fs)", redact_url(self.options.url),
                        reason, delay)
        else:
            log.debug("push to %s failed: %s", redact_url(self.options.url), reason)
        return "transient"

    def _quarantine(self, segment: Path) -> None:
        """Move a refused segment aside (kept for a human to look at, bounded) and count it."""
        self.quarantine_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.replace(segment, self.quarantine_dir / segment.name)
        except FileNotFoundError:
            return
        kept = sorted(self.quarantine_dir.iterdir())
        for old in kept[: max(len(kept) - QUARANTINE_MAX_SEGMENTS, 0)]:
            unlink_missing(old)
        self.quarantined += 1
        self._save_totals()
        # One line per distinct reason, not one per segment: a proxy that refuses everything logs once.
        if self._reason != self._last_quarantine_reason:
            self._last_quarantine_reason = self._reason
            log.warning("push target refused snapshot %s for good (%s): moved to %s, continuing with the rest",
                        segment.name, self._reason, self.quarantine_dir)
        else:
            log.debug("push target refused snapshot %s (%s)", segment.name, self._reason)

    def _publish(self) -> None:
        out = MetricSet(PUSH_METRICS)
        if self.last_success is not None:
            out.add("shaobing_push_last_success_timestamp_seconds", self.last_success)
        out.add("shaobing_push_failures_total", self.failures)
        size, samples = self.buffer.stats() if self.buffer is not None else (0, 0)
        out.add("shaobing_push_buffered_bytes", size)
        out.add("shaobing_push_buffered_samples", samples)
        oldest = self.buffer.oldest_timestamp() if self.buffer is not None else None
        if oldest is not None:
            out.add("shaobing_push_oldest_buffered_timestamp_seconds", oldest)
        out.add("shaobing_push_dropped_samples_total", self.buffer.dropped_samples if self.buffer else 0)
        out.add("shaobing_push_quarantined_segments_total", self.quarantined)
        self.cache.put(PUSH_OWNER, out.render())


def _short(text: str) -> str:
    return " ".join(text.split())[:200]


def _retry_after(response: Optional[httpx.Response]) -> Optional[float]:
    if response is None or response.status_code not in (429, 503):
        return None
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def _verify(options: PushOptions) -> bool | ssl.SSLContext:
    if options.insecure_skip_verify:
        return False
    if options.ca_file:
        import ssl

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
