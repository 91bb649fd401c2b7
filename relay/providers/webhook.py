"""Generic JSON webhook: our own payload, signed with HMAC-SHA256 and carrying the delivery id.

Headers: X-Shaobing-Delivery (stable across retries, so receivers can deduplicate),
X-Shaobing-Timestamp (unix seconds) and X-Shaobing-Signature: sha256=hex(HMAC(secret, "ts.body")).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from relay import __version__
from relay.providers.base import Outbound, Outcome, Provider, SendResult

__all__ = ["Webhook", "webhook_signature"]


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Webhook(Provider):
    async def send(self, msg: Outbound) -> SendResult:
        payload = {
            "version": "1",
            "source": f"shaobing-relay/{__version__}",
            "delivery_id": msg.delivery_id,
            "digest": len(msg.alerts) != 1,
            "title": msg.title,
            "markdown": msg.markdown,
            "alerts": msg.alerts,
        }
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Shaobing-Delivery": msg.delivery_id,
            "X-Shaobing-Timestamp": ts,
        }
        headers.update(self.configured_headers())
        if self.secret("secret"):
            headers["X-Shaobing-Signature"] = webhook_signature(self.secret("secret"), ts, body)
        response = await self.request("POST", self.option("url"), content=body, headers=headers)
        if isinstance(response, SendResult):
            return response
        by_status = self.classify_status(response)
        if by_status is not None:
            return by_status
        return SendResult(Outcome.SUCCESS, f"HTTP {response.status_code}")
