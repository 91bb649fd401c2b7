"""What a listener on this host is, from how it answers: a Redis renamed ``cache-daemon`` on port 16379 is still
a Redis. Used for sockets beyond loopback that neither their process name, their owner nor their port give away.

Read-only and bounded: one connection per question to this host's own address, a 0.5 s deadline, at most
512 bytes read, at most :data:`MAX_PROBES` listeners and :data:`BUDGET` seconds a run (:class:`Prober`).
Server-first protocols speak on connect (FTP ``220``, SSH ``SSH-``, MySQL's protocol-10 handshake, VNC
``RFB``, telnet's IAC negotiation); if nothing comes, one Redis ``PING`` (answered ``+PONG`` or
``-NOAUTH``/``-DENIED``), then PostgreSQL's 8-byte SSLRequest (answered by a single ``S`` or ``N``). No
credential is ever sent.
"""

from __future__ import annotations

import socket
import time
from typing import Optional

__all__ = ["identify", "Prober", "MAX_PROBES", "BUDGET"]

MAX_PROBES = 32
BUDGET = 10.0
_DEADLINE = 0.5
_READ = 512
_SSL_REQUEST = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"


def _exchange(host: str, port: int, send: bytes, deadline: float) -> bytes:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(deadline)
        start = time.monotonic()
        s.connect((host, port))
        if send:
            s.sendall(send)
        data = b""
        while len(data) < _READ:
            left = deadline - (time.monotonic() - start)
            if left <= 0:
                break
            s.settimeout(left)
            try:
                chunk = s.recv(_READ - len(data))
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
            if send or b"\n" in data or len(data) >= 5:
                break  # enough to judge; do not wait out the deadline
        return data


def _server_first(data: bytes) -> Optional[str]:
    if data.startswith(b"SSH-"):
        return "ssh"
    if data.startswith(b"RFB "):
        return "vnc"
    if data[:1] == b"\xff" and data[1:2] in (b"\xfb", b"\xfc", b"\xfd", b"\xfe"):
        return "telnet"
    if data.startswith(b"220"):
        head = data[:200].upper()
        return "smtp" if b"SMTP" in head or b"MAIL" in head else "ftp"
    # MySQL/MariaDB: 3-byte length, sequence 0, protocol version 10, then a NUL-terminated server version
    if len(data) > 5 and data[3] == 0 and data[4] == 10 and int.from_bytes(data[:3], "little") == len(data) - 4:
        return "mysql"
    if len(data) > 5 and data[3] == 0 and data[4] == 0xFF:
        return "mysql"  # an error packet on connect ("Host ... is not allowed to connect")
    return None


def identify(host: str, port: int, deadline: float = _DEADLINE) -> Optional[str]:
    """The service behind ``host:port`` (ftp, ssh, smtp, telnet, vnc, mysql, redis, postgresql) or None."""
    try:
        first = _exchange(host, port, b"", deadline)
    except OSError:
        return None
    if first:
        return _server_first(first)
    try:
        answer = _exchange(host, port, b"PING\r\n", deadline)
    except OSError:
        answer = b""
    if answer.startswith((b"+PONG", b"-NOAUTH", b"-DENIED", b"-ERR operation not permitted")):
        return "redis"
    try:
        answer = _exchange(host, port, _SSL_REQUEST, deadline)
    except OSError:
        return None
    if answer in (b"S", b"N"):
        return "postgresql"
    return None


class Prober:
    """:func:`identify` with a run's bounds: at most ``max_probes`` listeners, ``budget`` seconds in all, each
    (host, port) asked once. ``skipped`` counts the listeners left unasked."""

    def __init__(self, max_probes: int = MAX_PROBES, budget: float = BUDGET) -> None:
        self.max_probes, self.end = max_probes, time.monotonic() + budget
        self.asked: dict[tuple[str, int], Optional[str]] = {}
        self.skipped = 0

    def __call__(self, host: str, port: int) -> Optional[str]:
        if (host, port) in self.asked:
            return self.asked[(host, port)]
        if len(self.asked) >= self.max_probes or time.monotonic() >= self.end:
            self.skipped += 1
            return None
        self.asked[(host, port)] = answer = identify(host, port)
        return answer
