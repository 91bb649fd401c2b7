"""A loopback SMSC stand-in speaking SMPP 3.4, written from the specification (not from smpplib).

It checks binds (system_id / password), decodes every submit_sm (TON/NPI, esm_class, data_coding, UDH
concatenation headers, UCS-2 text), answers with a message id, sends delivery receipts (deliver_sm with
esm_class 0x04, the receipt text and the receipted_message_id / message_state TLVs), answers enquire_link, and
can be told to misbehave: "drop" (read a submit_sm, close the connection without answering), "status:0x58"
(answer with an error status), "silent" (read, never answer).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from tests.relay.concat import reassemble

BIND_TRANSMITTER, BIND_TRANSCEIVER = 0x00000002, 0x00000009
SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x00000004, 0x00000005, 0x00000006, 0x00000015
RESP = 0x80000000
ESME_RINVPASWD = 0x0000000E


def _cstring(body: bytes, at: int) -> tuple[str, int]:
    end = body.index(b"\x00", at)
    return body[at:end].decode("ascii"), end + 1


def _pdu(command: int, status: int, sequence: int, body: bytes = b"") -> bytes:
    return struct.pack(">IIII", 16 + len(body), command, status, sequence) + body


@dataclass
class Submitted:
    source: str
    source_ton: int
    source_npi: int
    destination: str
    dest_ton: int
    dest_npi: int
    esm_class: int
    data_coding: int
    registered_delivery: int
    udh: tuple[int, int, int] | None  # (reference, total, number) from IEI 0x00
    text: str  # this part's text, decoded as UCS-2
    message_id: str = ""


@dataclass
class Message:
    destination: str
    text: str
    parts: list[Submitted]


@dataclass
class Smsc:
    system_id: str = "shaobing"
    password: str = "smpp-pw1"  # SMPP 3.4: at most 8 characters
    receipts: bool = True
    host: str = "127.0.0.1"
    port: int = 0
    binds: list[tuple[int, str, str]] = field(default_factory=list)  # (command, system_id, password)
    parts: list[Submitted] = field(default_factory=list)
    enquire_links: int = 0
    connections: int = 0
    plan: deque[str] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._server = socket.create_server((self.host, self.port))
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._next_id = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._server.close()

    def messages(self) -> list[Message]:
        """Parts put back together by their concatenation header (single-part messages as they are)."""
        with self.lock:
            parts = list(self.parts)
        return reassemble(parts, Message)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _serve(self, conn: socket.socket) -> None:
        bound = False
        send_lock = threading.Lock()

        def send(data: bytes) -> None:
            with send_lock:
                conn.sendall(data)

        try:
            while not self._stop.is_set():
                length, command, _status, sequence = struct.unpack(">IIII", self._read(conn, 16))
                assert 16 <= length <= 65536, length
                body = self._read(conn, length - 16)
                if command in (BIND_TRANSMITTER, BIND_TRANSCEIVER):
                    system_id, at = _cstring(body, 0)
                    password, at = _cstring(body, at)
                    assert len(system_id) <= 15 and len(password) <= 8, "SMPP 3.4 field sizes"
                    _system_type, at = _cstring(body, at)
                    assert body[at] == 0x34, "interface_version must be 3.4"
                    with self.lock:
                        self.binds.append((command, system_id, password))
                    ok = (system_id, password) == (self.system_id, self.password)
                    send(_pdu(command | RESP, 0 if ok else ESME_RINVPASWD, sequence, b"stand-in\x00"))
                    bound = ok
                    if not ok:
                        return
                elif command == ENQUIRE_LINK:
                    with self.lock:
                        self.enquire_links += 1
                    send(_pdu(ENQUIRE_LINK | RESP, 0, sequence))
                elif command == UNBIND:
                    send(_pdu(UNBIND | RESP, 0, sequence))
                    return
                elif command == SUBMIT_SM:
                    assert bound, "submit_sm before a successful bind"
                    part = self._parse_submit(body)
                    with self.lock:
                        behaviour = self.plan.popleft() if self.plan else "ok"
                    if behaviour == "drop":
                        with self.lock:
                            self.parts.append(part)
                        return  # close without answering
                    if behaviour == "silent":
                        with self.lock:
                            self.parts.append(part)
                        continue
                    if behaviour.startswith("status:"):
                        send(_pdu(SUBMIT_SM | RESP, int(behaviour[7:], 16), sequence, b"\x00"))
                        continue
                    with self.lock:
                        self._next_id += 1
                        part.message_id = f"SMSC{self._next_id:06d}"
                        self.parts.append(part)
                    send(_pdu(SUBMIT_SM | RESP, 0, sequence, part.message_id.encode() + b"\x00"))
                    if self.receipts and part.registered_delivery & 1:
                        threading.Timer(0.05, lambda p=part: self._receipt(send, p)).start()
                elif command & RESP:
                    continue  # deliver_sm_resp, enquire_link_resp
                else:
                    send(_pdu(0x80000000, 0x00000003, sequence))  # generic_nack: invalid command id
        except (ConnectionError, OSError, AssertionError, struct.error):
            return
        finally:
            conn.close()

    @staticmethod
    def _parse_submit(body: bytes) -> Submitted:
        _service_type, at = _cstring(body, 0)
        source_ton, source_npi = body[at], body[at + 1]
        source, at = _cstring(body, at + 2)
        dest_ton, dest_npi = body[at], body[at + 1]
        destination, at = _cstring(body, at + 2)
        esm_class, _protocol_id, _priority = body[at], body[at + 1], body[at + 2]
        _schedule, at = _cstring(body, at + 3)
        _validity, at = _cstring(body, at)
        registered, _replace, coding, _default_id, length = body[at : at + 5]
        short = body[at + 5 : at + 5 + length]
        udh = None
        if esm_class & 0x40:
            header_length = short[0]
            header, short = short[1 : 1 + header_length], short[1 + header_length :]
            assert header[0] == 0x00 and header[1] == 3, "expected the 8-bit concatenation IE"
            udh = (header[2], header[3], header[4])
        assert coding == 0x08, f"expected UCS-2 (data_coding 8), got {coding}"
        return Submitted(
            source,
            source_ton,
            source_npi,
            destination,
            dest_ton,
            dest_npi,
            esm_class,
            coding,
            registered,
            udh,
            short.decode("utf-16-be"),
        )

    def _receipt(self, send: object, part: Submitted) -> None:
        now = time.strftime("%y%m%d%H%M")
        text = f"id:{part.message_id} sub:001 dlvrd:001 submit date:{now} done date:{now} stat:DELIVRD err:000 text:"
        body = (
            b"\x00"  # service_type
            + bytes([part.dest_ton, part.dest_npi])
            + part.destination.encode()
            + b"\x00"
            + bytes([part.source_ton, part.source_npi])
            + part.source.encode()
            + b"\x00"
            + bytes([0x04, 0, 0])
            + b"\x00"
            + b"\x00"
            + bytes([0, 0, 0, 0])
            + bytes([len(text)])
            + text.encode()
            + struct.pack(">HH", 0x001E, len(part.message_id) + 1)
            + part.message_id.encode()
            + b"\x00"
            + struct.pack(">HHB", 0x0427, 1, 2)  # message_state DELIVERED
        )
        try:
            send(_pdu(DELIVER_SM, 0, 0x7FFF0000 + int(part.message_id[4:]), body))  # type: ignore[operator]
        except OSError:
            pass
