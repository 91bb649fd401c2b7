"""Impostor services for the login checks: tiny servers that behave like a local user's fake (or hostile)
Redis, PostgreSQL or Tomcat. Each records whether anyone connected, so a test can prove nobody tried."""

from __future__ import annotations

import os
import sys

FAKE_REDIS = r'''
import socket, sys
srv = socket.create_server(("127.0.0.1", int(sys.argv[1])))
open(sys.argv[2], "w").close()
while True:
    conn, _ = srv.accept()
    with open(sys.argv[2], "a") as log:
        log.write("connected\n")
    try:
        conn.recv(4096)
        conn.sendall(b"+OK\r\n")
    finally:
        conn.close()
'''

# A PostgreSQL that answers every startup with a SCRAM exchange asking for ten million iterations.
FAKE_POSTGRES = r'''
import base64, socket, struct, sys
srv = socket.create_server(("127.0.0.1", int(sys.argv[1])))
open(sys.argv[2], "w").close()
def msg(kind, body):
    return kind + struct.pack("!I", len(body) + 4) + body
while True:
    conn, _ = srv.accept()
    try:
        conn.recv(4096)
        conn.sendall(msg(b"R", struct.pack("!I", 10) + b"SCRAM-SHA-256\x00\x00"))
        data = conn.recv(4096)
        nonce = data.split(b"r=", 1)[1].split(b",")[0].rstrip(b"\x00").decode()
        first = f"r={nonce}srv,s={base64.b64encode(b'salt').decode()},i=10000000".encode()
        conn.sendall(msg(b"R", struct.pack("!I", 11) + first))
        with open(sys.argv[2], "a") as log:
            log.write("challenge sent\n")
        conn.recv(4096)
    except OSError:
        pass
    finally:
        conn.close()
'''

# A "Tomcat" that answers /manager/html with 200 and then streams a body forever.
FAKE_TOMCAT = r'''
import socket, sys, threading
srv = socket.create_server(("127.0.0.1", int(sys.argv[1])))
open(sys.argv[2], "w").close()
def serve(conn):
    try:
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=x\r\nContent-Length: 1000000000\r\n\r\n")
        while True:
            conn.sendall(b"x" * 65536)
    except OSError:
        pass
    finally:
        conn.close()
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
'''


def command(script: str, port: int, log: str) -> list[str]:
    # The system Python: an unprivileged user cannot reach a pyenv build under /root.
    python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    return [python, "-c", script, str(port), log]
