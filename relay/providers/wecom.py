"""WeCom (企业微信) group robot: the key in the URL is the credential; markdown messages.

Errors live in the body ({"errcode": 0, "errmsg": "ok"}); 20 messages per minute per robot
(errcode 45009 when exceeded). Markdown content is limited to 4096 bytes.
"""

from __future__ import annotations

import urllib.parse

from relay.providers.base import Outbound, Outcome, Provider, SendResult

__all__ = ["WeCom"]

RATE_LIMITED = {45009: 60.0, 45033: 60.0}
PERMANENT = {93000, 40008, 40058, 44004, 40001, 40014, 301002, 93004}
RETRYABLE = {-1}
MAX_BYTES = 4096


def _clip_utf8(text: str, limit: int) -> str:
    raw = text.encode("utf-8")
    return text if len(raw) <= limit else raw[: limit - 3].decode("utf-8", errors="ignore") + "…"


class WeCom(Provider):
    async def send(self, msg: Outbound) -> SendResult:
        url = f"{self.option('base_url')}?key={urllib.parse.quote(self.secret('key'), safe='')}"
        body = {"msgtype": "markdown", "markdown": {"content": _clip_utf8(msg.markdown, MAX_BYTES)}}
        response = await self.request("POST", url, json=body)
        if isinstance(response, SendResult):
            return response
        by_status = self.classify_status(response)
        if by_status is not None:
            return by_status
        data = self.json_body(response)
        if data is None:
            return SendResult(Outcome.RETRY, "response is not JSON")
        code = data.get("errcode")
        detail = f"errcode {code}: {str(data.get('errmsg', ''))[:200]}"
        if code == 0:
            return SendResult(Outcome.SUCCESS, "ok")
        if code in RATE_LIMITED:
            return SendResult(Outcome.RATE_LIMITED, detail, RATE_LIMITED[code])
        if code in PERMANENT:
            return SendResult(Outcome.PERMANENT, detail)
        return SendResult(Outcome.RETRY, detail)
