"""Scheduler isolation: a collector that raises, hangs, or has nothing to do never blocks the others."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector, CollectorOptions, NotApplicable
from agent.collectors import registry
from agent.exporter import ExpositionCache
from agent.scheduler import Scheduler


class Counting(Collector):
    name = "counting"
    metrics = (MetricSpec("test_value", "gauge", "A test value."),)
    runs = 0

    def collect(self, out: MetricSet) -> None:
        type(self).runs += 1
        out.add("test_value", 42)


class Raising(Collector):
    name = "raising"
    metrics = (MetricSpec("test_raising", "gauge", "Never emitted whole."),)

    def collect(self, out: MetricSet) -> None:
        out.add("test_raising", 1)
        raise RuntimeError("disk on fire")


class Hanging(Collector):
    name = "hanging"
    default_timeout = 0.3
    metrics = (MetricSpec("test_hanging", "gauge", "Never emitted."),)
    release: ClassVar[threading.Event] = threading.Event()
    started = 0

    def collect(self, out: MetricSet) -> None:
        type(self).started += 1
        self.release.wait(30)
        out.add("test_hanging", 1)


class Absent(Collector):
    name = "absent"
    metrics = ()

    def collect(self, out: MetricSet) -> None:
        raise NotApplicable("no apt here")


def samples(cache: ExpositionCache) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(cache.page()[0].decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_failures_are_isolated_and_reported(tmp_path: Path) -> None:
    ctx = AgentContext(state_dir=tmp_path)
    opts = CollectorOptions()
    cache = ExpositionCache()
    Hanging.release.clear()
    sched = Scheduler([Counting(opts, ctx), Raising(opts, ctx), Hanging(opts, ctx), Absent(opts, ctx)], cache)
    start = time.monotonic()
    results = sched.run_all_once()
    elapsed = time.monotonic() - start
    assert elapsed < 5, "the hanging collector held up the run"
    assert [r.success for r in results] == [True, False, False, True]
    assert "disk on fire" in results[1].error
    assert "timed out" in results[2].error
    got = samples(cache)
    assert got[("test_value", ())] == 42
    assert ("test_raising", ()) not in got  # a failed run publishes nothing half-done
    assert ("test_hanging", ()) not in got
    for name, success, applicable in [("counting", 1, 1), ("raising", 0, 1), ("hanging", 0, 1), ("absent", 1, 0)]:
        labels = (("collector", name),)
        assert got[("shaobing_collector_success", labels)] == success, name
        assert got[("shaobing_collector_applicable", labels)] == applicable, name
    assert ("shaobing_collector_last_success_timestamp_seconds", (("collector", "hanging"),)) not in got
    assert got[("shaobing_collector_duration_seconds", (("collector", "hanging"),))] >= 0.3

    # While the hung run is still stuck, the next run is refused rather than piling up threads.
    again = sched.run_job(sched.runners[2])
    assert not again.success and "still running" in again.error
    assert Hanging.started == 1
    Hanging.release.set()
    time.sleep(0.2)
    # Once the stuck thread has returned, the collector runs again and recovers.
    assert sched.run_job(sched.runners[2]).success
    assert samples(cache)[("shaobing_collector_success", (("collector", "hanging"),))] == 1


def test_a_failure_after_success_drops_stale_samples(tmp_path: Path) -> None:
    class Flaky(Collector):
        name = "flaky"
        metrics = (MetricSpec("test_flaky", "gauge", "Flaky."),)
        fail = False

        def collect(self, out: MetricSet) -> None:
            if self.fail:
                raise OSError("gone")
            out.add("test_flaky", 7)

    cache = ExpositionCache()
    flaky = Flaky(CollectorOptions(), AgentContext(state_dir=tmp_path))
    sched = Scheduler([flaky], cache)
    sched.run_all_once()
    assert samples(cache)[("test_flaky", ())] == 7
    flaky.fail = True
    sched.run_all_once()
    assert ("test_flaky", ()) not in samples(cache)


def test_scheduled_jobs_run_on_their_interval(tmp_path: Path) -> None:
    Counting.runs = 0
    cache = ExpositionCache()
    sched = Scheduler([Counting(CollectorOptions(interval=1.0), AgentContext(state_dir=tmp_path))], cache)
    sched.start()
    try:
        deadline = time.monotonic() + 10
        while Counting.runs < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sched.stop()
    assert Counting.runs >= 3
    assert b"test_value 42" in cache.page()[0]


def test_undeclared_metrics_are_refused() -> None:
    out = MetricSet([MetricSpec("a_total", "counter", "A.", ("x",))])
    try:
        out.add("b", 1)
    except KeyError as exc:
        assert "not declared" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("undeclared metric accepted")
    try:
        out.add("a_total", 1, {"y": "1"})
    except ValueError as exc:
        assert "declared" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("wrong labels accepted")


def test_a_hung_collector_is_started_once_and_the_others_keep_their_interval(tmp_path: Path) -> None:
    """The dispatcher: a collector hung past its timeout is never started again while its thread lives, and a
    1 s collector beside it keeps running about once a second; per-collector health reaches the page."""
    Hanging.started, Counting.runs = 0, 0
    Hanging.release.clear()
    cache = ExpositionCache()
    ctx = AgentContext(state_dir=tmp_path)
    sched = Scheduler([Hanging(CollectorOptions(interval=1.0), ctx), Counting(CollectorOptions(interval=1.0), ctx)],
                      cache)
    sched.start()
    try:
        time.sleep(3.6)
        assert Hanging.started == 1
        assert 3 <= Counting.runs <= 5
        health = samples(cache)
        assert health[("shaobing_collector_success", (("collector", "hanging"),))] == 0
        assert health[("shaobing_collector_success", (("collector", "counting"),))] == 1
    finally:
        Hanging.release.set()
        sched.stop()


def test_jitter_delays_each_run_within_its_bound(tmp_path: Path) -> None:
    Counting.runs = 0
    cache = ExpositionCache()
    sched = Scheduler([Counting(CollectorOptions(interval=1.0, jitter=0.5), AgentContext(state_dir=tmp_path))],
                      cache)
    sched.start()
    try:
        time.sleep(3.2)
    finally:
        sched.stop()
    assert 2 <= Counting.runs <= 4  # 1 s apart plus up to 0.5 s each: never a burst, never starved


def test_the_page_is_built_off_the_scrape_path_soon_after_collectors_finish(tmp_path: Path) -> None:
    Counting.runs = 0
    cache = ExpositionCache()
    sched = Scheduler([Counting(CollectorOptions(interval=60.0), AgentContext(state_dir=tmp_path))], cache)
    sched.start()
    try:
        # Nobody calls page(): the samples can only reach the built page through the dispatcher. (Waiting on
        # "runs >= 1 and not stale" raced: the run counts before its samples are put, while nothing is stale.)
        deadline = time.monotonic() + 5
        while b"test_value 42" not in cache._page[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b"test_value 42" in cache._page[0], "the dispatcher did not build the page"
        assert not cache._stale
        assert Counting.runs == 1
    finally:
        sched.stop()


def test_node_exporter_scrape_series_mirror_the_collector_health(tmp_path: Path) -> None:
    context = AgentContext(state_dir=tmp_path)
    cache = ExpositionCache()
    Scheduler([Counting(CollectorOptions(), context), Raising(CollectorOptions(), context),
               Absent(CollectorOptions(), context)], cache).run_all_once()
    s = samples(cache)
    for name in ("counting", "raising"):
        labels = (("collector", name),)
        assert s[("node_scrape_collector_success", labels)] == s[("shaobing_collector_success", labels)]
        assert s[("node_scrape_collector_duration_seconds", labels)] == s[("shaobing_collector_duration_seconds",
                                                                          labels)]
    assert s[("node_scrape_collector_success", (("collector", "raising"),))] == 0
    # Not applicable is not a failure: no node_scrape_* series (node_exporter would say 0 there).
    assert ("node_scrape_collector_success", (("collector", "absent"),)) not in s


def test_runs_reuse_threads_and_a_hung_run_keeps_its_own(tmp_path: Path) -> None:
    """Collector threads are kept between runs (a thread start cost as much as a node family's collect): many
    runs use a few threads; a hung run holds its thread, so the next run of that collector is refused and the
    others run on other threads; once the hung run ends, its thread serves again."""
    Hanging.started, Counting.runs = 0, 0
    Hanging.release.clear()
    ctx = AgentContext(state_dir=tmp_path)
    sched = Scheduler([Counting(CollectorOptions(), ctx), Hanging(CollectorOptions(), ctx)], ExpositionCache())
    counting, hanging = sched.runners
    before = {t.ident for t in threading.enumerate()}
    for _ in range(40):
        assert counting.run().success
    assert Counting.runs == 40
    assert len({t.ident for t in threading.enumerate()} - before) <= 2  # not one per run
    try:
        assert hanging.run().error.startswith("timed out")
        assert hanging.run().error == "previous run is still running (hung)"
        assert Hanging.started == 1
        for _ in range(5):
            assert counting.run().success  # another thread: the hung one is not handed out
        names = {t.name for t in threading.enumerate()}
        assert "collector-hanging" in names
    finally:
        Hanging.release.set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "collector-hanging" in {t.name for t in threading.enumerate()}:
        time.sleep(0.05)
    assert "collector-hanging" not in {t.name for t in threading.enumerate()}
    assert hanging.run().success  # the hung run ended: the collector runs again (released, it hangs no more)
    assert Hanging.started == 2


class Slow(Collector):
    name = "slow"
    default_timeout = 5.0
    metrics = (MetricSpec("test_slow", "gauge", "Emitted after a while."),)
    delay = 0.8

    def collect(self, out: MetricSet) -> None:
        time.sleep(self.delay)
        out.add("test_slow", 1)


def _scrape(port: int, headers: dict[str, str]) -> tuple[float, str]:
    import http.client

    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("GET", "/metrics", headers=headers)
        body = conn.getresponse().read().decode()
    finally:
        conn.close()
    return time.monotonic() - start, body


def test_a_scrape_at_start_waits_for_the_first_round_within_its_timeout(tmp_path: Path) -> None:
    """A scrape in the agent's first second got a half page (the series of collectors not yet run missing), which
    the old-Python installer test hit on a slow machine. It now waits for the frequent collectors' first runs,
    and at most 0.8 of the scrape timeout Prometheus sends."""
    from agent.exporter import MetricsServer
    from agent.webconfig import WebConfig

    ctx = AgentContext(state_dir=tmp_path)
    for delay, header, waits in ((0.8, {}, True), (3.0, {"X-Prometheus-Scrape-Timeout-Seconds": "1"}, False)):
        Slow.delay = delay
        cache = ExpositionCache()
        sched = Scheduler([Counting(CollectorOptions(interval=15.0), ctx), Slow(CollectorOptions(interval=15.0), ctx)],
                          cache)
        server = MetricsServer(cache)
        server.start("127.0.0.1", 0, WebConfig())
        sched.start()
        try:
            took, body = _scrape(server.port, header)
            if waits:
                assert "test_value 42" in body and "\ntest_slow 1" in body, body
                assert 'shaobing_collector_success{collector="slow"} 1' in body
                assert took < 5
            else:  # the slow one is still running when the scrape's own deadline nears: what there is, in time
                assert "\ntest_slow 1" not in body and took < 1.0, (took, body)
            # Once complete, a scrape never waits.
            assert cache.wait_complete(10)
            took, body = _scrape(server.port, header)
            assert "\ntest_slow 1" in body and took < 0.5
        finally:
            sched.stop()
            server.stop()
    # A reload's scheduler on the same cache does not hold the full page back again.
    sched = Scheduler([Slow(CollectorOptions(interval=15.0), ctx)], cache)
    assert cache.complete


def test_a_scrape_while_the_agent_builds_its_collectors_waits_for_their_first_round(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The endpoint binds before the collectors are built (a busy port is reported first); a scrape in between
    was answered at once with an empty page (seen in CI: the first scrape of a fresh agent had no series)."""
    import http.client

    import agent.service as service
    from agent.config import parse_config
    from tests.support.prometheus import free_port

    real = service.build_collectors
    building = threading.Event()

    def slow_build(config: Any, only: Any = None) -> Any:
        building.set()
        time.sleep(1.0)  # importing and configuring every collector on a slow machine
        return real(config, only)

    monkeypatch.setattr(service, "build_collectors", slow_build)
    names = ("health", "self")
    config = parse_config(f"listen_address: 127.0.0.1:{free_port()}\nstate_dir: {tmp_path}\ncollectors:\n" + "".join(
        f"  {c.name}: {{enabled: {'true' if c.name in names else 'false'}}}\n" for c in registry()), "agent.yml")
    agent = service.Agent(config, None)
    starter = threading.Thread(target=agent.start, daemon=True)
    starter.start()
    try:
        assert building.wait(10)
        conn = http.client.HTTPConnection("127.0.0.1", agent.server.port, timeout=20)
        conn.request("GET", "/metrics")
        body = conn.getresponse().read().decode()
        conn.close()
        assert "\nnode_load1 " in body and "shaobing_build_info{" in body, body[:300]
    finally:
        starter.join(10)
        if agent.scheduler is not None:
            agent.scheduler.stop()
        agent.server.stop()
