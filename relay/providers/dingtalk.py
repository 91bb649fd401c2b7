"""DingTalk custom robot (自定义机器人), markdown messages, optional 加签 signing.

Errors live in the body: {"errcode": 0, "errmsg": "ok"} is the only success. Limits: 20 messages
per minute per robot, after which DingTalk throttles the robot for 10 minutes (errcode 130101).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse

from relay.providers.base import ChatRobot, Outbound, SendResult

__all__ = ["DingTalk", "dingtalk_sign"]

MAX_TEXT = 4000


def dingtalk_sign(timestamp_ms: int, secret: str) -> str:
    """HMAC-SHA256 over "timestamp\\nsecret" keyed by the secret, base64, then URL-encoded."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


class DingTalk(ChatRobot):
    rate_limited = {130101: 600.0, 90030: 3600.0}  # send too fast; webhook over daily/monthly quota
    permanent = frozenset({300001, 300004, 310000, 400013, 410100, 430101, 43004, 400101, 400102, 40035})

    async def send(self, msg: Outbound) -> SendResult:
        query = f"access_token={urllib.parse.quote(self.secret('access_token'), safe='')}"
        secret = self.secret("secret")
        if secret:
            ts = int(time.time() * 1000)
            query += f"&timestamp={ts}&sign={dingtalk_sign(ts, secret)}"
        body = {"msgtype": "markdown", "markdown": {"title": msg.title[:60], "text": msg.markdown[:MAX_TEXT]}}
        return await self.post(f"{self.option('base_url')}?{query}", body)
