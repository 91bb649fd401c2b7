"""The HTTP side: authenticated, size-limited ingest that answers 2xx only after the alert is
committed (503 when it cannot be), plus /metrics and /healthz."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from relay import oncall
from relay.ack import ack_routes
from relay.config.model import AuthConfig, Config
from relay.delivery import Deliverer
from relay.group_commit import GroupCommitter
from relay.heartbeat import heartbeat_sources
from relay.ingest import PayloadError, build_webhook, parse_payload
from relay.metrics import Metrics
from relay.store import Store, StoreError
from relay.voice_callbacks import callback_routes

__all__ = ["create_app", "check_auth"]

log = logging.getLogger("relay.app")


class _TooLarge(Exception):
    pass


def check_auth(auth: AuthConfig, header: str) -> bool:
    """Constant-time comparison against every configured credential."""
    if auth.allow_unauthenticated and not auth.bearer_tokens and not auth.basic:
        return True
    scheme, _, value = header.partition(" ")
    value = value.strip()
    ok = False
    if scheme.lower() == "bearer" and value:
        for token in auth.bearer_tokens:
            ok |= hmac.compare_digest(value.encode(), token.value.encode())
    elif scheme.lower() == "basic" and value:
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return False
        if not sep:
            return False
        for name, secret in auth.basic:
            ok |= hmac.compare_digest(user.encode(), name.encode()) & hmac.compare_digest(
                password.encode(), secret.value.encode()
            )
    return ok or auth.allow_unauthenticated


def _is_json(content_type: str) -> bool:
    """application/json (Alertmanager's), with or without parameters; +json types as well."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    config: Config,
    store: Store,
    metrics: Metrics,
    deliverer: Deliverer | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    committer = GroupCommitter(store)

    def answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
        metrics.inc("shaobing_relay_http_requests_total", code=str(status))
        return JSONResponse(body, status_code=status, headers=headers)

    heartbeat = config.heartbeat
    tracks_incidents = config.acknowledge is not None or any(r.escalation for r in config.routes.values())

    async def ingest(request: Request) -> Response:
        route = str(request.path_params["route"])
        if not check_auth(config.server.auth, request.headers.get("authorization", "")):
            return answer(401, {"error": "authentication required"}, {"WWW-Authenticate": 'Bearer realm="shaobing"'})
        is_heartbeat = heartbeat is not None and route == heartbeat.route
        if route not in config.routes and not is_heartbeat:
            return answer(404, {"error": f"unknown route '{route[:64]}'"})
        if not _is_json(request.headers.get("content-type", "")):
            return answer(415, {"error": "expected Content-Type: application/json (an Alertmanager webhook)"})
        try:
            body = await _read_body(request, config.server.max_body_bytes)
        except _TooLarge:
            return answer(413, {"error": f"body larger than {config.server.max_body_bytes} bytes"})
        try:
            alerts = parse_payload(body)
        except PayloadError as exc:
            return answer(400, {"error": str(exc)})
        if is_heartbeat:
            return await _heartbeat(alerts)
        metrics.inc("shaobing_relay_alerts_received_total", len(alerts), route=route)
        webhook = build_webhook(config, route, alerts, clock())
        try:
            accepted, duplicates = await asyncio.wrap_future(committer.submit(webhook))
        except (StoreError, OSError) as exc:
            metrics.inc("shaobing_relay_store_errors_total")
            log.error("cannot persist alerts for route %s: %s", route, exc)
            # 5xx: Alertmanager retries only on server errors, so the alert is not lost.
            return answer(503, {"error": "cannot persist alerts; retry later"})
        metrics.inc("shaobing_relay_alerts_duplicate_total", duplicates, route=route)
        if deliverer is not None and accepted:
            deliverer.wake()
        return answer(200, {"status": "accepted", "accepted": accepted, "duplicates": duplicates})

    async def _heartbeat(alerts: list[dict[str, Any]]) -> Response:
        assert heartbeat is not None
        sources = heartbeat_sources(alerts, heartbeat.source_label)
        try:
            await run_in_threadpool(store.heartbeat, sorted(sources), clock())
        except StoreError as exc:
            metrics.inc("shaobing_relay_store_errors_total")
            log.error("cannot record heartbeat: %s", exc)
            return answer(503, {"error": "cannot record heartbeat; retry later"})
        if deliverer is not None:
            deliverer.wake()
        return answer(200, {"status": "heartbeat", "sources": sorted(sources)})

    async def metrics_endpoint(request: Request) -> Response:
        try:
            stats = await run_in_threadpool(store.stats)
            beats = await run_in_threadpool(store.heartbeats) if heartbeat is not None else []
            incidents = await run_in_threadpool(store.transaction, oncall.counts) if tracks_incidents else None
        except StoreError as exc:
            metrics.inc("shaobing_relay_store_errors_total")
            log.error("cannot read queue state for /metrics: %s", exc)
            stats, beats, incidents = None, [], None
        modems = deliverer.modem_health() if deliverer is not None else None
        text = metrics.render(stats, clock(), beats, incidents, modems)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    async def healthz(request: Request) -> Response:
        try:
            await run_in_threadpool(store.ping)
        except StoreError:
            return PlainTextResponse("store unavailable\n", status_code=503)
        if deliverer is not None and not deliverer.alive:
            return PlainTextResponse("delivery worker stopped\n", status_code=503)
        return PlainTextResponse("ok\n")

    async def index(request: Request) -> Response:
        return PlainTextResponse("shaobing-relay: POST /alertmanager/<route>, GET /metrics, GET /healthz\n")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if deliverer is not None:
            await deliverer.start()
        try:
            yield
        finally:
            if deliverer is not None:
                await deliverer.stop()
            await asyncio.to_thread(committer.close)

    routes = [
        Route("/alertmanager/{route}", ingest, methods=["POST"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/", index, methods=["GET"]),
        *(ack_routes(config, store, metrics, clock) if config.acknowledge is not None else []),
        *callback_routes(config, store, clock),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
