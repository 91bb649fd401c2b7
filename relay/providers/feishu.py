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

from relay.providers.base import Outbound, Outcome, Provider, SendResult

__all__ = ["Feishu", "feishu_sign"]

RATE_LIMITED_CODE = 11232
PERMANENT = {9499, 19001, 19002, 19007, 19021, 19022, 19024}
MAX_TEXT = 8000


def feishu_sign(timestamp_s: int, secret: str) -> str:
    """The key is "timestamp\\nsecret" and the message is empty: HMAC-SHA256, base64."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


class Feishu(Provider):
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
        response = await self.request("POST", url, json=body)
        if isinstance(response, SendResult):
            return response
        by_status = self.classify_status(response)
        if by_status is not None:
            return by_status
        data = self.json_body(response)
        if data is None:
            return SendResult(Outcome.RETRY, "response is not JSON")
        code = data.get("code", data.get("StatusCode"))
        detail = f"code {code}: {str(data.get('msg', data.get('StatusMessage', '')))[:200]}"
        if code == 0:
            return SendResult(Outcome.SUCCESS, "ok")
        if code == RATE_LIMITED_CODE:
            return SendResult(Outcome.RATE_LIMITED, detail, 60.0)
        if code in PERMANENT:
            return SendResult(Outcome.PERMANENT, detail)
        return SendResult(Outcome.RETRY, detail)
