"""Risky services listening on every interface, and whether a host firewall filters inbound traffic.

A database or remote-desktop port bound to 0.0.0.0 or :: is reachable from the whole network unless a
firewall drops it; together the two facts say how exposed a host is. Sockets come from psutil (the owning
process needs root to resolve for other users' sockets); firewall state from nft, iptables, firewalld and
ufw, each under a timeout.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import psutil

from agent.process import CommandError, run

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


@dataclass(frozen=True)
class ExposedSocket:
    port: int
    protocol: str
    service: str
    bind: str
    process: str


@dataclass
class FirewallState:
    active: Optional[bool]  # None: no tool could tell (not root, none installed)
    evidence: list[str] = field(default_factory=list)  # "nft: input chain policy drop", …


ConnLister = Callable[[], Sequence[object]]


def _process_name(pid: Optional[int]) -> str:
    if not pid:
        return "unknown"
    try:
        return psutil.Process(pid).name() or "unknown"
    except (psutil.Error, OSError):
        return "unknown"


def exposed_sockets(
    catalogue: Mapping[tuple[int, str], str] = RISKY_PORTS,
    lister: Optional[ConnLister] = None,
) -> list[ExposedSocket]:
    """Catalogued ports with a socket listening on all interfaces (TCP LISTEN, or a bound UDP socket)."""
    conns = lister() if lister is not None else psutil.net_connections(kind="inet")
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
        if ip not in WILDCARDS:
            continue
        service = catalogue.get((port, proto))
        if service is None:
            continue
        bind = "::" if ":" in ip else "0.0.0.0"
        key = (port, proto, bind)
        if key not in found:
            found[key] = ExposedSocket(port, proto, service, bind, _process_name(getattr(c, "pid", None)))
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
