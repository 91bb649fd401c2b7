"""The agent as a process: a hung probe never stalls /metrics; SIGHUP reloads, a bad reload keeps the old config."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from agent.catalog import MetricSet
from agent.collector import AgentContext, Collector, CollectorOptions
from agent.collectors.health import HealthCollector
from agent.exporter import ExpositionCache, MetricsServer
from agent.scheduler import Scheduler
from agent.webconfig import WebConfig
from tests.support.agent import SHAOBING, AgentProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel completes the handshake) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield int(s.getsockname()[1])


def value(body: str, series: str) -> float | None:
    m = re.search(rf"^{re.escape(series)} (\S+)$", body, re.M)
    return float(m.group(1)) if m else None


def test_silent_probe_target_fails_within_its_timeout_and_metrics_stay_fast(tmp_path: Path, silent_port: int) -> None:
    config = {
        "collectors": {
            "health": {"interval": "1s"},
            "probes": {
                "interval": "1s",
                "http": [{"name": "silent", "url": f"http://127.0.0.1:{silent_port}/", "timeout": "2s"}],
                "tcp": [{"name": "silent-tcp", "address": f"127.0.0.1:{silent_port}", "timeout": "2s"}],
            },
        }
    }
    with AgentProcess(tmp_path, config) as agent:
        body = agent.wait_for_metric('shaobing_probe_success{target="silent",kind="http"}', timeout=30)
        assert value(body, 'shaobing_probe_success{target="silent",kind="http"}') == 0
        # TCP connects succeed: the kernel accepts; only HTTP waits for an answer that never comes.
        assert value(body, 'shaobing_probe_success{target="silent-tcp",kind="tcp"}') == 1
        duration = value(body, 'shaobing_probe_duration_seconds{target="silent",kind="http"}')
        assert duration is not None and 1.5 <= duration < 4
        worst = 0.0
        for _ in range(20):
            start = time.monotonic()
            page = agent.scrape()
            worst = max(worst, time.monotonic() - start)
            assert "node_load1 " in page
        assert worst < 1.0, f"a scrape took {worst:.3f}s while a probe waited"


def test_hung_collector_is_failed_and_never_stalls_a_real_scrape(tmp_path: Path) -> None:
    """The production scheduler and HTTP server, with a collector that never returns beside the real health one."""
    release = threading.Event()

    class Hanging(Collector):
        name = "hanging"
        default_interval = 1.0
        default_timeout = 0.5
        metrics = ()

        def collect(self, out: MetricSet) -> None:
            release.wait(60)

    ctx = AgentContext(state_dir=tmp_path)
    cache = ExpositionCache()
    server = MetricsServer(cache)
    server.start("127.0.0.1", 0, WebConfig())
    health = HealthCollector(HealthCollector.options_class(interval=1.0), ctx)
    scheduler = Scheduler([health, Hanging(CollectorOptions(), ctx)], cache)
    scheduler.start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        deadline = time.monotonic() + 15
        body = ""
        while time.monotonic() < deadline:
            body = urllib.request.urlopen(url, timeout=5).read().decode()
            if value(body, 'shaobing_collector_success{collector="hanging"}') == 0 and "node_load1 " in body:
                break
            time.sleep(0.1)
        assert value(body, 'shaobing_collector_success{collector="hanging"}') == 0
        assert value(body, 'shaobing_collector_success{collector="health"}') == 1
        worst = 0.0
        for _ in range(30):
            start = time.monotonic()
            urllib.request.urlopen(url, timeout=5).read()
            worst = max(worst, time.monotonic() - start)
            time.sleep(0.05)
        assert worst < 1.0
    finally:
        release.set()
        scheduler.stop()
        server.stop()


def test_sighup_reload_and_bad_reload(tmp_path: Path) -> None:
    with AgentProcess(tmp_path, {"collectors": {"health": {"interval": "1s"}}}) as agent:
        agent.wait_for_metric("node_load1")
        agent.wait_for_metric("shaobing_build_info")

        doc = yaml.safe_load(agent.config_file.read_text())
        doc["collectors"]["self"] = {"enabled": False}
        agent.config_file.write_text(yaml.safe_dump(doc))
        agent.reload()
        deadline = time.monotonic() + 15
        while "shaobing_build_info" in agent.scrape() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "shaobing_build_info" not in agent.scrape()
        deadline = time.monotonic() + 10  # the log line follows the swap by a few milliseconds
        while "configuration reloaded" not in agent.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "configuration reloaded" in agent.log()

        agent.config_file.write_text("collectors:\n  health:\n    interval: often\n")
        agent.reload()
        deadline = time.monotonic() + 15
        while "reload failed" not in agent.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        log = agent.log()
        assert "reload failed, keeping the running configuration" in log
        assert "collectors.health.interval: expected a duration" in log
        assert "Traceback" not in log
        time.sleep(1.5)
        page = agent.scrape()
        assert "node_load1 " in page and "shaobing_build_info" not in page  # still the reloaded config


def test_zero_config_agent_once_prints_the_exposition(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.yml"
    cfg.write_text(f"state_dir: {tmp_path / 'state'}\ncollectors:\n  passwords: {{enabled: false}}\n")
    res = subprocess.run([SHAOBING, "agent", "once", "--config", str(cfg), "--collector", "health",
                          "--collector", "self"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert re.search(r"^node_memory_MemTotal_bytes \d+", res.stdout, re.M)
    assert 'shaobing_collector_success{collector="health"} 1' in res.stdout
    assert "shaobing_build_info{" in res.stdout


def _mapped_libraries(pid: int) -> set[str]:
    return {Path(line.split()[-1]).name for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
            if line.split()[-1].startswith("/")}


def test_a_plain_http_agent_loads_no_openssl_and_its_first_scrape_is_whole(tmp_path: Path) -> None:
    """libssl and libcrypto were 5 MiB of the agent's resident memory (hashlib, hmac, ssl, ftplib imported at the
    top) on hosts that serve plain HTTP: now loaded only for TLS, a TLS probe or a PostgreSQL/MySQL login check.
    The default collectors run (no audit: its hashing child is another process); the very first scrape carries
    every frequent collector's series (it waits for their first round)."""
    config = {"collectors": {"passwords": {"enabled": False}}}
    with AgentProcess(tmp_path / "plain", config) as agent:
        body = agent.scrape(timeout=15)
        for series in ("shaobing_build_info{", "node_load1 ", 'shaobing_collector_success{collector="health"} 1',
                       'shaobing_collector_success{collector="self"} 1'):
            assert series in body, series
        time.sleep(3)  # the rest of the first minute's runs
        libs = _mapped_libraries(agent.pid)
        assert not any(name.startswith(("libssl.", "libcrypto.")) for name in libs), sorted(libs)
    # The same agent with TLS on does load them, and answers over TLS: the lazy import is not a missing one.
    from tests.support.tls import make_ca, make_cert

    ca = make_ca(tmp_path / "pki")
    cert = make_cert(tmp_path / "pki", "agent", ca, hosts=["127.0.0.1"], days=30)
    web = {"tls_server_config": {"cert_file": str(cert.cert_file), "key_file": str(cert.key_file)}}
    with AgentProcess(tmp_path / "tls", config, web_config=web) as agent:
        assert "node_load1 " in agent.scrape(ca=ca.cert_file, timeout=15)
        assert any(name.startswith("libssl.") for name in _mapped_libraries(agent.pid))


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        cfg = tmp_path / "agent.yml"
        cfg.write_text(f"listen_address: 127.0.0.1:{port}\nstate_dir: {tmp_path / 'state'}\n")
        res = subprocess.run([SHAOBING, "agent", "run", "--config", str(cfg)], capture_output=True, text=True,
                             timeout=60)
    assert res.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in res.stderr and "Traceback" not in res.stderr
