"""SMPP 3.4 to an SMS centre or a government SMS platform — SMS without the internet.

One session thread per channel (smpplib does blocking socket I/O): it binds (transceiver by default, so
delivery receipts arrive on the same connection; or transmitter), keeps the link alive with enquire_link,
and reconnects with back-off. Each message is UCS-2 (data_coding 8) and, when longer than one SMS, split into
concatenated parts with a UDH (IEI 0x00, one reference per message), each submitted with a delivery receipt
requested.

Outcomes follow the relay's SMS rules: nothing was written yet (not bound, connection refused) -> RETRY; the
SMSC refused (submit_sm_resp status) -> PERMANENT, or RATE_LIMITED for throttling/queue full; a submit that was
written but never answered (timeout, connection dropped) -> UNKNOWN — never sent again blindly. SMPP has no
lookup by our own id, so an unknown send goes to operator review (and the fallback channel says so).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from relay.providers.base import Outbound, Outcome, Provider, SendResult

__all__ = ["Smpp", "SmppSession"]

log = logging.getLogger("relay.smpp")

THROTTLED = {0x58, 0x14}  # ESME_RTHROTTLED, ESME_RMSGQFUL: nothing delivered, try later
RECEIPT_STATE = re.compile(r"\bstat:(\w+)")
RECEIPT_ID = re.compile(r"\bid:(\S+)")


@dataclass
class _Job:
    destination: str
    text: str
    future: concurrent.futures.Future[SendResult] = field(default_factory=concurrent.futures.Future)


class SmppSession(threading.Thread):
    """Owns the connection; sends jobs one at a time, each part waiting for its submit_sm_resp."""

    def __init__(self, options: dict[str, str], password: str, timeout: float) -> None:
        super().__init__(name=f"smpp-{options.get('host')}", daemon=True)
        self.options = options
        self.password = password
        self.timeout = timeout
        self.jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=1000)
        self.bound = threading.Event()
        self.stopping = threading.Event()
        self.receipts: dict[str, str] = {}  # SMSC message id -> final state (DELIVRD, UNDELIV, ...)
        self.client: Any = None
        self._answers: dict[int, Any] = {}

    # -- connection ---------------------------------------------------------------------------------

    def _connect(self) -> None:
        import smpplib.client

        client = smpplib.client.Client(
            self.options["host"], int(self.options.get("port") or 2775), timeout=1.0, allow_unknown_opt_params=True
        )
        client.set_message_sent_handler(lambda pdu, **_: self._answers.__setitem__(pdu.sequence, pdu))
        client.set_message_received_handler(self._received)
        client.set_error_pdu_handler(lambda pdu: self._answers.__setitem__(pdu.sequence, pdu))
        client.connect()
        bind = client.bind_transmitter if self.options.get("bind") == "transmitter" else client.bind_transceiver
        try:
            bind(
                system_id=self.options["system_id"],
                password=self.password,
                system_type=self.options.get("system_type", ""),
            )
        except Exception:
            client.disconnect()
            raise
        self.client = client
        self.bound.set()
        log.info("SMPP bound to %s:%s as %s", self.options["host"], self.options.get("port"), self.options["system_id"])

    def _drop(self) -> None:
        self.bound.clear()
        client, self.client = self.client, None
        if client is not None:
            try:
                client.disconnect()
            except Exception:  # noqa: BLE001 - already broken
                pass

    def _received(self, pdu: Any, **_: Any) -> None:
        """deliver_sm: a delivery receipt (esm_class bit 0x04) names the SMSC message id and its final state."""
        raw = getattr(pdu, "short_message", b"") or b""
        text = raw.decode("latin-1", errors="replace") if isinstance(raw, bytes) else str(raw)
        receipted = getattr(pdu, "receipted_message_id", None)
        message_id = receipted.decode() if isinstance(receipted, bytes) else receipted
        found = RECEIPT_ID.search(text)
        message_id = message_id or (found.group(1) if found else None)
        state = RECEIPT_STATE.search(text)
        if message_id and state and len(self.receipts) < 100_000:
            self.receipts[message_id] = state.group(1)

    # -- the loop ------------------------------------------------------------------------------------

    def run(self) -> None:
        backoff = 1.0
        keepalive = float(self.options.get("enquire_link_seconds") or 30)
        while not self.stopping.is_set():
            if self.client is None:
                try:
                    self._connect()
                    backoff = 1.0
                except Exception as exc:  # noqa: BLE001 - any bind failure: wait and try again
                    log.warning(
                        "SMPP %s:%s: cannot bind (%s); retrying in %.0f s",
                        self.options["host"],
                        self.options.get("port"),
                        exc,
                        backoff,
                    )
                    self._fail_waiting("not bound to the SMSC")
                    self.stopping.wait(backoff)
                    backoff = min(backoff * 2, 60.0)
                    continue
            last = time.monotonic()
            try:
                while not self.stopping.is_set():
                    try:
                        job = self.jobs.get(timeout=0.2)
                    except queue.Empty:
                        job = None
                    if job is None:
                        self._pump()
                        if time.monotonic() - last >= keepalive:
                            import smpplib.smpp

                            self.client.send_pdu(smpplib.smpp.make_pdu("enquire_link", client=self.client))
                            last = time.monotonic()
                        continue
                    job.future.set_result(self._submit(job))
                    last = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - connection lost: reconnect
                log.warning("SMPP connection lost (%s); reconnecting", type(exc).__name__)
                self._drop()
        self._drop()

    def _pump(self) -> None:
        """Read whatever the SMSC sent (receipts, enquire_link, responses) without blocking long."""
        import select

        sock = self.client._socket
        while sock is not None and select.select([sock], [], [], 0)[0]:
            self.client.read_once(auto_send_enquire_link=False)

    def _fail_waiting(self, why: str) -> None:
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job.future.set_result(SendResult(Outcome.RETRY, why))

    def _submit(self, job: _Job) -> SendResult:
        import smpplib.consts
        import smpplib.gsm

        parts, coding, esm_class = smpplib.gsm.make_parts(job.text, encoding=smpplib.consts.SMPP_ENCODING_ISO10646)
        try:
            return self._submit_parts(job, parts, coding, esm_class)
        except Exception as exc:  # noqa: BLE001 - a later part failed to go out: the first ones did
            self._drop()
            return SendResult(Outcome.UNKNOWN, f"connection lost during a multi-part send ({type(exc).__name__})")

    def _submit_parts(self, job: _Job, parts: list[bytes], coding: int, esm_class: int) -> SendResult:
        ids: list[str] = []
        for number, part in enumerate(parts, start=1):
            try:
                pdu = self.client.send_message(
                    source_addr_ton=int(self.options.get("source_addr_ton") or 0),
                    source_addr_npi=int(self.options.get("source_addr_npi") or 0),
                    source_addr=self.options["source_addr"],
                    dest_addr_ton=int(self.options.get("dest_addr_ton") or 0),
                    dest_addr_npi=int(self.options.get("dest_addr_npi") or 1),
                    destination_addr=job.destination,
                    short_message=part,
                    data_coding=coding,
                    esm_class=esm_class,
                    registered_delivery=1,
                )
            except Exception as exc:
                if number == 1:
                    # Nothing of this message reached the SMSC.
                    self._drop()
                    return SendResult(Outcome.RETRY, f"connection lost before sending ({type(exc).__name__})")
                raise
            answer = self._await(pdu.sequence)
            if answer is None:
                self._drop()
                return SendResult(Outcome.UNKNOWN, f"no submit_sm_resp for part {number}/{len(parts)}")
            status = int(getattr(answer, "status", 0) or 0)
            if status:
                kind = Outcome.RATE_LIMITED if status in THROTTLED and number == 1 else Outcome.PERMANENT
                return SendResult(kind, f"submit_sm_resp status 0x{status:02X} on part {number}/{len(parts)}")
            message_id = getattr(answer, "message_id", b"")
            ids.append(message_id.decode() if isinstance(message_id, bytes) else str(message_id))
        return SendResult(Outcome.SUCCESS, f"{len(parts)} part(s) accepted", ref=",".join(ids))

    def _await(self, sequence: int) -> Any:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if sequence in self._answers:
                return self._answers.pop(sequence)
            try:
                self.client.read_once(auto_send_enquire_link=False)
            except socket.timeout:
                continue
            except Exception:  # noqa: BLE001 - the connection broke while we waited: outcome unknown
                return None
        return self._answers.pop(sequence, None)


class Smpp(Provider):
    sms = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session: SmppSession | None = None
        self._lock = threading.Lock()

    def _session(self) -> SmppSession:
        with self._lock:
            if self.session is None or not self.session.is_alive():
                options = {k: str(v) for k, v in self.channel.options.items()}
                timeout = float(str(self.channel.options.get("response_timeout_seconds") or 10))
                self.session = SmppSession(options, self.secret("password"), timeout)
                self.session.start()
            return self.session

    async def send(self, msg: Outbound) -> SendResult:
        session = self._session()
        if not session.bound.wait(0) and not await asyncio.to_thread(session.bound.wait, 5.0):
            return SendResult(Outcome.RETRY, "not bound to the SMSC")
        job = _Job(msg.phone, msg.text)
        try:
            session.jobs.put_nowait(job)
        except queue.Full:
            return SendResult(Outcome.RETRY, "SMPP queue full")
        try:
            return await asyncio.wait_for(asyncio.wrap_future(job.future), timeout=session.timeout * 10)
        except asyncio.TimeoutError:
            return SendResult(Outcome.UNKNOWN, "no answer from the SMPP session")

    async def close(self) -> None:
        if self.session is not None:
            self.session.stopping.set()
            await asyncio.to_thread(self.session.join, 5.0)
