"""WeCom (企业微信) group robot: the key in the URL is the credential; markdown messages.

Errors live in the body ({"errcode": 0, "errmsg": "ok"}); 20 messages per minute per robot
(errcode 45009 when exceeded). Markdown content is limited to 4096 bytes.
"""

from __future__ import annotations

import urllib.parse

from relay.providers.base import ChatRobot, Outbound, SendResult

__all__ = ["WeCom"]

MAX_BYTES = 4096


def _clip_utf8(text: str, limit: int) -> str:
    raw = text.encode("utf-8")
    return text if len(raw) <= limit else raw[: limit - 3].decode("utf-8", errors="ignore") + "…"


class WeCom(ChatRobot):
    rate_limited = {45009: 60.0, 45033: 60.0}
    # errcode -1 (system busy) is not listed: like any unknown code it is retried.
    permanent = frozenset({93000, 40008, 40058, 44004, 40001, 40014, 301002, 93004})

    async def send(self, msg: Outbound) -> SendResult:
        url = f"{self.option('base_url')}?key={urllib.parse.quote(self.secret('key'), safe='')}"
        body = {"msgtype": "markdown", "markdown": {"content": _clip_utf8(msg.markdown, MAX_BYTES)}}
        return await self.post(url, body)
