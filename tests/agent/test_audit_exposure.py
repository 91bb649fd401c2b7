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
        _wait(port)
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


def _wait(port: int) -> None:
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@pytest.mark.integration
def test_renamed_services_on_moved_ports_are_known_by_how_they_answer(tmp_path: Path) -> None:
    """A real redis-server copied to /opt/…/cache-daemon on 0.0.0.0:<free> without a password and a real vsftpd
    copied to file-daemon with anonymous login: neither name nor port says what they are; their answers do.
    A plain HTTP listener and SSH-like banners are not reported; ignore_ports still silences a port. The
    credentials check finds the renamed Redis and logs in to it."""
    from agent.audit import fingerprint
    from agent.collectors.service_credentials import ServiceCredentialsCollector, ServiceCredentialsOptions
    from tests.support.prometheus import free_port

    redis, vsftpd = shutil.which("redis-server"), shutil.which("vsftpd", path="/usr/sbin:/usr/bin")
    if redis is None or vsftpd is None:
        pytest.skip("needs redis-server and vsftpd")
    opt = Path(f"/opt/sbtest-{uuid.uuid4().hex[:8]}")
    procs: list[subprocess.Popen[bytes]] = []
    http = _listen("0.0.0.0")
    try:
        (opt / "bin").mkdir(parents=True, mode=0o755)
        shutil.copy(redis, opt / "bin" / "cache-daemon")
        shutil.copy(vsftpd, opt / "bin" / "file-daemon")
        rport, fport = free_port(), free_port()
        procs.append(subprocess.Popen(
            [str(opt / "bin" / "cache-daemon"), "--port", str(rport), "--bind", "0.0.0.0", "--save", "",
             "--appendonly", "no", "--dir", str(tmp_path), "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        (tmp_path / "ftproot").mkdir(mode=0o755)
        (tmp_path / "ftpempty").mkdir(mode=0o755)
        conf = tmp_path / "f.conf"
        conf.write_text(
            f"listen=YES\nlisten_ipv6=NO\nlisten_port={fport}\nanonymous_enable=YES\nanon_root={tmp_path / 'ftproot'}\n"
            f"local_enable=NO\nwrite_enable=NO\nsecure_chroot_dir={tmp_path / 'ftpempty'}\nseccomp_sandbox=NO\n"
            "isolate=NO\nisolate_network=NO\nbackground=NO\nxferlog_enable=NO\npasv_enable=NO\n")
        procs.append(subprocess.Popen([str(opt / "bin" / "file-daemon"), str(conf)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        _wait(rport)
        _wait(fport)
        assert fingerprint.identify("127.0.0.1", http.getsockname()[1], deadline=0.3) is None

        col = ExposureCollector(ExposureOptions(check_firewall=False), AgentContext(state_dir=tmp_path / "s1"))
        out = col.new_metric_set()
        col.collect(out)
        ours = {dict(s.labels)["port"]: dict(s.labels) for s in out.samples("shaobing_exposed_port")}
        assert ours.get(str(rport)) == {"port": str(rport), "service": "redis", "bind": "0.0.0.0",
                                        "process": "cache-daemon"}, ours
        assert ours.get(str(fport), {}).get("service") == "ftp", ours
        assert str(http.getsockname()[1]) not in ours

        quiet = ExposureCollector(ExposureOptions(check_firewall=False, ignore_ports=[str(fport)]),
                                  AgentContext(state_dir=tmp_path / "s2"))
        out = quiet.new_metric_set()
        quiet.collect(out)
        assert str(fport) not in {dict(s.labels)["port"] for s in out.samples("shaobing_exposed_port")}

        opts = ServiceCredentialsOptions(redis_configs=[], pg_hba_files=[], vsftpd_configs=[], tomcat_users_files=[],
                                         mysql_sockets=[], mysql_configs=[])
        creds = ServiceCredentialsCollector(opts, AgentContext(state_dir=tmp_path / "s3"), running=lambda: {})
        out = creds.new_metric_set()
        creds.collect(out)
        assert out.get("shaobing_service_weak_credentials", {"service": "redis", "port": str(rport)}) == 1
        assert out.get("shaobing_service_weak_credentials", {"service": "ftp", "port": str(fport)}) == 1
    finally:
        http.close()
        for p in procs:
            p.terminate()
            p.wait(10)
        shutil.rmtree(opt, ignore_errors=True)


@pytest.mark.parametrize(
    ("greeting", "service"),
    [
        (b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", "ssh"),
        (b"RFB 003.008\n", "vnc"),
        (b"\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23\xff\xfd\x27", "telnet"),  # RFC 854 IAC DO TERMINAL-TYPE …
        (b"220 (vsFTPd 3.0.3)\r\n", "ftp"),
        (b"220 mail.example.gov.cn ESMTP Postfix (Debian/GNU)\r\n", "smtp"),
        # MySQL protocol 10 handshake (dev.mysql.com "Protocol::HandshakeV10"): length 0x4a, seq 0, version 10
        (bytes([0x4A, 0, 0, 0, 10]) + b"5.5.5-10.11.6-MariaDB-0+deb12u1\x00" + bytes(0x4A - 1 - 32), "mysql"),
        (bytes([0x17, 0, 0, 0, 0xFF, 0x6A, 0x04]) + b"Host 'x' is not allowed", "mysql"),
        (b"HTTP/1.1 400 Bad Request\r\n", None),
    ],
)
def test_server_greetings_are_recognised_from_their_documented_formats(greeting: bytes, service: str | None) -> None:
    from agent.audit.fingerprint import _server_first

    assert _server_first(greeting) == service
