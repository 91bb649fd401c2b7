"""Exposed risky ports (real sockets, real psutil) and the host firewall (real nft in a network namespace)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.audit.exposure import _iptables_active, firewall_state
from agent.collector import AgentContext
from agent.collectors.exposure import ExposureCollector, ExposureOptions

FIXTURES = Path(__file__).parent / "fixtures" / "audit"


def _listen(host: str, family: int = socket.AF_INET) -> socket.socket:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 0))
    s.listen(1)
    return s


def test_wildcard_listener_is_exposed_and_loopback_is_not(tmp_path: Path) -> None:
    wild = _listen("0.0.0.0")
    local = _listen("127.0.0.1")
    try:
        wport, lport = wild.getsockname()[1], local.getsockname()[1]
        catalogue = {(wport, "tcp"): "redis", (lport, "tcp"): "mysql"}
        opts = ExposureOptions(check_firewall=False)
        col = ExposureCollector(opts, AgentContext(state_dir=tmp_path), catalogue=catalogue)
        assert col.report() is None  # nothing to say before a run
        out = col.new_metric_set()
        col.collect(out)
        samples = out.samples("shaobing_exposed_port")
        assert len(samples) == 1
        labels = dict(samples[0].labels)
        assert labels["port"] == str(wport) and labels["service"] == "redis" and labels["bind"] == "0.0.0.0"
        assert labels["process"].startswith("python") or labels["process"] == "pytest"
        report = col.report()
        assert report is not None and f"redis 端口 {wport}/tcp" in report.findings[0].title
        # An operator-declared public service is not reported.
        opts = ExposureOptions(check_firewall=False, ignore_ports=[f"{wport}/tcp"])
        col = ExposureCollector(opts, AgentContext(state_dir=tmp_path), catalogue=catalogue)
        out = col.new_metric_set()
        col.collect(out)
        assert out.samples("shaobing_exposed_port") == []
    finally:
        wild.close()
        local.close()


def test_option_problems_name_the_key() -> None:
    assert ExposureOptions(extra_ports={"http": "x"}).problems()[0][0] == "extra_ports.http"
    assert ExposureOptions(ignore_ports=["99999"]).problems()[0][0] == "ignore_ports[0]"


def test_iptables_parser_on_captured_output() -> None:
    assert _iptables_active((FIXTURES / "iptables-S-ufw.txt").read_text()) == "iptables: INPUT policy DROP"
    assert _iptables_active((FIXTURES / "iptables-S-open.txt").read_text()) is None


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nft") is None:
        pytest.skip("needs root, iproute2 and nftables")
    name = f"shaobing-fw-{uuid.uuid4().hex[:8]}"
    res = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, timeout=10)
    if res.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {res.stderr.strip()}")
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


def test_firewall_state_from_real_nft(netns: str, tmp_path: Path) -> None:
    prefix = ["ip", "netns", "exec", netns]
    state = firewall_state(prefix=prefix)
    assert state.active is False
    rules = "table inet shaobing_test {\n chain input {\n  type filter hook input priority 0; policy drop;\n }\n}\n"
    (tmp_path / "rules.nft").write_text(rules)
    subprocess.run([*prefix, "nft", "-f", str(tmp_path / "rules.nft")], check=True, timeout=10)
    state = firewall_state(prefix=prefix)
    assert state.active is True
    assert state.evidence == ["nft: chain input (hook input) policy drop"]
    col = ExposureCollector(ExposureOptions(), AgentContext(state_dir=tmp_path), catalogue={}, firewall_prefix=prefix)
    out = col.new_metric_set()
    col.collect(out)
    assert out.get("shaobing_host_firewall_active") == 1


def test_firewall_fallback_without_cap_net_admin(tmp_path: Path) -> None:
    # `false` stands in front of every command: as for the unprivileged agent, no tool can list rules.
    assert firewall_state(prefix=["false"], ufw_conf=tmp_path / "missing").active is None
    state = firewall_state(prefix=["false"], ufw_conf=FIXTURES / "ufw.conf")
    assert state.active is True and state.evidence == [f"ufw: ENABLED=yes in {FIXTURES / 'ufw.conf'}"]


def test_a_risky_service_on_another_port_is_found_by_its_process(tmp_path: Path) -> None:
    """A real redis-server moved to a free port on all interfaces: known by its process, not its port."""
    from tests.support.prometheus import free_port

    redis = shutil.which("redis-server")
    if redis is None:
        pytest.skip("redis-server not installed")
    port = free_port()
    proc = subprocess.Popen(
        [redis, "--port", str(port), "--bind", "0.0.0.0", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path), "--protected-mode", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        import time

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        col = ExposureCollector(ExposureOptions(check_firewall=False), AgentContext(state_dir=tmp_path))
        out = col.new_metric_set()
        col.collect(out)
        ours = [dict(s.labels) for s in out.samples("shaobing_exposed_port") if dict(s.labels)["port"] == str(port)]
        assert ours == [{"port": str(port), "service": "redis", "bind": "0.0.0.0", "process": "redis-server"}]
        report = col.report()
        assert report is not None and any(f"redis 端口 {port}/tcp 监听在所有网卡" in f.title for f in report.findings)
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_specific_non_loopback_address_is_exposure_too(tmp_path: Path) -> None:
    from agent.audit.exposure import exposed_sockets

    class Conn:
        def __init__(self, ip: str, port: int, pid: int | None = None) -> None:
            self.laddr, self.raddr, self.status, self.type, self.pid = (ip, port), (), "LISTEN", socket.SOCK_STREAM, pid

    conns = [Conn("10.20.1.11", 3306), Conn("127.0.0.1", 6379), Conn("::1", 5432), Conn("192.168.3.4", 16379)]
    found = exposed_sockets(lister=lambda: conns, owners={16379: {0}})
    assert [(s.bind, s.service) for s in found] == [("10.20.1.11", "mysql")]
    assert not found[0].all_interfaces
