"""Push mode against the real world: a poisoned segment, a proxy's 413, a slow link, 503s, a kill -9, file
modes and counters that survive restarts -- real VictoriaMetrics on loopback, a stand-in proxy in front."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.exporter import ExpositionCache
from agent.push import DiskBuffer, Pusher, PushOptions, timestamped_lines
from tests.deploy.push_proxy import PushProxy
from tests.deploy.servers import VictoriaMetrics
from tests.deploy.test_push import Clock, _value, sample
from tests.relay.relay_testlib import wait_until
from tests.support.agent import AgentProcess
from tests.support.prometheus import free_port

pytestmark = pytest.mark.integration

LABELS = {"township": "河口乡", "site": "乡政府"}


def _page(value: int, extra_series: int = 0) -> bytes:
    lines = [b'# TYPE t_value gauge', b't_value{k="a"} %d' % value]
    lines += [b't_pad{i="%d"} %d' % (i, i) for i in range(extra_series)]
    return b"\n".join(lines) + b"\n"


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    with VictoriaMetrics(tmp_path / "vm") as server:
        yield server


def _stamps(vm: VictoriaMetrics, instance: str) -> list[int]:
    series = vm.export(f'{{__name__="t_value",instance="{instance}"}}')
    return sorted(t for s in series for t in s["timestamps"])


def test_a_corrupt_segment_is_quarantined_and_every_later_one_arrives(tmp_path: Path, vm: VictoriaMetrics) -> None:
    cache = ExpositionCache()
    clock = Clock(float(int(time.time()) - 3600))
    options = PushOptions(url=vm.url, interval=60.0, timeout=5.0, instance="zf-poison")
    pusher = Pusher(options, cache, tmp_path / "state", LABELS, clock=clock)
    buffer = pusher.buffer
    assert buffer is not None
    try:
        expected = []
        for i in range(6):
            cache.put("health", _page(i))
            pusher.snapshot(clock.now)
            expected.append(int(clock.now * 1000))
            clock.now += 60
            if i == 1:  # what VictoriaMetrics refuses: 400 "cannot read gzipped lines"
                name = f"{int(clock.now * 1000) - 30_000:013d}-999999-1.prom.gz"
                (buffer.directory / name).write_bytes(b"\x1f\x8b this is not gzip")
        assert pusher.drain() is True
        assert _stamps(vm, "zf-poison") == expected  # every good snapshot, none blocked behind the bad one
        quarantined = list((tmp_path / "state" / "push-quarantine").iterdir())
        assert [p.name for p in quarantined] == [name]
        assert _value(cache, "shaobing_push_quarantined_segments_total") == 1
        assert buffer.segments() == []
    finally:
        pusher.stop()


def test_a_proxy_413_refuses_one_large_snapshot_and_the_rest_flows(tmp_path: Path, vm: VictoriaMetrics) -> None:
    cache = ExpositionCache()
    clock = Clock(float(int(time.time()) - 3600))
    with PushProxy(vm.url) as proxy:
        proxy.max_body = 20_000  # an nginx client_max_body_size far too small for one big snapshot
        options = PushOptions(url=proxy.url, interval=60.0, timeout=5.0, instance="zf-413")
        pusher = Pusher(options, cache, tmp_path / "state", LABELS, clock=clock)
        try:
            good = []
            for i in range(5):
                cache.put("health", _page(i, extra_series=20_000 if i == 2 else 0))
                if i != 2:
                    good.append(int(clock.now * 1000))
                pusher.snapshot(clock.now)
                clock.now += 60
            assert pusher.drain() is True
        finally:
            pusher.stop()
    assert len(proxy.refused) == 1
    assert _stamps(vm, "zf-413") == good
    assert len(list((tmp_path / "state" / "push-quarantine").iterdir())) == 1


def test_target_errors_keep_the_data_and_back_off(tmp_path: Path, vm: VictoriaMetrics) -> None:
    cache = ExpositionCache()
    clock = Clock(float(int(time.time()) - 3600))
    with PushProxy(vm.url) as proxy:
        options = PushOptions(url=proxy.url, interval=60.0, timeout=5.0, instance="zf-503")
        pusher = Pusher(options, cache, tmp_path / "state", LABELS, clock=clock, rng=lambda: 0.5)
        try:
            cache.put("health", _page(1))
            proxy.unavailable = 1  # 503 with Retry-After: 30
            assert pusher.tick() is False
            assert pusher._retry_at - clock.now >= 60  # at least an interval, and Retry-After honoured
            # A wrong password (401) is the target's state, not the snapshot's: nothing is quarantined.
            proxy.status_for_all = 401
            clock.now += 120
            assert pusher.tick() is False
            assert pusher._retry_at - clock.now == pytest.approx(120)  # doubled
            proxy.status_for_all = None
            clock.now += 300
            assert pusher.tick() is True
        finally:
            pusher.stop()
    assert not (tmp_path / "state" / "push-quarantine").exists()
    assert len(_stamps(vm, "zf-503")) == 3


def test_a_slow_link_leaves_no_gap_in_the_snapshot_timeline_and_the_present_goes_first(
    tmp_path: Path, vm: VictoriaMetrics
) -> None:
    cache = ExpositionCache()
    cache.put("health", _page(7))
    state = tmp_path / "state"
    # A backlog of 12 snapshots from an outage an hour ago, waiting on disk.
    backlog = DiskBuffer(state / "push-buffer", 64 << 20)
    old = int(time.time()) - 3600
    for i in range(12):
        backlog.append(timestamped_lines(_page(i), (old + i * 60) * 1000), (old + i * 60) * 1000)
    with PushProxy(vm.url) as proxy:
        proxy.delay = 1.5  # every POST takes 1.5 s: slower than one snapshot a second
        options = PushOptions(url=proxy.url, interval=1.0, timeout=5.0, instance="zf-slow")
        pusher = Pusher(options, cache, state, LABELS)
        started = time.time()
        pusher.start()
        try:
            time.sleep(12)
            stopped = time.time()
            proxy.delay = 0.0
            deadline = time.time() + 30
            while pusher.buffer is not None and pusher.buffer.segments() and time.time() < deadline:
                time.sleep(0.2)
        finally:
            pusher.stop()
    # Snapshot stamps are whole milliseconds, so the first live one can sit a fraction of a millisecond before
    # `started`; the backlog is an hour older, which is what tells the two apart.
    stamps = _stamps(vm, "zf-slow")
    live = [t / 1000 for t in stamps if t / 1000 >= started - 60]
    backlog_stamps = [t for t in stamps if t / 1000 < started - 60]
    # One snapshot a second while the link was slow: the sending never held one back.
    assert len([t for t in live if t <= stopped]) >= 10
    gaps = [b - a for a, b in zip(live, live[1:])]
    assert max(gaps) < 1.6, gaps
    # The present did not queue behind the hour-old backlog: the first live snapshot went out at most behind
    # the request already in flight when it was taken (and the backlog then followed in time order).
    first_live = next(i for i, st in enumerate(proxy.forwarded) if min(st) / 1000 >= started - 60)
    assert first_live <= 2, [min(st) for st in proxy.forwarded[:5]]
    assert backlog_stamps == [(old + i * 60) * 1000 for i in range(12)]  # and the backlog arrived too


def test_outage_kill9_and_restart_lose_nothing_beyond_the_dead_time(tmp_path: Path) -> None:
    vm_port = free_port()
    config = {
        "labels": LABELS,
        "push": {"url": f"http://127.0.0.1:{vm_port}", "interval": "5s", "timeout": "2s", "instance": "zf-kill"},
        "collectors": {"health": {"interval": "1s"}},
    }
    agent = AgentProcess(tmp_path / "agent", config)
    agent.start()
    try:
        # Three snapshots into the outage (VictoriaMetrics is not running): the third is taken 10 s after the
        # oldest buffered one, whenever the agent (on a busy machine, later) took that.
        def three_buffered() -> bool:
            oldest = sample(agent.scrape(), "shaobing_push_oldest_buffered_timestamp_seconds")
            return oldest is not None and time.time() >= oldest + 11

        assert wait_until(three_buffered, 60, interval=0.5), agent.log()[-2000:]
        agent.kill9()
        dead_from = time.time()
        time.sleep(4)
        agent.start()
        dead_to = time.time()
        time.sleep(11)
        with VictoriaMetrics(tmp_path / "vm", vm_port) as vm:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                series = vm.export('{__name__="shaobing_build_info",instance="zf-kill"}')
                stamps = sorted(t / 1000 for s in series for t in s["timestamps"])
                if stamps and stamps[-1] > dead_to + 15:
                    break
                time.sleep(1)
    finally:
        agent.stop()
    assert len(stamps) >= 6, stamps
    gaps = [(a, b) for a, b in zip(stamps, stamps[1:]) if b - a > 5.5]
    # One gap only, and it spans the dead time (plus at most one interval to the first snapshot after start).
    assert len(gaps) == 1, (gaps, stamps)
    (a, b) = gaps[0]
    assert a <= dead_from and b >= dead_to and b - a <= (dead_to - dead_from) + 2 * 5 + 1


def test_files_are_private_and_loss_counters_survive_a_restart(tmp_path: Path) -> None:
    cache = ExpositionCache()
    state = tmp_path / "state"
    options = PushOptions(url=f"http://127.0.0.1:{free_port()}", interval=60.0, timeout=1.0, buffer_max_bytes=2048)
    clock = Clock(1_800_000_000.0)
    pusher = Pusher(options, cache, state, LABELS, clock=clock)
    try:
        for i in range(20):
            cache.put("health", _page(i, extra_series=40))
            pusher.snapshot(clock.now)
            clock.now += 60
        dropped = _value(cache, "shaobing_push_dropped_samples_total")
        assert dropped > 0
        assert _value(cache, "shaobing_push_oldest_buffered_timestamp_seconds") > 1_800_000_000.0
    finally:
        pusher.stop()
    for path in (state / "push-buffer").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((state / "push-buffer").stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "push-totals.json").stat().st_mode) == 0o600
    again = Pusher(options, ExpositionCache(), state, LABELS, clock=clock)
    try:
        assert _value(again.cache, "shaobing_push_dropped_samples_total") == dropped
    finally:
        again.stop()


def test_push_log_lines_carry_no_credentials_and_httpx_stays_quiet(tmp_path: Path) -> None:
    port = free_port()
    secret = "sekret-pass-123"
    config = {
        "log_level": "info",
        "push": {"url": f"http://pusher:{secret}@127.0.0.1:{port}/?token=tok-456", "interval": "5s", "timeout": "1s"},
        "collectors": {"health": {"interval": "1s"}},
    }
    with AgentProcess(tmp_path / "agent", config) as agent:
        deadline = time.monotonic() + 30
        while "push to" not in agent.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(6)  # a second round: still one line, no request log
        log = agent.log()
    assert f"push to http://127.0.0.1:{port}/?… failed" in log, log
    assert secret not in log and "tok-456" not in log
    assert "HTTP Request:" not in log  # httpx's own per-request INFO line
    assert log.count("push to") == 1
