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

from relay.providers.base import Outbound, Outcome, Provider, SendResult

__all__ = ["DingTalk", "dingtalk_sign"]

RATE_LIMITED = {130101: 600.0, 90030: 3600.0}  # send too fast; webhook over daily/monthly quota
PERMANENT = {300001, 300004, 310000, 400013, 410100, 430101, 43004, 400101, 400102, 40035}
MAX_TEXT = 4000


def dingtalk_sign(timestamp_ms: int, secret: str) -> str:
    """HMAC-SHA256 over "timestamp\\nsecret" keyed by the secret, base64, then URL-encoded."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


class DingTalk(Provider):
    async def send(self, msg: Outbound) -> SendResult:
        query = f"access_token={urllib.parse.quote(self.secret('access_token'), safe='')}"
        secret = self.secret("secret")
        if secret:
            ts = int(time.time() * 1000)
            query += f"&timestamp={ts}&sign={dingtalk_sign(ts, secret)}"
        body = {"msgtype": "markdown", "markdown": {"title": msg.title[:60], "text": msg.markdown[:MAX_TEXT]}}
        response = await self.request("POST", f"{self.option('base_url')}?{query}", json=body)
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
