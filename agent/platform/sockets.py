"""Listening TCP sockets with the uid that opened them, from /proc/net/tcp and /proc/net/tcp6.

psutil names the owning process only where the agent may look into that process (same user, or root); the
kernel's socket tables carry the owner's uid for every socket and are readable by anyone. That uid is what
tells a service's own socket (root, or its system user) from one a local user opened on the same port.

Sample (/proc/net/tcp; addresses little-endian hex, state 0A = LISTEN, uid in column 8)::

    sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
     0: 00000000:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000   110        0 23456 ...
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["listening_uids"]

_LISTEN = "0A"
MAX_LINES = 100_000


def listening_uids(proc_root: str = "/proc") -> dict[int, set[int]]:
    """Port -> the uids of the sockets listening on it (any address, IPv4 and IPv6)."""
    out: dict[int, set[int]] = {}
    for name in ("tcp", "tcp6"):
        try:
            text = Path(proc_root, "net", name).read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        for line in text.splitlines()[1:MAX_LINES]:
            fields = line.split()
            if len(fields) < 8 or fields[3] != _LISTEN:
                continue
            try:
                port = int(fields[1].rsplit(":", 1)[1], 16)
                uid = int(fields[7])
            except (IndexError, ValueError):
                continue
            out.setdefault(port, set()).add(uid)
    return out
