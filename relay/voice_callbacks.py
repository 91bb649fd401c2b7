"""Call results that voice providers push (Tencent Cloud's `voiceprompt_callback`), kept for reconciliation.

POST /callbacks/tencent-voice/<token>: the token is the channel's `callback_token` secret (Tencent signs
nothing, so the unguessable path is the credential); the body is Tencent's documented callback JSON. Answers
{"result": 0, "errmsg": "OK"} as Tencent expects.
"""

from __future__ import annotations

import hmac
import json
import sqlite3
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.config.model import Config
from relay.store import Store

__all__ = ["callback_routes", "lookup"]

# The table is created with the store's schema (relay/store.py, CALL_RESULTS_SCHEMA).


def lookup(store: Store, call_id: str) -> str | None:
    def work(conn: sqlite3.Connection) -> str | None:
        row = conn.execute("SELECT result FROM call_results WHERE call_id=?", (call_id,)).fetchone()
        return str(row[0]) if row else None

    return store.transaction(work)


def callback_routes(config: Config, store: Store, clock: Callable[[], float] = time.time) -> list[Route]:
    tokens = [
        ch.secrets["callback_token"].value
        for ch in config.channels.values()
        if ch.type == "tencent_voice" and "callback_token" in ch.secrets
    ]
    if not tokens:
        return []

    async def tencent(request: Request) -> Response:
        token = str(request.path_params["token"])
        if not any(hmac.compare_digest(token, t) for t in tokens):
            return JSONResponse({"result": 1, "errmsg": "unknown callback"}, status_code=404)
        raw = await request.body()
        try:
            event = json.loads(raw[:65536]).get("voiceprompt_callback")
            call_id, result = str(event["callid"]), str(event["result"])
        except (ValueError, AttributeError, KeyError, TypeError):
            return JSONResponse({"result": 1, "errmsg": "expected voiceprompt_callback"}, status_code=400)

        def store_it(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO call_results(call_id, result, received_at) VALUES (?, ?, ?) "
                "ON CONFLICT(call_id) DO UPDATE SET result=excluded.result, received_at=excluded.received_at",
                (call_id[:128], result[:8], clock()),
            )

        await run_in_threadpool(store.transaction, store_it)
        return JSONResponse({"result": 0, "errmsg": "OK"})

    return [Route("/callbacks/tencent-voice/{token}", tencent, methods=["POST"])]
