"""Feishu (飞书) custom bot: interactive card with a markdown element, optional signature check.

Errors live in the body: {"code": 0, "msg": "success"} (older deployments answer
{"StatusCode": 0}). Limits: 100 requests per minute and 5 per second per bot (code 11232 when
exceeded); 19021 signature mismatch, 19022 IP not allowed, 19024 keyword check failed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from typing import Any

from relay.providers.base import ChatRobot, Outbound, SendResult

__all__ = ["Feishu", "feishu_sign"]

MAX_TEXT = 8000


def feishu_sign(timestamp_s: int, secret: str) -> str:
    """The key is "timestamp\\nsecret" and the message is empty: HMAC-SHA256, base64."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


class Feishu(ChatRobot):
    rate_limited = {11232: 60.0}
    permanent = frozenset({9499, 19001, 19002, 19007, 19021, 19022, 19024})

    def body_error(self, data: dict[str, Any]) -> tuple[Any, str]:
        code = data.get("code", data.get("StatusCode"))
        return code, f"code {code}: {str(data.get('msg', data.get('StatusMessage', '')))[:200]}"

    async def send(self, msg: Outbound) -> SendResult:
        base = self.option("base_url")
        url = base + ("" if base.endswith("/") else "/") + urllib.parse.quote(self.secret("hook_token"), safe="")
        firing = msg.context.get("status", "firing") == "firing"
        body: dict[str, object] = {
            "msg_type": "interactive",
            "card": {
                "header": {
                    "title": {"tag": "plain_text", "content": msg.title[:100]},
                    "template": "red" if firing else "green",
                },
                "elements": [{"tag": "markdown", "content": msg.markdown[:MAX_TEXT]}],
            },
        }
        secret = self.secret("secret")
        if secret:
            ts = int(time.time())
            body["timestamp"] = str(ts)
            body["sign"] = feishu_sign(ts, secret)
        return await self.post(url, body)
