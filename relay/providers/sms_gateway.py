"""A generic HTTP SMS gateway: URL, method, headers, a Jinja2 body template and a success predicate.

Success means an HTTP status in `success_status` and, when `success_field` is set, that top-level
JSON field equal to `success_value`. Gateways have no common status query, so an unclear outcome
goes to operator review instead of being sent again.
"""

from __future__ import annotations

from relay.providers.base import Outbound, Outcome, Provider, SendResult
from relay.templates import Renderer

__all__ = ["SmsGateway"]


class SmsGateway(Provider):
    sms = True
    renderer: Renderer | None = None

    async def send(self, msg: Outbound) -> SendResult:
        if self.renderer is None:
            return SendResult(Outcome.PERMANENT, "gateway has no renderer")
        ctx = dict(msg.context, phone=msg.phone, delivery_id=msg.delivery_id, text=msg.text, params=dict(msg.params))
        body = self.renderer.render_inline(self.option("body_template"), ctx)
        headers = {"Content-Type": self.option("content_type"), "X-Shaobing-Delivery": msg.delivery_id}
        headers.update(self.configured_headers())
        response = await self.request(
            self.option("method").upper(), self.option("url"), content=body.encode("utf-8"), headers=headers
        )
        if isinstance(response, SendResult):
            return response
        raw = self.channel.options.get("success_status")
        accepted = [int(s) for s in raw] if isinstance(raw, list) else [200]
        if response.status_code not in accepted:
            by_status = self.classify_status(response)
            return by_status or SendResult(Outcome.PERMANENT, f"HTTP {response.status_code} not in success_status")
        field = self.option("success_field")
        if field:
            data = self.json_body(response)
            value = None if data is None else data.get(field)
            if str(value) != self.option("success_value"):
                return SendResult(Outcome.PERMANENT, f"{field}={str(value)[:100]}")
        return SendResult(Outcome.SUCCESS, f"HTTP {response.status_code}")
