"""A GSM modem on a pseudo-terminal, answering AT commands as a real one does (3GPP TS 27.005 / 27.007), with
PDUs decoded and encoded from 3GPP TS 23.040 here — independently of the library the relay uses.

It records every SMS-SUBMIT (destination, data coding, concatenation header, UCS-2 text), can deliver an
incoming SMS (+CMTI, then +CMGR with an SMS-DELIVER PDU), and can lose its signal, its network registration or
its SIM.
"""

from __future__ import annotations

import os
import re
import select
import threading
import tty
from dataclasses import dataclass, field

from tests.relay.concat import reassemble


def _swap_digits(semi_octets: str) -> str:
    out = "".join(semi_octets[i + 1] + semi_octets[i] for i in range(0, len(semi_octets), 2))
    return out.rstrip("F")


def _encode_number(number: str) -> tuple[int, int, str]:
    """(digit count, type of address, swapped semi-octets)."""
    international = number.startswith("+")
    digits = number.lstrip("+")
    padded = digits + ("F" if len(digits) % 2 else "")
    swapped = "".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2))
    return len(digits), 0x91 if international else 0x81, swapped


@dataclass
class Submitted:
    destination: str
    dcs: int
    udh: tuple[int, int, int] | None  # (reference, total, number)
    text: str
    status_report_requested: bool


@dataclass
class Message:
    destination: str
    text: str
    parts: list[Submitted]


def decode_submit(pdu_hex: str) -> Submitted:
    data = bytes.fromhex(pdu_hex)
    at = 1 + data[0]  # skip the SMSC address (length octet + address)
    first = data[at]
    assert first & 0x03 == 0x01, "not an SMS-SUBMIT"
    vpf = (first >> 3) & 0x03
    udhi = bool(first & 0x40)
    srr = bool(first & 0x20)
    at += 2  # first octet, message reference
    digits, _toa = data[at], data[at + 1]
    octets = (digits + 1) // 2
    number = _swap_digits(data[at + 2 : at + 2 + octets].hex().upper())
    if _toa == 0x91:
        number = "+" + number
    at += 2 + octets
    _pid, dcs = data[at], data[at + 1]
    at += 2
    at += {0: 0, 2: 1, 1: 7, 3: 7}[vpf]
    udl = data[at]
    ud = data[at + 1 : at + 1 + udl]
    udh = None
    if udhi:
        header_len = ud[0]
        header = ud[1 : 1 + header_len]
        ud = ud[1 + header_len :]
        if header[0] == 0x00:
            udh = (header[2], header[3], header[4])
        elif header[0] == 0x08:
            udh = ((header[2] << 8) | header[3], header[4], header[5])
    assert dcs & 0x0C == 0x08, f"expected UCS-2 (DCS 0x08), got {dcs:#x}"
    return Submitted(number, dcs, udh, ud.decode("utf-16-be"), srr)


def encode_deliver(sender: str, text: str) -> str:
    """An SMS-DELIVER PDU (UCS-2) with the SMSC address, as +CMGR shows it."""
    smsc_digits, smsc_toa, smsc = _encode_number("+8613800100500")
    smsc_part = f"{(len(smsc) // 2) + 1:02X}{smsc_toa:02X}{smsc}"
    digits, toa, oa = _encode_number(sender)
    body = text.encode("utf-16-be")
    scts = "62212021000000"  # 2026-12-02 12:00:00, timezone 0, semi-octets swapped
    return (
        smsc_part + "04" + f"{digits:02X}{toa:02X}{oa}" + "0008" + scts + f"{len(body):02X}" + body.hex().upper()
    ).upper()


def encode_status_report(reference: int, recipient: str, status: int) -> str:
    """An SMS-STATUS-REPORT PDU (23.040 9.2.2.3): MTI 10, TP-MR, TP-RA, TP-SCTS, TP-DT, TP-ST."""
    _, smsc_toa, smsc = _encode_number("+8613800100500")
    digits, toa, ra = _encode_number(recipient)
    stamp = "62212021000000"
    return (
        f"{(len(smsc) // 2) + 1:02X}{smsc_toa:02X}{smsc}"
        + "06"
        + f"{reference:02X}"
        + f"{digits:02X}{toa:02X}{ra}"
        + stamp
        + stamp
        + f"{status:02X}"
    ).upper()


@dataclass
class ModemEmulator:
    rssi: int = 20
    registration: int = 1  # +CREG stat: 1 home, 2 searching, 5 roaming
    sim: bool = True
    commands: list[str] = field(default_factory=list)
    parts: list[Submitted] = field(default_factory=list)
    inbox: dict[int, str] = field(default_factory=dict)
    # Status reports for submits that ask for one: TP-ST 0x00 delivered, 0x41 failed (incompatible destination);
    # None sends none.
    report_status: int | None = 0x00
    reports: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._mr = 0
        self._memory = "SM"
        # Unsolicited result codes wait while a command is being answered (V.250 / 27.007: the TA does not
        # interleave them with a response), then go out after its final result code.
        self._busy = False
        self._held: list[str] = []
        threading.Thread(target=self._run, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def messages(self) -> list[Message]:
        """Parts put back together by their concatenation header (single-part messages as they are)."""
        with self._lock:
            parts = list(self.parts)
        return reassemble(parts, Message)

    def deliver(self, sender: str, text: str) -> None:
        """An SMS arrives: stored in SIM memory, announced with +CMTI (27.005 3.4.1)."""
        with self._lock:
            index = max(self.inbox, default=0) + 1
            self.inbox[index] = encode_deliver(sender, text)
        self._urc(f'\r\n+CMTI: "SM",{index}\r\n')

    def _urc(self, text: str) -> None:
        """Queued; the reader thread sends it when no command is being answered or waiting to be read."""
        with self._lock:
            self._held.append(text)

    def _idle(self) -> None:
        with self._lock:
            self._busy = False

    def _flush(self) -> None:
        try:
            waiting = bool(select.select([self._master], [], [], 0)[0])
        except OSError:
            return
        with self._lock:
            if self._busy or waiting or not self._held:
                return
            held, self._held = self._held, []
        for text in held:
            self._write(text)

    # -- the line discipline --------------------------------------------------------------------

    def _write(self, text: str) -> None:
        try:
            os.write(self._master, text.encode())
        except OSError:
            pass

    def _run(self) -> None:
        buffer = b""
        pending_pdu: int | None = None
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.05)
                if not ready:
                    self._flush()
                    continue
                chunk = os.read(self._master, 4096)
            except OSError:
                return
            buffer += chunk
            while True:
                if pending_pdu is not None:
                    if b"\x1a" not in buffer:
                        break
                    pdu, buffer = buffer.split(b"\x1a", 1)
                    self._submit(pdu.decode().strip(), pending_pdu)
                    pending_pdu = None
                    self._idle()
                    continue
                if b"\r" not in buffer:
                    break
                line, buffer = buffer.split(b"\r", 1)
                command = line.decode(errors="replace").strip()
                if command:
                    with self._lock:
                        self._busy = True
                    pending_pdu = self._command(command)
                    if pending_pdu is None:
                        self._idle()

    def _ok(self, *lines: str) -> None:
        self._write("".join(f"\r\n{line}\r\n" for line in lines) + "\r\nOK\r\n")

    def _command(self, command: str) -> int | None:
        with self._lock:
            self.commands.append(command)
        upper = command.upper()
        if upper.startswith("AT+CMGS="):
            if not (self.sim and self.registration in (1, 5)):
                self._write("\r\n+CMS ERROR: 331\r\n")  # no network service
                return None
            self._write("\r\n> ")
            return int(upper.split("=")[1])
        if upper == "AT+CPIN?":
            self._ok("+CPIN: READY") if self.sim else self._write("\r\n+CME ERROR: 10\r\n")  # SIM not inserted
        elif upper == "AT+CSQ":
            self._ok(f"+CSQ: {self.rssi},99")
        elif upper == "AT+CREG?":
            self._ok(f"+CREG: 0,{self.registration}")
        elif upper == "AT+COPS?":
            self._ok('+COPS: 0,0,"CHINA MOBILE",7' if self.registration in (1, 5) else "+COPS: 0")
        elif upper == "AT+CFUN?":
            self._ok("+CFUN: 1")
        elif upper == "AT+CGMI":
            self._ok("Quectel")
        elif upper == "AT+CGMM":
            self._ok("EC20F")
        elif upper == "AT+CSCS=?":
            self._ok('+CSCS: ("GSM","IRA","UCS2")')  # TE character sets (27.007 5.5)
        elif upper == "AT+CSCS?":
            self._ok('+CSCS: "GSM"')
        elif upper == "AT+CSCA?":
            self._ok('+CSCA: "+8613800100500",145')
        elif upper == "AT+CPMS=?":
            self._ok('+CPMS: ("SM","ME"),("SM","ME"),("SM","ME")')
        elif upper.startswith("AT+CPMS="):
            self._memory = upper.split("=")[1].split(",")[0].strip('"')
            self._ok(f"+CPMS: {len(self.inbox)},50,{len(self.inbox)},50,{len(self.inbox)},50")
        elif upper.startswith("AT+CMGR="):
            index = int(upper.split("=")[1])
            with self._lock:
                pdu = (self.reports if self._memory == "SR" else self.inbox).get(index)
            if pdu is None:
                self._write("\r\n+CMS ERROR: 321\r\n")  # invalid memory index
            else:
                tpdu_len = len(pdu) // 2 - (int(pdu[:2], 16) + 1)
                self._ok(f"+CMGR: 0,,{tpdu_len}", pdu)
        elif upper.startswith("AT+CMGD="):
            with self._lock:
                (self.reports if self._memory == "SR" else self.inbox).pop(int(upper.split("=")[1].split(",")[0]), None)
            self._ok()
        elif upper in ("AT+CLAC", "AT+WIND?", "AT+ZPAS?") or re.match(r"^AT\^", upper):
            self._write("\r\nERROR\r\n")  # not this modem's commands
        else:
            self._ok()  # AT, ATZ, ATE0, AT+CMEE=1, AT+CMGF=0, AT+CNMI=..., AT+CSMP=..., AT+CLIP=1, ...
        return None

    def _submit(self, pdu_hex: str, tpdu_length: int) -> None:
        data = bytes.fromhex(pdu_hex)
        assert len(data) - 1 - data[0] == tpdu_length, "AT+CMGS length is the TPDU without the SMSC address"
        part = decode_submit(pdu_hex)
        with self._lock:
            self.parts.append(part)
            self._mr = (self._mr + 1) % 256
            reference = self._mr
        self._ok(f"+CMGS: {reference}")
        if part.status_report_requested and self.report_status is not None:
            status = self.report_status
            threading.Timer(0.3, lambda: self._status_report(reference, part.destination, status)).start()

    def _status_report(self, reference: int, recipient: str, status: int) -> None:
        """Stored in SR memory and announced with +CDSI (27.005 3.4.1, CNMI <ds>=2)."""
        with self._lock:
            index = max(self.reports, default=0) + 1
            self.reports[index] = encode_status_report(reference, recipient, status)
        self._urc(f'\r\n+CDSI: "SR",{index}\r\n')
