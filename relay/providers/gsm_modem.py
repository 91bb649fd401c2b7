"""A GSM/4G modem ("短信猫") on a serial port — SMS with no network at all but the mobile one.

python-gsmmodem-new (over pyserial) speaks the AT commands: PDU mode, UCS-2 for Chinese, concatenated PDUs for
long texts, incoming messages via +CMTI. One session thread owns the port: it connects (SIM PIN from a secret),
sends one message at a time, polls the modem's health (signal, SIM, network registration) for the relay's
metrics, and reconnects with back-off when the port or the modem goes away.

Outcomes follow the SMS rules: not connected -> RETRY (nothing left the relay); the modem refused a one-part
message -> RETRY; a send that timed out, or failed after the first of several parts -> UNKNOWN (never resent
blindly). A reply from an on-call person's phone ("1", "确认", "收到", "ok") acknowledges that person's latest
open incident, like the signed link (the relay wires `on_reply`). Status reports (on by default,
`delivery_reports: false` to turn them off) tell the relay when a message did not reach the handset: it says so
on the fallback channel (`on_report`).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import queue
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from relay.providers.base import Outbound, Outcome, Provider, SendResult

__all__ = ["GsmModemProvider", "ModemHealth", "ACK_WORDS"]

log = logging.getLogger("relay.modem")

ACK_WORDS = frozenset({"1", "确认", "收到", "ok", "ack"})


@dataclass
class ModemHealth:
    up: bool = False
    sim_ready: bool | None = None
    registered: bool | None = None
    signal_dbm: float | None = None  # from +CSQ: -113 + 2 * rssi; None when unknown (rssi 99)
    operator: str = ""
    checked_at: float = 0.0


@dataclass
class _Job:
    phone: str
    text: str
    delivery_id: str = ""
    future: concurrent.futures.Future[SendResult] = field(default_factory=concurrent.futures.Future)


def _gsm() -> Any:
    # The library's older modules carry regex strings that newer Pythons warn about; they are its own business.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import gsmmodem.exceptions
        import gsmmodem.modem
        import gsmmodem.pdu
    return gsmmodem


class ModemSession(threading.Thread):
    def __init__(self, options: dict[str, str], pin: str, timeout: float) -> None:
        super().__init__(name=f"modem-{options.get('port')}", daemon=True)
        self.options, self.pin, self.timeout = options, pin, timeout
        self.jobs: queue.Queue[_Job] = queue.Queue(maxsize=1000)
        self.stopping = threading.Event()
        self.health = ModemHealth()
        self.modem: Any = None
        self.on_reply: Callable[[str, str], None] | None = None
        # A status report arrived: (delivery id, delivered?, TP-ST status octet).
        self.on_report: Callable[[str, bool, int], None] | None = None
        self.reports = str(options.get("delivery_reports", "true")).lower() != "false"
        # +CMGS message reference -> delivery id, for status reports (bounded: the newest 1,000 parts).
        self._sent: collections.OrderedDict[int, str] = collections.OrderedDict()

    def _connect(self) -> None:
        gsm = _gsm()
        modem = gsm.modem.GsmModem(
            self.options["port"],
            int(self.options.get("baudrate") or 115200),
            smsReceivedCallbackFunc=self._received,
            smsStatusReportCallback=self._report,
            requestDelivery=self.reports,
        )
        modem.smsTextMode = False
        try:
            modem.connect(pin=self.pin or None, waitingForModemToStartInSeconds=2)
            modem.smsEncoding = "UCS2"  # AT+CSCS: the TE character set for Chinese
        except Exception:
            try:
                modem.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
            raise
        self.modem = modem
        log.info("modem on %s connected", self.options["port"])

    def _drop(self) -> None:
        modem, self.modem = self.modem, None
        self.health = ModemHealth(checked_at=time.time())
        if modem is not None:
            try:
                modem.close()
            except Exception:  # noqa: BLE001
                pass

    def _received(self, sms: Any) -> None:
        number = str(getattr(sms, "number", "") or "")
        text = str(getattr(sms, "text", "") or "")
        if self.on_reply is not None and number:
            try:
                self.on_reply(number, text)
            except Exception:  # noqa: BLE001 - a reply must never take the session down
                log.exception("handling a reply from the modem failed")

    def _report(self, report: Any) -> None:
        """SMS-STATUS-REPORT (23.040 9.2.3.15): TP-ST 0 is delivered; 0x40 and above failed for good;
        0x20-0x3F are still being tried (a later report follows)."""
        try:
            reference, status = int(report.reference), int(report.deliveryStatus)
        except (AttributeError, TypeError, ValueError):
            return
        delivery_id = self._sent.get(reference)
        if delivery_id is None or 0x20 <= status < 0x40 or self.on_report is None:
            return
        try:
            self.on_report(delivery_id, status == 0, status)
        except Exception:  # noqa: BLE001 - a report must never take the session down
            log.exception("handling a status report from the modem failed")

    def _check(self) -> None:
        gsm = _gsm()
        health = ModemHealth(up=True, checked_at=time.time())
        try:
            rssi = int(self.modem.signalStrength)
            health.signal_dbm = None if rssi in (-1, 99) else -113.0 + 2 * rssi
        except gsm.exceptions.CommandError:
            pass
        try:
            cpin = self.modem.write("AT+CPIN?")
            health.sim_ready = any("READY" in line for line in cpin)
        except gsm.exceptions.CommandError:
            health.sim_ready = False
        try:
            creg = next((line for line in self.modem.write("AT+CREG?") if line.startswith("+CREG:")), "")
            stat = creg.split(",")[-1].strip() if creg else ""
            health.registered = stat in ("1", "5")  # home network or roaming
        except gsm.exceptions.CommandError:
            health.registered = False
        try:
            health.operator = str(self.modem.networkName or "")
        except gsm.exceptions.CommandError:
            pass
        self.health = health

    def run(self) -> None:
        backoff = 2.0
        interval = float(self.options.get("health_interval_seconds") or 60)
        while not self.stopping.is_set():
            if self.modem is None:
                try:
                    self._connect()
                    self._check()
                    backoff = 2.0
                except Exception as exc:  # noqa: BLE001 - any failure to open or initialise: wait, try again
                    log.warning(
                        "modem on %s unavailable (%s: %s); retrying in %.0f s",
                        self.options["port"],
                        type(exc).__name__,
                        exc,
                        backoff,
                    )
                    self.health = ModemHealth(checked_at=time.time())
                    self._fail_waiting("modem not connected")
                    self.stopping.wait(backoff)
                    backoff = min(backoff * 2, 120.0)
                    continue
            try:
                job = self.jobs.get(timeout=0.5)
            except queue.Empty:
                job = None
            try:
                if job is not None:
                    job.future.set_result(self._send(job))
                if time.time() - self.health.checked_at >= interval:
                    self._check()
            except Exception as exc:  # noqa: BLE001 - the port went away: reconnect
                log.warning("modem on %s lost (%s); reconnecting", self.options["port"], type(exc).__name__)
                if job is not None and not job.future.done():
                    job.future.set_result(
                        SendResult(Outcome.UNKNOWN, f"modem lost during the send ({type(exc).__name__})")
                    )
                self._drop()
        self._drop()

    def _fail_waiting(self, why: str) -> None:
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return
            job.future.set_result(SendResult(Outcome.RETRY, why))

    def _send(self, job: _Job) -> SendResult:
        """Part by part, so the outcome is exact: refused before the first part left -> RETRY; any later
        failure -> UNKNOWN (the person has part of it)."""
        gsm = _gsm()
        if self.health.registered is False or self.health.sim_ready is False:
            return SendResult(Outcome.RETRY, "modem has no network or no SIM")
        self._reference = (getattr(self, "_reference", 0) + 1) % 256
        pdus = gsm.pdu.encodeSmsSubmitPdu(
            job.phone, job.text, reference=self._reference, requestStatusReport=self.reports
        )
        references: list[str] = []
        for number, pdu in enumerate(pdus, start=1):
            try:
                self.modem.write(f"AT+CMGS={pdu.tpduLength}", timeout=5, expectedResponseTermSeq="> ")
                answer = self.modem.write(str(pdu), timeout=35, writeTerm="\x1a")
            except gsm.exceptions.TimeoutException:
                return SendResult(Outcome.UNKNOWN, f"the modem did not answer part {number}/{len(pdus)} in time")
            except gsm.exceptions.CommandError as exc:
                code = getattr(exc, "code", "")
                if number == 1:
                    return SendResult(Outcome.RETRY, f"modem refused the message (error {code})")
                return SendResult(Outcome.UNKNOWN, f"part {number}/{len(pdus)} refused (error {code})")
            line = next((a for a in answer if a.startswith("+CMGS:")), "")
            if not line:
                return SendResult(Outcome.RETRY if number == 1 else Outcome.UNKNOWN, "no +CMGS answer")
            references.append(line[6:].strip())
            if references[-1].isdigit():
                self._sent[int(references[-1])] = job.delivery_id
                while len(self._sent) > 1000:
                    self._sent.popitem(last=False)
        return SendResult(Outcome.SUCCESS, f"sent in {len(pdus)} part(s)", ref=",".join(references))


class GsmModemProvider(Provider):
    sms = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session: ModemSession | None = None
        self.on_reply: Callable[[str, str], None] | None = None
        self.on_report: Callable[[str, bool, int], None] | None = None
        self._lock = threading.Lock()

    def start(self) -> ModemSession:
        with self._lock:
            if self.session is None or not self.session.is_alive():
                options = {k: str(v) for k, v in self.channel.options.items()}
                self.session = ModemSession(options, self.secret("pin"), 40.0)
                self.session.on_reply = self.on_reply
                self.session.on_report = self.on_report
                self.session.start()
            return self.session

    @property
    def health(self) -> ModemHealth:
        return self.session.health if self.session is not None else ModemHealth()

    async def send(self, msg: Outbound) -> SendResult:
        session = self.start()
        if session.modem is None:
            return SendResult(Outcome.RETRY, "modem not connected")
        job = _Job(msg.phone, msg.text, msg.delivery_id)
        try:
            session.jobs.put_nowait(job)
        except queue.Full:
            return SendResult(Outcome.RETRY, "modem queue full")
        try:
            return await asyncio.wait_for(asyncio.wrap_future(job.future), timeout=120)
        except asyncio.TimeoutError:
            return SendResult(Outcome.UNKNOWN, "no answer from the modem session")

    async def close(self) -> None:
        if self.session is not None:
            self.session.stopping.set()
            await asyncio.to_thread(self.session.join, 5.0)
