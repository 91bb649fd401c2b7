"""Push mode against a real VictoriaMetrics and a real Pushgateway on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.exporter import ExpositionCache
from agent.push import PUSH_METRICS, PUSH_OWNER, DiskBuffer, Pusher, PushOptions, timestamped_lines
from agent.schema import SchemaError, load
from tests.deploy.servers import Pushgateway, VictoriaMetrics
from tests.support.agent import AgentProcess
from tests.support.prometheus import free_port

pytestmark = pytest.mark.integration

LABELS = {"township": "城关镇", "site": "镇政府机房"}


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def sample(page: str, name: str) -> float | None:
    """The value of the unlabelled series ``name`` in an exposition page, None when it is absent."""
    for line in page.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def _value(cache: ExpositionCache, name: str) -> float:
    value = sample(cache.page()[0].decode(), name)
    if value is None:
        raise AssertionError(f"{name} not in the page")
    return value


@pytest.fixture
def vm_port() -> int:
    return free_port()


def test_outage_loses_nothing(tmp_path: Path, vm_port: int) -> None:
    """VictoriaMetrics is down for 5 rounds, then up: all 6 snapshots arrive with their own timestamps."""
    cache = ExpositionCache()
    # Whole seconds, an hour ago: inside VictoriaMetrics' retention, and easy to compare exactly.
    clock = Clock(float(int(time.time()) - 3600))
    options = PushOptions(url=f"http://127.0.0.1:{vm_port}", interval=60.0, timeout=2.0, instance="zf-web-01")
    pusher = Pusher(options, cache, tmp_path / "state", LABELS, clock=clock)
    stamps = []
    try:
        for i in range(5):
            cache.put("health", b"# HELP t_value test\n# TYPE t_value gauge\nt_value{k=\"a\"} %d\n" % i)
            stamps.append(int(clock.now * 1000))
            assert pusher.tick() is False
            clock.now += 60
        assert _value(cache, "shaobing_push_failures_total") == 5
        assert _value(cache, "shaobing_push_buffered_bytes") > 0
        assert "shaobing_push_last_success_timestamp_seconds" not in cache.page()[0].decode()
        with VictoriaMetrics(tmp_path / "vm", vm_port) as vm:
            cache.put("health", b't_value{k="a"} 5\n')
            stamps.append(int(clock.now * 1000))
            assert pusher.tick() is True
            series = vm.export('{__name__="t_value"}')
            assert len(series) == 1, series
            metric = series[0]["metric"]
            assert metric["township"] == "城关镇" and metric["instance"] == "zf-web-01" and metric["job"] == "shaobing"
            assert series[0]["timestamps"] == stamps
            assert series[0]["values"] == [0, 1, 2, 3, 4, 5]
            # The push metrics themselves travel too, stamped like everything else.
            assert vm.export('{__name__="shaobing_push_failures_total"}')[0]["values"][-1] == 5
        assert _value(cache, "shaobing_push_buffered_bytes") == 0
        assert _value(cache, "shaobing_push_buffered_samples") == 0
        assert _value(cache, "shaobing_push_last_success_timestamp_seconds") == clock.now
        assert list((tmp_path / "state" / "push-buffer").iterdir()) == []
    finally:
        pusher.stop()
    assert PUSH_OWNER not in cache.page()[0].decode()


def test_buffer_is_bounded_oldest_dropped(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path / "b", max_bytes=4096)
    page = b"".join(b'm{i="%d"} %d\n' % (i, i * 7919 % 1000) for i in range(400))
    for n in range(20):
        buf.append(timestamped_lines(page, 1_700_000_000_000 + n), 1_700_000_000_000 + n)
    size, samples = buf.stats()
    assert size <= 4096 or len(buf.segments()) == 1
    assert buf.dropped_samples == (20 - len(buf.segments())) * 400
    assert samples == len(buf.segments()) * 400
    # The newest snapshot always survives.
    assert buf.segments()[-1].name.startswith("1700000000019-")
    # A crash between write and rename leaves a .tmp, which is never sent and is cleaned on start.
    (tmp_path / "b" / "1700000000000-000001-5.prom.gz.tmp").write_bytes(b"half")
    assert all(not p.name.endswith(".tmp") for p in DiskBuffer(tmp_path / "b", 4096).segments())
    assert not list((tmp_path / "b").glob("*.tmp"))


def test_pushgateway(tmp_path: Path) -> None:
    cache = ExpositionCache()
    cache.put("health", b"# HELP t_up test\n# TYPE t_up gauge\nt_up 1\n")
    with Pushgateway(tmp_path / "pgw") as pgw:
        options = PushOptions(url=pgw.url, mode="pushgateway", instance="zf/db 01")
        pusher = Pusher(options, cache, tmp_path / "state", LABELS)
        try:
            assert pusher.tick() is True
            body = pgw.get("/metrics").decode()
        finally:
            pusher.stop()
    line = next(ln for ln in body.splitlines() if ln.startswith("t_up{"))
    for expected in ('instance="zf/db 01"', 'job="shaobing"', 'township="城关镇"', 'site="镇政府机房"'):
        assert expected in line, line
    assert 'push_time_seconds{' in body
    assert not (tmp_path / "state" / "push-buffer").exists()


def test_push_failure_is_counted_not_raised(tmp_path: Path) -> None:
    cache = ExpositionCache()
    cache.put("health", b"t 1\n")
    options = PushOptions(url=f"http://127.0.0.1:{free_port()}", mode="pushgateway", timeout=1.0)
    pusher = Pusher(options, cache, tmp_path, {})
    try:
        assert pusher.tick() is False
        assert pusher.tick() is False
        assert _value(cache, "shaobing_push_failures_total") == 2
    finally:
        pusher.stop()


def test_push_options_are_validated() -> None:
    with pytest.raises(SchemaError) as err:
        load("url: ftp://x\nmode: kafka\ninterval: 1s\nusername: u\n", PushOptions, "agent.yml")
    text = str(err.value)
    assert "agent.yml:2: mode: must be one of" in text and "agent.yml:3: interval: must be at least 5" in text
    with pytest.raises(SchemaError) as err:
        load("url: ftp://x\nusername: u\n", PushOptions, "agent.yml")
    assert "url: expected an http:// or https:// URL" in str(err.value)
    assert "password_file: username and password_file go together" in str(err.value)
    assert {s.name for s in PUSH_METRICS} >= {"shaobing_push_last_success_timestamp_seconds"}


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    with VictoriaMetrics(tmp_path / "vm") as server:
        yield server


def test_agent_run_pushes_with_labels(tmp_path: Path, vm: VictoriaMetrics) -> None:
    """The real ``shaobing agent run`` with ``push:`` configured delivers its own page, labelled."""
    config = {
        "labels": LABELS,
        "push": {"url": vm.url, "interval": "5s", "instance": "zf-test-01"},
        "collectors": {"health": {"interval": "1s"}},
    }
    with AgentProcess(tmp_path / "agent", config) as agent:
        agent.wait_for_metric("shaobing_push_failures_total")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = vm.query('shaobing_collector_success{instance="zf-test-01",township="城关镇"}')
            if found:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"nothing arrived in VictoriaMetrics; agent log:\n{agent.log()[-3000:]}")
        assert found[0]["metric"]["site"] == "镇政府机房"
        assert "shaobing_push_last_success_timestamp_seconds" in agent.scrape()


def test_a_bad_push_url_is_named_without_its_credentials() -> None:
    with pytest.raises(SchemaError) as err:
        load("url: ftp://pusher:sekret-9@vm.example/?token=tok-9\n", PushOptions, "agent.yml")
    assert "url: expected an http:// or https:// URL" in str(err.value)
    assert "sekret-9" not in str(err.value) and "tok-9" not in str(err.value)
