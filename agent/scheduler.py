"""Runs each collector on its own interval, bounded in time and isolated from the others.

Every run happens on a thread of its own and is waited for at most the collector's timeout. A collector
that raises is marked failed; one that hangs is marked failed and left to finish (or never finish) on its
thread, and it is not started again until that thread returns, so a hung NFS mount or ``dnf`` costs one
thread, never the scrape or the other collectors. Results of a run that finished after its deadline are
discarded.

Exported for every collector::

    shaobing_collector_success{collector="health"} 1
    shaobing_collector_duration_seconds{collector="health"} 0.004
    shaobing_collector_last_success_timestamp_seconds{collector="health"} 1.7e9
    shaobing_collector_applicable{collector="versions"} 1
"""

from __future__ import annotations

import functools
import heapq
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional

from agent.catalog import MetricSet, MetricSpec
from agent.collector import Collector, MissingDependency, NotApplicable
from agent.compat import thread_time
from agent.exporter import ExpositionCache
from agent.platform.memory import release_memory
from agent.workers import WORKERS

__all__ = ["SCHEDULER_METRICS", "CollectorRunner", "Scheduler", "RunResult"]

log = logging.getLogger(__name__)

SCHEDULER_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("shaobing_collector_success", "gauge",
               "1 if the collector's last run succeeded (or found nothing applicable), 0 if it failed or timed out.",
               ("collector",)),
    MetricSpec("shaobing_collector_duration_seconds", "gauge",
               "Wall time of the collector's last run (its timeout when it timed out).", ("collector",), "seconds"),
    MetricSpec("shaobing_collector_last_success_timestamp_seconds", "gauge",
               "When the collector last finished successfully (absent until it has).", ("collector",), "seconds"),
    MetricSpec("shaobing_collector_applicable", "gauge",
               "1 if the collector applies to this host, 0 if it has nothing to look at here (not a failure).",
               ("collector",)),
    MetricSpec("shaobing_collector_cpu_seconds_total", "counter",
               "CPU time the collector's runs used in the agent process (commands it runs are not included).",
               ("collector",), "seconds"),
    # node_exporter's names for the same two facts, so the community dashboards' "scrape time" panels (Node
    # Exporter Full) have data; collector is the agent's collector name.
    MetricSpec("node_scrape_collector_duration_seconds", "gauge",
               "node_exporter: Duration of a collector scrape.", ("collector",), "seconds"),
    MetricSpec("node_scrape_collector_success", "gauge",
               "node_exporter: Whether a collector succeeded.", ("collector",)),
)

SCHEDULER_OWNER = "~scheduler"  # sorts after the collectors in the page
RARE_INTERVAL = 300.0  # collectors at least this far apart count as rare and heavy


@dataclass
class RunResult:
    success: bool
    applicable: bool
    duration: float
    error: str = ""
    could_not_check: bool = False  # not applicable because a module is missing (MissingDependency), not by nature


class CollectorRunner:
    """One collector, its last outcome, and the guard against overlapping or stuck runs."""

    def __init__(self, collector: Collector, cache: ExpositionCache) -> None:
        self.collector = collector
        self.cache = cache
        self.last: Optional[RunResult] = None
        self.last_success_at: Optional[float] = None
        self._running: Optional[threading.Event] = None  # set when the last run's collect() has returned
        self._lock = threading.Lock()
        self.cpu_seconds = 0.0  # added to by each run's own thread when it ends, even after a timeout
        # Set when a reload replaced this scheduler: a run still in flight must not put its samples back.
        self.retired = False

    @property
    def name(self) -> str:
        return self.collector.name

    def run(self) -> RunResult:
        with self._lock:
            if self._running is not None and not self._running.is_set():
                result = RunResult(False, True, self.collector.timeout, "previous run is still running (hung)")
                self._finish(result, None)
                return result
            box: dict[str, object] = {}
            done = self._running = threading.Event()
        start = time.monotonic()

        def job() -> None:
            try:
                self._target(box)
            finally:
                done.set()

        WORKERS.submit(job, f"collector-{self.name}")
        finished = done.wait(self.collector.timeout)
        duration = time.monotonic() - start
        with self._lock:
            if not finished:
                result = RunResult(False, True, duration, f"timed out after {self.collector.timeout:g}s")
                self._finish(result, None)
                return result
            error = box.get("error")
            if isinstance(error, NotApplicable):
                result = RunResult(True, False, duration, str(error), isinstance(error, MissingDependency))
                self._finish(result, b"")
            elif isinstance(error, BaseException):
                result = RunResult(False, True, duration, f"{type(error).__name__}: {error}")
                self._finish(result, None)
            else:
                out = box["out"]
                assert isinstance(out, MetricSet)
                result = RunResult(True, True, duration)
                self.collector.last_metrics = out  # what report() describes in `shaobing scan`
                self._finish(result, out.render() + out.extra)
            return result

    def _target(self, box: dict[str, object]) -> None:
        started = thread_time()
        out = self.collector.new_metric_set()
        try:
            self.collector.collect(out)
        except BaseException as exc:  # noqa: BLE001 - any failure of a collector is reported, never raised
            box["error"] = exc
        box["out"] = out
        with self._lock:
            self.cpu_seconds += thread_time() - started

    def _finish(self, result: RunResult, chunk: Optional[bytes]) -> None:
        if result.success:
            self.last_success_at = time.time()
            if not result.applicable:
                log.debug("collector %s not applicable: %s", self.name, result.error)
        elif self.last is None or self.last.success or self.last.error != result.error:
            # Log a failure when it starts or changes, not on every run of a collector that keeps failing.
            log.warning("collector %s failed: %s", self.name, result.error)
        self.last = result
        if self.retired:
            return
        # A failed run drops the collector's samples: stale numbers must not look current.
        self.cache.put(self.name, chunk if chunk is not None else b"")


def render_scheduler_metrics(runners: Sequence[CollectorRunner]) -> bytes:
    out = MetricSet(SCHEDULER_METRICS)
    for r in runners:
        if r.last is None:
            continue
        labels = {"collector": r.name}
        out.add("shaobing_collector_success", 1 if r.last.success else 0, labels)
        out.add("shaobing_collector_duration_seconds", r.last.duration, labels)
        out.add("shaobing_collector_applicable", 1 if r.last.applicable else 0, labels)
        out.add("shaobing_collector_cpu_seconds_total", r.cpu_seconds, labels)
        if r.last.applicable:  # node_exporter has no series for a collector that does not apply
            out.add("node_scrape_collector_duration_seconds", r.last.duration, labels)
            out.add("node_scrape_collector_success", 1 if r.last.success else 0, labels)
        if r.last_success_at is not None:
            out.add("shaobing_collector_last_success_timestamp_seconds", r.last_success_at, labels)
    return out.render()


class Scheduler:
    """One job per enabled collector on its interval (with its jitter), feeding one ExpositionCache."""


    def __init__(self, collectors: Sequence[Collector], cache: ExpositionCache) -> None:
        self.cache = cache
        self.runners = [CollectorRunner(c, cache) for c in collectors]
        self._meta_lock = threading.Lock()
        self._dispatcher: Optional[_Dispatcher] = None
        cache.set_order([r.name for r in self.runners] + [SCHEDULER_OWNER])
        runners = self.runners
        cache.put_late(SCHEDULER_OWNER, lambda: render_scheduler_metrics(runners))
        # The first round a scrape waits for: every frequent collector's first run (rare, heavy ones -- audits,
        # package lists -- and those that wait for them add their series when they are done).
        self._first_round = {r.name for r in self.runners
                             if r.collector.interval < RARE_INTERVAL and not r.collector.waits_for}
        if not cache.begin_first_round():
            self._first_round.clear()
        elif not self._first_round:
            cache.mark_complete()

    def run_job(self, runner: CollectorRunner) -> RunResult:
        result = runner.run()
        if not runner.retired:
            self.cache.touch()  # the per-collector health is rendered when the page is next built
            if self._first_round:
                with self._meta_lock:
                    self._first_round.discard(runner.name)
                    if not self._first_round:
                        self.cache.mark_complete()
            if self._dispatcher is not None:
                self._dispatcher.refresh_soon()
        if runner.collector.interval >= RARE_INTERVAL:
            # Rare, heavy runs (package lists, audits) leave freed memory in malloc's arenas; hand it back so
            # the agent's resident size stays at its steady state instead of its peak.
            release_memory()
        return result

    def run_all_once(self) -> list[RunResult]:
        """Run every collector once, concurrently, each within its timeout (``shaobing agent once``); those
        that read other collectors' results (``waits_for``) run after the rest have finished."""
        results: list[Optional[RunResult]] = [None] * len(self.runners)

        def one(i: int) -> None:
            results[i] = self.run_job(self.runners[i])

        waiting = [bool(r.collector.waits_for) for r in self.runners]
        for phase in (False, True):
            threads = [threading.Thread(target=one, args=(i,), daemon=True)
                       for i in range(len(self.runners)) if waiting[i] is phase]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        return [r for r in results if r is not None]

    def start(self) -> None:
        self._dispatcher = _Dispatcher(self.runners, self.run_job, self.cache.refresh)
        self._dispatcher.start()
        log.info("scheduled collectors: %s", ", ".join(
            f"{r.name}/{r.collector.interval:g}s" for r in self.runners) or "(none)")

    def stop(self) -> None:
        with self._meta_lock:
            for r in self.runners:
                r.retired = True
        if self._dispatcher is not None:
            self._dispatcher.stop()
            self._dispatcher = None
        for r in self.runners:
            try:
                r.collector.close()
            except Exception as exc:  # noqa: BLE001 - closing must not stop the others
                log.warning("closing collector %s: %s", r.name, exc)


class _Dispatcher(threading.Thread):
    """Starts each collector's runs on its interval, on the monotonic clock (a corrected wall clock neither
    stalls nor bunches them). A run still going when the next is due skips that turn (one instance at a time,
    missed runs coalesced); each run gets ``uniform(0, jitter)`` seconds of delay so a fleet's daily audits do
    not start in the same second. Sleeps until the next due run or page build (REFRESH_DELAY after collectors
    finish, so scrapes read a page already built); first runs are staggered by 50 ms."""

    # Collectors finishing within this delay share one page build (join + gzip), done here, off the scrape path.
    REFRESH_DELAY = 0.2

    # A run waiting for the collectors it reads looks again this often.
    WAIT_STEP = 2.0
    # Runs due within this many seconds of each other share one job thread (first runs are 50 ms apart).
    BATCH_WINDOW = 1.5

    def __init__(self, runners: Sequence[CollectorRunner], run: Callable[[CollectorRunner], object],
                 refresh: Callable[[], None]) -> None:
        super().__init__(name="scheduler", daemon=True)
        self._runners = list(runners)
        by_name = {r.name: r for r in self._runners}
        # Runner index -> the runners its first run waits for (only those configured here).
        self._waits = {i: [by_name[n] for n in r.collector.waits_for if n in by_name and n != r.name]
                       for i, r in enumerate(self._runners) if r.collector.waits_for}
        # ... and until when (each collector's ``peer_wait`` from now).
        self._wait_until = {i: time.monotonic() + self._runners[i].collector.peer_wait for i in self._waits}
        self._run = run
        self._refresh = refresh
        self._refresh_at: Optional[float] = None
        self._wake = threading.Event()
        self._stopped = False
        now = time.monotonic()
        self._base = [now + 0.05 * i for i in range(len(self._runners))]  # the unjittered schedule
        self._heap = [(self._base[i], i) for i in range(len(self._runners))]
        heapq.heapify(self._heap)
        self._busy: dict[int, threading.Event] = {}  # runner index -> set when its batch has ended

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    def refresh_soon(self) -> None:
        if self._refresh_at is None:
            self._refresh_at = time.monotonic() + self.REFRESH_DELAY
            self._wake.set()

    def run(self) -> None:
        while not self._stopped:
            self._wake.clear()
            now = time.monotonic()
            if self._refresh_at is not None and self._refresh_at <= now:
                self._refresh_at = None
                self._refresh()
            due, i = self._heap[0] if self._heap else (None, -1)
            wake_at = min(t for t in (due, self._refresh_at) if t is not None) if (due or self._refresh_at) else None
            if wake_at is None:
                self._wake.wait()
                continue
            if due is None or due > now:
                self._wake.wait(max(0.0, wake_at - now))
                continue
            # Every run due now or within BATCH_WINDOW goes in one job thread, one after another: twenty 15 s
            # collectors cost one thread start, not twenty, and do not fight over the GIL. Each still runs in
            # its own worker under its own timeout, so a hung one delays the rest of its batch once, by its
            # timeout, and is skipped while it hangs.
            # A run joins early by at most a tenth of its own interval (first runs, 50 ms apart, all join).
            candidates = []
            while self._heap and self._heap[0][0] <= now + self.BATCH_WINDOW:
                candidates.append(heapq.heappop(self._heap))
            batch: list[int] = []
            for due, i in candidates:
                early = min(self.BATCH_WINDOW, 0.1 * self._runners[i].collector.interval)
                if due > now + early:
                    heapq.heappush(self._heap, (due, i))  # not yet: keeps its place
                elif self._take(i, now):
                    batch.append(i)
            # Rare, heavy runs (package lists, audits: minutes at worst) keep a thread each, so they never hold up
            # the frequent ones; the frequent ones go shortest interval first.
            interval = {i: self._runners[i].collector.interval for i in batch}
            groups = [[i] for i in batch if interval[i] >= RARE_INTERVAL]
            frequent = sorted((i for i in batch if interval[i] < RARE_INTERVAL), key=interval.__getitem__)
            if frequent:
                groups.append(frequent)
            for group in groups:
                runners = [self._runners[i] for i in group]
                ended = threading.Event()
                for i in group:
                    self._busy[i] = ended
                # On a kept thread (agent.workers): a thread start per batch cost ~0.2 ms every 15 s.
                WORKERS.submit(functools.partial(self._run_batch, runners, ended), f"job-{runners[0].name}")

    def _take(self, i: int, now: float) -> bool:
        """Reschedule runner ``i`` and say whether it runs in this batch (not while waiting or still busy)."""
        runner = self._runners[i]
        if i in self._waits:
            if any(peer.last is None for peer in self._waits[i]) and now < self._wait_until[i]:
                heapq.heappush(self._heap, (now + self.WAIT_STEP, i))  # not its turn yet: look again soon
                return False
            del self._waits[i]  # only the first run waits
            self._base[i] = now
        busy = self._busy.get(i)
        take = busy is None or busy.is_set()
        interval = max(runner.collector.interval, 0.001)
        self._base[i] += interval
        if self._base[i] <= now:  # fell behind (a suspended VM): coalesce, do not run a burst
            self._base[i] = now + interval
        jitter = runner.collector.jitter
        heapq.heappush(self._heap, (self._base[i] + (random.uniform(0, jitter) if jitter else 0.0), i))
        return take

    def _run_batch(self, batch: Sequence[CollectorRunner], ended: threading.Event) -> None:
        try:
            for runner in batch:
                if self._stopped:
                    return
                self._run(runner)
        finally:
            ended.set()
