"""Minimal authentication-only clients for a default-credential check on the host's own services.

Each function connects once, authenticates once, and disconnects: no query, no command beyond what the
protocol needs to say "authenticated" (Redis PING, an FTP login, a MySQL/PostgreSQL handshake, one HTTP
GET of the Tomcat manager page). 3 s timeout, no retries. ``check_target`` refuses every address that is not
loopback or one of this host's own, before any socket is opened: the agent must never become a scanner.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import socket
import struct
import time
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Optional, Union

from agent.compat import Literal
from agent.optional import psutil

if TYPE_CHECKING:
    from typing import TypeAlias  # Python 3.10+; aliases are strings so that 3.6-3.8 never evaluate them

__all__ = [
    "TargetRefused",
    "LoginOutcome",
    "check_target",
    "own_addresses",
    "mysql_login",
    "mysql_socket_control",
    "redis_login",
    "ftp_anonymous",
    "postgres_login",
    "tomcat_login",
]

TIMEOUT = 3.0
# A whole login try, however slowly the server answers; and the most any answer may make us read or compute.
DEADLINE = 10.0
MAX_ANSWER_BYTES = 64 * 1024
MAX_SCRAM_ITERATIONS = 100_000  # PostgreSQL's default is 4096; a server asking for millions is burning our CPU
# "ok": these credentials work; "denied": they do not; "other": the service wants something that is not a
# password (unix_socket/peer auth, client certificate), so the question does not apply.
LoginOutcome = Literal["ok", "denied", "other"]
Address: TypeAlias = "Union[tuple[str, int], str]"  # (ip, port) or a Unix socket path


class TargetRefused(ValueError):
    """A login target that is neither loopback nor an address of this host."""


def own_addresses() -> set[str]:
    out: set[str] = set()
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                out.add(a.address.split("%", 1)[0])
    return out


def check_target(host: str, own: Optional[Iterable[str]] = None) -> str:
    """The IP to connect to, or TargetRefused. Names other than "localhost" are refused unresolved."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise TargetRefused(
            f"login target {host!r} is not an IP address; only loopback or this host's own addresses are allowed"
        ) from None
    if ip.is_loopback:
        return str(ip)
    if str(ip) in set(own if own is not None else own_addresses()):
        return str(ip)
    raise TargetRefused(
        f"login target {host} is neither loopback nor an address of this host; refused (the agent only "
        "checks its own services)"
    )


class AnswerRefused(ValueError):
    """The server's answer is not one a real service gives (too large, too slow, too costly): stop."""


# Each connection's deadline for the whole try (sockets take no attributes of their own).
_DEADLINES: weakref.WeakKeyDictionary[socket.socket, float] = weakref.WeakKeyDictionary()


def _connect(addr: Address) -> socket.socket:
    if isinstance(addr, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.connect(addr)
    else:
        check_target(addr[0])
        s = socket.create_connection(addr, timeout=TIMEOUT)
    _DEADLINES[s] = time.monotonic() + DEADLINE
    return s


def _recv(s: socket.socket, n: int) -> bytes:
    left = _DEADLINES.get(s, time.monotonic() + DEADLINE) - time.monotonic()
    if left <= 0:
        raise AnswerRefused("the server answers too slowly (the whole try has a deadline)")
    s.settimeout(min(TIMEOUT, left))
    return s.recv(n)


def _recv_exact(s: socket.socket, n: int) -> bytes:
    if n > MAX_ANSWER_BYTES:
        raise AnswerRefused(f"the server announces a {n}-byte answer")
    buf = b""
    while len(buf) < n:
        chunk = _recv(s, n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by the server")
        buf += chunk
    return buf


# --- MySQL / MariaDB -------------------------------------------------------------------------------


def _mysql_read(s: socket.socket) -> tuple[int, bytes]:
    head = _recv_exact(s, 4)
    length = head[0] | head[1] << 8 | head[2] << 16
    return head[3], _recv_exact(s, length)


def _mysql_write(s: socket.socket, seq: int, payload: bytes) -> None:
    s.sendall(struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload)


def _native_scramble(password: str, salt: bytes) -> bytes:
    import hashlib  # here, not at the top: hashlib loads libcrypto (3.5 MiB) into every agent

    if not password:
        return b""
    h1 = hashlib.sha1(password.encode()).digest()
    h2 = hashlib.sha1(h1).digest()
    h3 = hashlib.sha1(salt + h2).digest()
    return bytes(a ^ b for a, b in zip(h1, h3))


def _sha2_scramble(password: str, nonce: bytes) -> bytes:
    import hashlib

    if not password:
        return b""
    p1 = hashlib.sha256(password.encode()).digest()
    p3 = hashlib.sha256(hashlib.sha256(p1).digest() + nonce).digest()
    return bytes(a ^ b for a, b in zip(p1, p3))


def mysql_login(addr: Address, user: str, password: str) -> LoginOutcome:
    """mysql_native_password handshake (protocol 10); OK packet -> "ok"."""
    with _connect(addr) as s:
        seq, pkt = _mysql_read(s)
        if pkt[:1] == b"\xff" or pkt[0] != 10:
            return "other"
        end = pkt.index(b"\x00", 1)
        pos = end + 1 + 4
        salt = pkt[pos : pos + 8]
        pos += 8 + 1
        caps = struct.unpack_from("<H", pkt, pos)[0]
        pos += 2 + 1 + 2
        caps |= struct.unpack_from("<H", pkt, pos)[0] << 16
        pos += 2
        auth_len = pkt[pos]
        pos += 1 + 10
        salt += pkt[pos : pos + max(13, auth_len - 8) - 1]
        # LONG_PASSWORD | PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH
        client_caps = 0x1 | 0x200 | 0x8000 | 0x80000
        auth = _native_scramble(password, salt)
        payload = struct.pack("<IIB", client_caps, 1 << 24, 33) + b"\x00" * 23
        payload += user.encode() + b"\x00" + bytes([len(auth)]) + auth + b"mysql_native_password\x00"
        _mysql_write(s, seq + 1, payload)
        seq, pkt = _mysql_read(s)
        if pkt[:1] == b"\xfe" and len(pkt) > 1:  # auth switch request
            plugin, _, data = pkt[1:].partition(b"\x00")
            nonce = data.rstrip(b"\x00")[:20]
            if plugin == b"mysql_native_password":
                _mysql_write(s, seq + 1, _native_scramble(password, nonce))
            elif plugin == b"caching_sha2_password":  # MySQL 8's default
                _mysql_write(s, seq + 1, _sha2_scramble(password, nonce))
            else:
                return "other"  # unix_socket, auth_socket, ed25519, PAM …: not a default-password question
            seq, pkt = _mysql_read(s)
        if pkt[:2] == b"\x01\x03":  # caching_sha2 fast-auth success, OK packet follows
            seq, pkt = _mysql_read(s)
        elif pkt[:2] == b"\x01\x04":
            # Full authentication would send the password over RSA or TLS; the cache was cold, so say nothing.
            return "other"
        if pkt[:1] == b"\x00":
            return "ok"
        return "denied"


def mysql_socket_control(path: str, user: str) -> LoginOutcome:
    """A random password over the Unix socket: accepted means the server authenticates this process by
    its OS identity (MariaDB's unix_socket, MySQL's auth_socket), so no password question applies there.

    Returns "other" in that case, and "denied" (go on with the real candidates) otherwise.
    """
    outcome = mysql_login(path, user, "shaobing-" + os.urandom(12).hex())
    return "other" if outcome == "ok" else "denied"


# --- Redis -----------------------------------------------------------------------------------------


def _resp(*args: str) -> bytes:
    out = f"*{len(args)}\r\n".encode()
    for a in args:
        b = a.encode()
        out += b"$" + str(len(b)).encode() + b"\r\n" + b + b"\r\n"
    return out


def _redis_line(s: socket.socket) -> bytes:
    buf = b""
    while not buf.endswith(b"\r\n"):
        chunk = _recv(s, 1)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        buf += chunk
        if len(buf) > 4096:
            break
    return buf


def redis_login(addr: Address, password: Optional[str]) -> LoginOutcome:
    """None: PING without AUTH (is a password required at all?); else AUTH with ``password``."""
    with _connect(addr) as s:
        if password is None:
            s.sendall(_resp("PING"))
            return "ok" if _redis_line(s).startswith(b"+PONG") else "denied"
        s.sendall(_resp("AUTH", password))
        return "ok" if _redis_line(s).startswith(b"+OK") else "denied"


# --- FTP -------------------------------------------------------------------------------------------


def ftp_anonymous(host: str, port: int) -> LoginOutcome:
    import ftplib  # imports ssl: only on a host that runs an FTP server

    check_target(host)
    ftp = ftplib.FTP(timeout=TIMEOUT)
    try:
        try:
            # A server with anonymous access off may refuse already in its greeting (vsftpd: "500 OOPS").
            ftp.connect(host, port, timeout=TIMEOUT)
            ftp.login("anonymous", "shaobing@localhost")
        except ftplib.error_perm:
            return "denied"
        return "ok"
    finally:
        try:
            ftp.quit()
        except (OSError, EOFError, ftplib.Error):
            ftp.close()


# --- PostgreSQL ------------------------------------------------------------------------------------


def _pg_send(s: socket.socket, kind: bytes, body: bytes) -> None:
    s.sendall(kind + struct.pack("!I", len(body) + 4) + body)


def _pg_read(s: socket.socket) -> tuple[bytes, bytes]:
    head = _recv_exact(s, 5)
    return head[:1], _recv_exact(s, struct.unpack("!I", head[1:])[0] - 4)


def _scram(s: socket.socket, user: str, password: str) -> bool:
    import hashlib
    import hmac

    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n=,r={nonce}"
    msg = ("n,," + first_bare).encode()
    _pg_send(s, b"p", b"SCRAM-SHA-256\x00" + struct.pack("!I", len(msg)) + msg)
    kind, body = _pg_read(s)
    if kind != b"R" or struct.unpack("!I", body[:4])[0] != 11:
        return False
    server_first = body[4:].decode()
    attrs = dict(p.split("=", 1) for p in server_first.split(","))
    if not attrs.get("r", "").startswith(nonce):
        return False
    iterations = int(attrs["i"])
    if not 0 < iterations <= MAX_SCRAM_ITERATIONS:
        # The server chooses the work; an impostor chooses a lot of it. Refuse before computing anything.
        raise AnswerRefused(f"the server asks for {iterations} SCRAM iterations")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    final_no_proof = f"c=biws,r={attrs['r']}"
    auth_msg = f"{first_bare},{server_first},{final_no_proof}".encode()
    sig = hmac.new(stored_key, auth_msg, "sha256").digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, sig))).decode()
    _pg_send(s, b"p", f"{final_no_proof},p={proof}".encode())
    kind, body = _pg_read(s)
    if kind != b"R" or struct.unpack("!I", body[:4])[0] != 12:
        return False
    kind, body = _pg_read(s)
    return kind == b"R" and struct.unpack("!I", body[:4])[0] == 0


def postgres_login(addr: Address, user: str, password: str) -> LoginOutcome:
    """A startup message; trust ("ok" with no password), cleartext, md5 or SCRAM-SHA-256."""
    with _connect(addr) as s:
        params = b"user\x00" + user.encode() + b"\x00database\x00postgres\x00\x00"
        s.sendall(struct.pack("!II", len(params) + 8, 196608) + params)
        kind, body = _pg_read(s)
        if kind == b"E":
            return "denied"
        if kind != b"R":
            return "other"
        code = struct.unpack("!I", body[:4])[0]
        if code == 0:
            return "ok"
        if code == 3:
            _pg_send(s, b"p", password.encode() + b"\x00")
        elif code == 5:
            import hashlib

            inner = hashlib.md5((password + user).encode()).hexdigest()
            outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
            _pg_send(s, b"p", b"md5" + outer.encode() + b"\x00")
        elif code == 10:
            if b"SCRAM-SHA-256\x00" not in body[4:]:
                return "other"
            return "ok" if _scram(s, user, password) else "denied"
        else:
            return "other"  # Kerberos, GSS, SSPI, certificates: not a password question
        kind, body = _pg_read(s)
        return "ok" if kind == b"R" and struct.unpack("!I", body[:4])[0] == 0 else "denied"


# --- Tomcat manager ---------------------------------------------------------------------------------


def tomcat_login(host: str, port: int, user: Optional[str], password: str) -> LoginOutcome:
    """GET /manager/html with basic auth (None: without, to see whether it asks for a password at all)."""
    import httpx  # only here: most hosts run no Tomcat, and httpx costs megabytes of RSS

    ip = check_target(host)
    netloc = f"[{ip}]" if ":" in ip else ip
    auth = (user, password) if user is not None else None
    # Only the status matters: the body is never read, so a server that streams gigabytes costs nothing.
    # (Nested rather than parenthesised: the agent runs on Python 3.9.)
    with httpx.Client(timeout=TIMEOUT, follow_redirects=False, trust_env=False) as client:  # noqa: SIM117
        with client.stream("GET", f"http://{netloc}:{port}/manager/html", auth=auth) as resp:
            status = resp.status_code
    if status == 200:
        return "ok"
    return "denied" if status == 401 else "other"
