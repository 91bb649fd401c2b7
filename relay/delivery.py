"""The delivery worker: drains the outbox per destination within its budget, retries with backoff
and jitter, folds a backlog into digests, reconciles SMS sends of unknown outcome, hands dead messages
and sends that need an operator to the channel's fallback, and runs the heartbeat watch.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from relay import oncall
from relay.ack import acknowledge_by_reply
from relay.config.model import VOICE_TYPES, ChannelConfig, Config
from relay.escalation import escalate_due
from relay.heartbeat import HeartbeatWatch
from relay.ingest import dest_key, group_key, plan_channel
from relay.metrics import Metrics
from relay.providers import Outbound, Outcome, Provider, Reconcile, SendResult, build_provider
from relay.providers.gsm_modem import GsmModemProvider
from relay.providers.tencent_voice import TencentVoice
from relay.ratelimit import WindowLimiter
from relay.redact import mask_phone
from relay.store import NewMessage, Row, Store, StoreError
from relay.templates import Renderer, sanitize_sms
from relay.voice_callbacks import lookup as lookup_call_result

__all__ = ["Deliverer", "backoff_delay"]

log = logging.getLogger("relay.delivery")
MAX_FALLBACK_DEPTH = 3
PRUNE_EVERY = 3600.0
KEEP_SECONDS = 7 * 86400.0


def backoff_delay(attempts: int, initial: float, maximum: float, jitter: float, rnd: float) -> float:
    """Exponential backoff with +/- jitter, so a fleet of retries does not arrive in lockstep."""
    base = min(initial * float(2 ** min(max(attempts - 1, 0), 40)), maximum)
    return max(base * (1.0 + jitter * (2.0 * rnd - 1.0)), 0.0)


class Deliverer:
    def __init__(
        self,
        config: Config,
        store: Store,
        renderer: Renderer,
        metrics: Metrics,
        client: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.store = store
        self.renderer = renderer
        self.metrics = metrics
        self.clock = clock
        self.rng = rng
        self.zone = ZoneInfo(config.timezone)
        self.providers: dict[str, Provider] = {
            name: build_provider(channel, client, renderer) for name, channel in config.channels.items()
        }
        self.limiter = WindowLimiter()
        for channel in config.channels.values():
            for recipient in channel.all_destinations():
                self.limiter.configure(dest_key(channel.name, recipient), channel.rate_limits)
        self._wake = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._runner: asyncio.Task[None] | None = None
        self._last_prune = 0.0
        self._last_second = 0.0
        self._stopping = False
        self.heartbeats = HeartbeatWatch(config, store, clock) if config.heartbeat is not None else None
        self.escalates = any(r.escalation is not None for r in config.routes.values())

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        now = self.clock()
        uncertain = {name for name, ch in self.config.channels.items() if ch.is_sms}
        retried, reconciled = await asyncio.to_thread(
            self.store.recover_inflight, uncertain, now, now + self.config.delivery.reconcile_delay_seconds
        )
        if retried or reconciled:
            log.warning("recovered in-flight sends after restart: %d retried, %d to reconcile", retried, reconciled)
        self.limiter.seed(await asyncio.to_thread(self.store.recent_sends, now - 86400.0))
        if self.heartbeats is not None:
            await asyncio.to_thread(self.heartbeats.start, now)
        for name, provider in self.providers.items():
            if isinstance(provider, TencentVoice):
                provider.results = functools.partial(lookup_call_result, self.store)
            if isinstance(provider, GsmModemProvider):
                provider.on_reply = functools.partial(self._reply, name)
                provider.on_report = functools.partial(self._report, name, asyncio.get_running_loop())
                provider.start()  # health from the start, not from the first alert
        self._runner = asyncio.create_task(self._run())

    def modem_health(self) -> dict[str, Any]:
        return {n: p.health for n, p in self.providers.items() if isinstance(p, GsmModemProvider)}

    def _report(
        self, channel: str, loop: asyncio.AbstractEventLoop, delivery_id: str, delivered: bool, status: int
    ) -> None:
        """A modem's status report (its session thread): count it; a failure is said on the fallback channel."""
        self.metrics.inc(
            "shaobing_relay_modem_reports_total", channel=channel, result="delivered" if delivered else "failed"
        )
        if delivered:
            return
        row = self.store.find_delivery(delivery_id)
        config = self.config.channels.get(channel)
        if row is None or config is None:
            return
        who = config.person(row.recipient)
        note = f"短信未送达（{channel}，{who.name if who else '-'}：状态报告 0x{status:02X}），改由本通道发送"
        log.warning("message %d on %s not delivered to the handset (TP-ST 0x%02X)", row.id, channel, status)
        asyncio.run_coroutine_threadsafe(self._to_fallback(row, config, note), loop)

    def _reply(self, channel: str, phone: str, text: str) -> None:
        """An SMS arrived at a modem (its session thread): an acknowledgement from an on-call person?"""
        result = acknowledge_by_reply(self.config, self.store, self.metrics, channel, phone, text, self.clock())
        log.info("reply on %s from %s: %s", channel, mask_phone(phone), result)

    async def stop(self) -> None:
        # A flag as well as cancel(): on Python < 3.12 wait_for() can swallow a cancellation that
        # races with the wake event, and the loop must still end.
        self._stopping = True
        self._wake.set()
        tasks = [t for t in [self._runner, *self._tasks.values()] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(p.close() for p in self.providers.values()), return_exceptions=True)

    @property
    def alive(self) -> bool:
        return self._runner is not None and not self._runner.done()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        poll = self.config.delivery.poll_interval_seconds
        while not self._stopping:
            self._wake.clear()
            try:
                await self._tick()
                next_due = await asyncio.to_thread(self.store.next_due_at)
            except StoreError as exc:
                self.metrics.inc("shaobing_relay_store_errors_total")
                log.error("store error in delivery loop: %s", exc)
                next_due = None
            now = self.clock()
            delay = poll if next_due is None else min(max(next_due - now, 0.01), poll)
            if self._stopping:
                break
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass

    async def _tick(self) -> None:
        now = self.clock()
        # The heartbeat watch and the end of quiet hours need a look once a second, no more: this tick also runs
        # on every accepted webhook, and each look is a trip to a worker thread and the database.
        if now - self._last_second >= 1.0:
            self._last_second = now
            if self.heartbeats is not None and await asyncio.to_thread(self.heartbeats.check, now):
                now = self.clock()
            await asyncio.to_thread(self.store.release_quiet, now)
            if self.escalates:
                for route, level in await asyncio.to_thread(escalate_due, self.config, self.store, now):
                    self.metrics.inc(
                        "shaobing_relay_escalations_total", route=route, level=str(level) if level else "exhausted"
                    )
        self._tasks = {k: t for k, t in self._tasks.items() if not t.done()}
        slots = self.config.delivery.concurrency - len(self._tasks)
        for dest, channel in await asyncio.to_thread(self.store.due_destinations, now):
            if slots <= 0 or self._stopping:
                break
            if dest not in self._tasks:
                self._tasks[dest] = asyncio.create_task(self._guard(self._drain(dest, channel)))
                slots -= 1
        for row in await asyncio.to_thread(self.store.unknown_due, now):
            key = f"reconcile:{row.id}"
            if slots > 0 and key not in self._tasks and row.dest not in self._tasks:
                self._tasks[key] = asyncio.create_task(self._guard(self._reconcile(row)))
                slots -= 1
        if now - self._last_prune > PRUNE_EVERY:
            self._last_prune = now
            await asyncio.to_thread(self.store.prune, now, KEEP_SECONDS)

    async def _guard(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except StoreError as exc:
            self.metrics.inc("shaobing_relay_store_errors_total")
            log.error("store error during delivery: %s", exc)
        except Exception:
            log.exception("unexpected error during delivery")
        finally:
            self.wake()

    # -- sending ------------------------------------------------------------------------------------

    async def _drain(self, dest: str, channel_name: str) -> None:
        channel = self.config.channels.get(channel_name)
        now = self.clock()
        if channel is None:
            for row in await asyncio.to_thread(self.store.due_rows, dest, now):
                await asyncio.to_thread(self.store.dead, row.id, now, "channel no longer configured")
            return
        if not self.limiter.knows(dest):
            self.limiter.configure(dest, channel.rate_limits)
        available = self.limiter.available(dest, now)
        if available > 0:
            # Load only what this budget can carry; a backlog of thousands stays in the database.
            limit = available * self.config.delivery.digest_max_items
            rows = await asyncio.to_thread(self.store.due_rows, dest, now, limit)
            for row in await self._plan(rows, available, channel, now):
                if await self._send(row, channel) is Outcome.RATE_LIMITED:
                    break  # the provider said "too fast": every further request now would be refused too
        later = self.clock()
        await asyncio.to_thread(self.store.defer_destination, dest, now, self.limiter.next_free(dest, later), later)

    async def _plan(self, rows: list[Row], available: int, channel: ChannelConfig, now: float) -> list[Row]:
        """Send rows one by one while the budget allows; otherwise fold the backlog into digests."""
        if len(rows) <= available:
            return rows
        units = [r for r in rows if r.kind == "digest"][:available]
        singles = [r for r in rows if r.kind == "single"]
        size = self.config.delivery.digest_max_items
        chunks = min(available - len(units), math.ceil(len(singles) / size))
        for i in range(chunks):
            group = singles[i * size : (i + 1) * size]
            if len(group) == 1:
                units.append(group[0])
                continue
            digest = await asyncio.to_thread(self.store.fold, group[0], [r.id for r in group], now)
            self.metrics.inc("shaobing_relay_digests_total", channel=channel.name)
            log.info("channel %s: folded %d messages into digest %d", channel.name, len(group), digest.id)
            units.append(digest)
        return units

    async def outbound(self, row: Row, channel: ChannelConfig) -> Outbound:
        alerts = await asyncio.to_thread(self.store.alerts_for, row)
        ctx = self.renderer.context(alerts, channel.name, row.route, row.note)
        links = self.config.links
        if links.alertmanager:
            ctx["more_url"] = f"{links.alertmanager}/#/alerts"
        ctx["grafana_url"] = links.grafana
        ctx["ack_url"] = await self._ack_url(row, alerts) if not channel.is_sms else ""
        person = channel.person(row.recipient)
        params = [
            (name, sanitize_sms(self.renderer.render_inline(expr, ctx), channel.max_param_chars))
            for name, expr in channel.template_params
        ]
        limit = channel.max_message_bytes
        text_limit = limit if channel.is_sms else 300
        return Outbound(
            delivery_id=row.delivery_id,
            title=f"【哨兵】{ctx['status_zh']}：{ctx['title']}"[:100],
            markdown=self.renderer.render_fitted("im_markdown", ctx, limit, lambda t: len(t.encode("utf-8"))),
            text=sanitize_sms(self.renderer.render_fitted("sms_text", ctx, text_limit, len), text_limit),
            params=params,
            phone=person.phone if person else "",
            alerts=alerts,
            context=ctx,
            first_sent_at=row.unknown_since or self.clock(),
            ref=row.provider_ref,
        )

    async def _ack_url(self, row: Row, alerts: list[dict[str, Any]]) -> str:
        """A signed acknowledgement link for the open incident this message belongs to (critical firing)."""
        ack = self.config.acknowledge
        if ack is None or not alerts or "groupKey" not in alerts[0]:
            return ""
        key = group_key(row.route, alerts[0])
        incident = await asyncio.to_thread(self.store.transaction, lambda c: oncall.id_for_key(c, key))
        if incident is None:
            return ""
        token = oncall.make_token(ack.secret.value.encode(), incident, self.clock() + ack.link_valid_seconds)
        return f"{ack.public_url}/ack/{token}"

    async def _send(self, row: Row, channel: ChannelConfig) -> Outcome:
        provider = self.providers[channel.name]
        try:
            msg = await self.outbound(row, channel)
        except StoreError:
            raise
        except Exception as exc:  # a template that fails on this alert's data must not stall the queue
            await self._dead(row, channel, f"cannot render message: {type(exc).__name__}: {exc}", "permanent_failure")
            return Outcome.PERMANENT
        now = self.clock()
        await asyncio.to_thread(self.store.mark_sending, row.id, row.dest, now)
        self.limiter.record(row.dest, now)
        deadline = self.config.delivery.request_timeout_seconds + 5.0
        try:
            result = await asyncio.wait_for(provider.send(msg), timeout=deadline)
        except asyncio.TimeoutError:
            result = SendResult(Outcome.UNKNOWN if provider.sms else Outcome.RETRY, "deadline exceeded")
        except Exception as exc:
            result = SendResult(Outcome.UNKNOWN if provider.sms else Outcome.RETRY, f"{type(exc).__name__}")
        if channel.is_sms and result.outcome in (Outcome.PERMANENT, Outcome.RETRY, Outcome.RATE_LIMITED):
            # The provider refused it: nobody's phone got it, so it costs nobody's per-person budget.
            self.limiter.forget(row.dest, now)
            await asyncio.to_thread(self.store.forget_send, row.dest, now)
        await self._apply(row, channel, result, msg)
        return result.outcome

    async def _apply(self, row: Row, channel: ChannelConfig, result: SendResult, msg: Outbound) -> None:
        now = self.clock()
        who = f"{channel.name}" + (f" to {mask_phone(msg.phone)}" if msg.phone else "")
        outcome = result.outcome
        attempts = row.attempts + 1
        if outcome is Outcome.SUCCESS:
            await asyncio.to_thread(self.store.delivered, row.id, now, result.ref)
            self.metrics.inc("shaobing_relay_deliveries_total", channel=channel.name, outcome="success")
            log.info("delivered message %d via %s (%d alerts)", row.id, who, len(msg.alerts))
        elif outcome is Outcome.RATE_LIMITED:
            until = now + (result.retry_after or max((w for w, _ in channel.rate_limits), default=60.0))
            self.limiter.block(row.dest, until)
            await asyncio.to_thread(self.store.reschedule, row.id, until, now, result.detail, False)
            self.metrics.inc("shaobing_relay_deliveries_total", channel=channel.name, outcome="rate_limited")
            log.warning("rate limited on %s: %s; next try in %.0fs", who, result.detail, until - now)
        elif outcome is Outcome.UNKNOWN:
            next_at = now + self.config.delivery.reconcile_delay_seconds
            await asyncio.to_thread(self.store.unknown, row.id, next_at, now, result.detail, result.ref)
            self.metrics.inc("shaobing_relay_deliveries_total", channel=channel.name, outcome="unknown")
            log.warning(
                "outcome unknown for message %d via %s (%s); will reconcile, not resend", row.id, who, result.detail
            )
        elif outcome is Outcome.RETRY and attempts < self.config.delivery.max_attempts:
            d = self.config.delivery
            next_at = now + backoff_delay(
                attempts, d.backoff_initial_seconds, d.backoff_max_seconds, d.jitter, self.rng()
            )
            await asyncio.to_thread(self.store.reschedule, row.id, next_at, now, result.detail)
            self.metrics.inc("shaobing_relay_deliveries_total", channel=channel.name, outcome="retry")
            log.warning(
                "retry %d for message %d via %s in %.1fs: %s", attempts, row.id, who, next_at - now, result.detail
            )
        elif outcome is Outcome.RETRY:
            await self._dead(row, channel, f"out of attempts: {result.detail}", "dead_letter")
        else:
            await self._dead(row, channel, result.detail, "permanent_failure")

    async def _dead(self, row: Row, channel: ChannelConfig, detail: str, outcome: str) -> None:
        now = self.clock()
        await asyncio.to_thread(self.store.dead, row.id, now, detail)
        self.metrics.inc("shaobing_relay_deliveries_total", channel=channel.name, outcome=outcome)
        log.error("message %d on %s failed for good (%s): %s", row.id, channel.name, outcome, detail)
        if channel.type in VOICE_TYPES:
            who = channel.person(row.recipient)
            note = f"电话未接通（{channel.name}，{who.name if who else '-'}：{detail[:80]}），改由本通道发送"
        else:
            note = f"{channel.name} 通道投递失败，改由本通道发送"
        await self._to_fallback(row, channel, note)

    async def _to_fallback(self, row: Row, channel: ChannelConfig, note: str) -> None:
        """Hand a message's alerts to the channel's fallback, with a note saying why they come this way."""
        fallback = self.config.channels.get(channel.fallback or "")
        if fallback is None or row.fallback_depth >= MAX_FALLBACK_DEPTH:
            return
        now = self.clock()
        alert_ids = await asyncio.to_thread(self.store.alert_ids_for, row)
        planned: list[tuple[int, list[NewMessage]]] = []
        for alert_id in alert_ids:
            alert = await asyncio.to_thread(self.store.alert_body, alert_id)
            messages = [
                NewMessage(m.channel, m.recipient, m.dest, m.next_at, m.quiet, note)
                for m in plan_channel(fallback, alert, now, self.zone)
            ]
            if messages:
                planned.append((alert_id, messages))
        if planned:
            await asyncio.to_thread(self.store.enqueue_fallback, planned, row.route, row.fallback_depth + 1, now)
            log.warning("message %d: %d alerts handed to fallback channel %s", row.id, len(planned), fallback.name)

    # -- reconciliation -----------------------------------------------------------------------------

    async def _reconcile(self, row: Row) -> None:
        channel = self.config.channels.get(row.channel)
        now = self.clock()
        if channel is None:
            await asyncio.to_thread(self.store.review, row.id, now, "channel no longer configured")
            return
        msg = await self.outbound(row, channel)
        try:
            result = await asyncio.wait_for(
                self.providers[channel.name].reconcile(msg), timeout=self.config.delivery.request_timeout_seconds * 3
            )
            status, detail = result.status, result.detail
        except Exception as exc:
            status, detail = Reconcile.PENDING, f"query error: {type(exc).__name__}"
        self.metrics.inc("shaobing_relay_reconciliations_total", channel=channel.name, result=status.value)
        now = self.clock()
        since = row.unknown_since or now
        d = self.config.delivery
        if status is Reconcile.DELIVERED:
            await asyncio.to_thread(self.store.delivered, row.id, now, "")
            self.metrics.inc("shaobing_relay_deliveries_total", channel=channel.name, outcome="success")
            log.info("reconciled message %d on %s: delivered (%s)", row.id, channel.name, detail)
        elif status is Reconcile.FAILED:
            await self._dead(row, channel, f"provider reports failure: {detail}", "permanent_failure")
        elif status is Reconcile.ABSENT and now - since >= d.reconcile_grace_seconds:
            # The provider has no record of our id after the grace period: the request never reached it.
            await asyncio.to_thread(self.store.reschedule, row.id, now, now, f"reconciled absent: {detail}", False)
            log.warning("reconciled message %d on %s: never sent, sending again", row.id, channel.name)
        elif status is Reconcile.UNSUPPORTED or now - since >= d.reconcile_give_up_seconds:
            await asyncio.to_thread(self.store.review, row.id, now, f"needs operator review: {detail}")
            log.error("message %d on %s needs operator review: %s", row.id, channel.name, detail)
            who = channel.person(row.recipient)
            what = "电话" if channel.type in VOICE_TYPES else "短信"
            await self._to_fallback(
                row, channel, f"{what}结果未知，请人工核实（{channel.name}，{who.name if who else '-'}）"
            )
        else:
            await asyncio.to_thread(self.store.unknown, row.id, now + d.reconcile_delay_seconds, now, detail)
