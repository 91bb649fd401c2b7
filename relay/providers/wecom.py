"""WeCom (企业微信) group robot: the key in the URL is the credential; markdown messages.

Errors live in the body ({"errcode": 0, "errmsg": "ok"}); 20 messages per minute per robot
(errcode 45009 when exceeded). Markdown content is limited to 4096 bytes.
"""

from __future__ import annotations

import urllib.parse

from relay.providers.base import ChatRobot, Outbound, Outcome, SendResult

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

    async def send_file(self, name: str, content: bytes) -> SendResult:
        """Upload a file (upload_media, type=file, at most 20 MB) and post it to the group as a file message."""
        if len(content) > 20 * 1024 * 1024:
            return SendResult(Outcome.PERMANENT, "file larger than WeCom's 20 MB")
        key = urllib.parse.quote(self.secret("key"), safe="")
        base = self.option("base_url").rsplit("/", 1)[0]
        response = await self.request(
            "POST",
            f"{base}/upload_media?key={key}&type=file",
            files={"media": (name, content, "application/octet-stream")},
        )
        if isinstance(response, SendResult):
            return response
        by_status = self.classify_status(response)
        if by_status is not None:
            return by_status
        data = self.json_body(response) or {}
        media = data.get("media_id")
        if data.get("errcode") != 0 or not isinstance(media, str) or not media:
            return SendResult(
                Outcome.RETRY if data.get("errcode") not in self.permanent else Outcome.PERMANENT,
                self.body_error(data)[1],
            )
        return await self.post(f"{self.option('base_url')}?key={key}", {"msgtype": "file", "file": {"media_id": media}})
