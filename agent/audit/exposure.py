"""Risky services listening on every interface, and whether a host firewall filters inbound traffic.

A database or remote-desktop port bound to 0.0.0.0 or :: is reachable from the whole network unless a
firewall drops it; together the two facts say how exposed a host is. Sockets come from psutil (the owning
process needs root to resolve for other users' sockets); firewall state from nft, iptables, firewalld and
ufw, each under a timeout.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from agent.optional import psutil
from agent.process import CommandError, run

if TYPE_CHECKING:
    from typing import TypeAlias  # Python 3.10+; aliases are strings so that 3.6-3.8 never evaluate them

__all__ = ["RISKY_PORTS", "ExposedSocket", "FirewallState", "exposed_sockets", "firewall_state", "WILDCARDS"]

# (port, protocol) -> service. Services that should never face a township network unfiltered.
RISKY_PORTS: dict[tuple[int, str], str] = {
    (21, "tcp"): "ftp",
    (23, "tcp"): "telnet",
    (69, "udp"): "tftp",
    (111, "tcp"): "rpcbind",
    (135, "tcp"): "msrpc",
    (137, "udp"): "netbios",
    (139, "tcp"): "smb",
    (161, "udp"): "snmp",
    (445, "tcp"): "smb",
    (512, "tcp"): "rexec",
    (513, "tcp"): "rlogin",
    (514, "tcp"): "rsh",
    (873, "tcp"): "rsync",
    (1433, "tcp"): "mssql",
    (1521, "tcp"): "oracle",
    (2049, "tcp"): "nfs",
    (2375, "tcp"): "docker",
    (2379, "tcp"): "etcd",
    (3306, "tcp"): "mysql",
    (3389, "tcp"): "rdp",
    (5432, "tcp"): "postgresql",
    (5900, "tcp"): "vnc",
    (5901, "tcp"): "vnc",
    (5902, "tcp"): "vnc",
    (5903, "tcp"): "vnc",
    (5984, "tcp"): "couchdb",
    (6379, "tcp"): "redis",
    (8161, "tcp"): "activemq",
    (9200, "tcp"): "elasticsearch",
    (9300, "tcp"): "elasticsearch",
    (10250, "tcp"): "kubelet",
    (11211, "tcp"): "memcached",
    (11211, "udp"): "memcached",
    (15672, "tcp"): "rabbitmq",
    (27017, "tcp"): "mongodb",
    (50070, "tcp"): "hadoop",
}
WILDCARDS = frozenset({"0.0.0.0", "::", "*", ""})

# Owning process -> service: a risky service is risky whatever port it was moved to (a Redis on 16379).
RISKY_PROCESSES: dict[str, str] = {
    "redis-server": "redis", "mysqld": "mysql", "mariadbd": "mysql", "postgres": "postgresql",
    "postmaster": "postgresql", "vsftpd": "ftp", "proftpd": "ftp", "pure-ftpd": "ftp", "in.telnetd": "telnet",
    "telnetd": "telnet", "xrdp": "rdp", "Xvnc": "vnc", "x11vnc": "vnc", "vncserver": "vnc", "mongod": "mongodb",
    "memcached": "memcached", "smbd": "smb", "rpcbind": "rpcbind", "dockerd": "docker", "etcd": "etcd",
    "couchdb": "couchdb", "beam.smp": "rabbitmq", "rsync": "rsync", "in.tftpd": "tftp", "snmpd": "snmp",
}
# The socket owner's system user, when the process is out of sight (an unprivileged agent).
RISKY_USERS: dict[str, str] = {
    "redis": "redis", "mysql": "mysql", "postgres": "postgresql", "mongodb": "mongodb", "memcache": "memcached",
    "memcached": "memcached", "rabbitmq": "rabbitmq", "etcd": "etcd", "couchdb": "couchdb",
    "elasticsearch": "elasticsearch",
}


@dataclass(frozen=True)
class ExposedSocket:
    port: int
    protocol: str
    service: str
    bind: str  # 0.0.0.0 / :: (all interfaces) or the one non-loopback address it listens on
    process: str

    @property
    def all_interfaces(self) -> bool:
        return self.bind in ("0.0.0.0", "::")


@dataclass
class FirewallState:
    active: Optional[bool]  # None: no tool could tell (not root, none installed)
    evidence: list[str] = field(default_factory=list)  # "nft: input chain policy drop", …


ConnLister: TypeAlias = "Callable[[], Sequence[object]]"


def _process_name(pid: Optional[int]) -> str:
    if not pid:
        return "unknown"
    try:
        return psutil.Process(pid).name() or "unknown"
    except (psutil.Error, OSError):
        return "unknown"


def _owner_user(uid: Optional[int]) -> str:
    if uid is None:
        return ""
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return ""


def _loopback(ip: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(ip.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


# Answers (agent.audit.fingerprint) that make an unnamed listener a risky service.
RISKY_ANSWERS = frozenset({"ftp", "telnet", "vnc", "mysql", "redis", "postgresql"})


def exposed_sockets(
    catalogue: Mapping[tuple[int, str], str] = RISKY_PORTS,
    lister: Optional[ConnLister] = None,
    owners: Optional[Mapping[int, set[int]]] = None,
    identify: Optional[Callable[[str, int], Optional[str]]] = None,
) -> list[ExposedSocket]:
    """Risky services listening beyond loopback (TCP LISTEN, or a bound UDP socket): known by their owning
    process or its system user wherever they listen, by a catalogued port, or (``identify``, e.g. a
    fingerprint.Prober with its bounds) by how an otherwise unknown TCP listener answers."""
    conns = lister() if lister is not None else psutil.net_connections(kind="inet")
    if owners is None:
        from agent.platform.sockets import listening_uids

        owners = listening_uids()
    found: dict[tuple[int, str, str], ExposedSocket] = {}
    for c in conns:
        laddr = getattr(c, "laddr", None)
        if not laddr:
            continue
        ctype = getattr(c, "type", None)
        proto = "udp" if ctype == socket.SOCK_DGRAM else "tcp"
        if proto == "tcp" and getattr(c, "status", "") != psutil.CONN_LISTEN:
            continue
        if proto == "udp" and getattr(c, "raddr", None):
            continue
        ip, port = laddr[0], laddr[1]
        if ip not in WILDCARDS and _loopback(ip):
            continue
        process = _process_name(getattr(c, "pid", None))
        users = {_owner_user(u) for u in owners.get(port, set())} if proto == "tcp" else set()
        service = RISKY_PROCESSES.get(process) or next((RISKY_USERS[u] for u in sorted(users) if u in RISKY_USERS),
                                                       None) or catalogue.get((port, proto))
        bind = ("::" if ":" in ip else "0.0.0.0") if ip in WILDCARDS else ip
        if service is None and identify is not None and proto == "tcp" and getattr(c, "pid", None) != os.getpid():
            answer = identify(("::1" if ":" in ip else "127.0.0.1") if ip in WILDCARDS else ip, port)
            service = answer if answer in RISKY_ANSWERS else None
        if service is None:
            continue
        key = (port, proto, bind)
        if key not in found:
            found[key] = ExposedSocket(port, proto, service, bind, process)
    return sorted(found.values(), key=lambda s: (s.port, s.protocol, s.bind))


def _nft_active(text: str) -> Optional[str]:
    """Evidence when an nft ruleset filters inbound traffic: an input hook chain with a drop policy or rules."""
    for m in re.finditer(r"chain\s+(\S+)\s*\{(.*?)\n\s*\}", text, re.S):
        body = m.group(2)
        if not re.search(r"hook\s+input\b", body):
            continue
        if re.search(r"policy\s+drop\b", body):
            return f"nft: chain {m.group(1)} (hook input) policy drop"
        if re.search(r"\b(drop|reject)\b", body):
            return f"nft: chain {m.group(1)} (hook input) has drop/reject rules"
    return None


def _iptables_active(text: str) -> Optional[str]:
    if re.search(r"^-P INPUT (DROP|REJECT)", text, re.M):
        return "iptables: INPUT policy DROP"
    if re.search(r"^-A INPUT .*-j \S+", text, re.M):
        return "iptables: INPUT chain has rules"
    return None


def firewall_state(
    timeout: float = 5.0, prefix: Sequence[str] = (), ufw_conf: Path = Path("/etc/ufw/ufw.conf")
) -> FirewallState:
    """Ask every known firewall front end; the host is filtered if any says so.

    ``prefix`` runs each command through a wrapper (tests use ``ip netns exec <ns>``).
    """
    state = FirewallState(None)
    checks: list[tuple[list[str], Callable[[str], Optional[str]]]] = [
        (["nft", "list", "ruleset"], _nft_active),
        (["iptables", "-S"], _iptables_active),
        (["firewall-cmd", "--state"], lambda t: "firewalld: running" if t.strip() == "running" else None),
        (["ufw", "status"], lambda t: "ufw: active" if re.search(r"Status:\s*active", t) else None),
    ]
    for argv, judge in checks:
        if state.active:
            break
        try:
            res = run([*prefix, *argv], timeout=timeout)
        except CommandError:
            continue  # not installed (or hung and killed): this front end says nothing
        if res.returncode != 0 and not res.stdout:
            if argv[0] == "firewall-cmd" and "not running" in (res.stdout + res.stderr):
                state.active = bool(state.active)
            continue
        evidence = judge(res.stdout)
        if evidence:
            state.active = True
            state.evidence.append(evidence)
        elif state.active is None:
            state.active = False
    if state.active is None:
        # Listing rules needs CAP_NET_ADMIN, which the hardened agent service does not have; the firewall
        # services' own state is readable without it.
        _service_fallback(state, timeout, prefix, ufw_conf)
    return state


def _service_fallback(state: FirewallState, timeout: float, prefix: Sequence[str], ufw_conf: Path) -> None:
    units = ["nftables.service", "firewalld.service", "ufw.service", "netfilter-persistent.service", "iptables.service"]
    try:
        res = run([*prefix, "systemctl", "is-active", *units], timeout=timeout)
        states = res.stdout.split()
        if len(states) == len(units):
            state.active = False
            for unit, st in zip(units, states):
                if st == "active":
                    state.active = True
                    state.evidence.append(f"systemd: {unit} active")
    except CommandError:
        pass
    try:
        text = ufw_conf.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    # ufw's own switch: ENABLED=yes means it loads its rules at boot.
    if re.search(r"^\s*ENABLED\s*=\s*yes\b", text, re.M | re.I):
        state.active = True
        state.evidence.append(f"ufw: ENABLED=yes in {ufw_conf}")
