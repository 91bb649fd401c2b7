"""What every provider shares: the message it is given, the result it returns, and the mapping of
transport failures, HTTP statuses and (for chat robots) body-level error codes to outcomes."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from relay.config.model import ChannelConfig

__all__ = [
    "Outcome",
    "SendResult",
    "Reconcile",
    "ReconcileResult",
    "Outbound",
    "Provider",
    "ChatRobot",
    "retry_after",
]


class Outcome(str, enum.Enum):
    SUCCESS = "success"
    RETRY = "retry"
    PERMANENT = "permanent_failure"
    RATE_LIMITED = "rate_limited"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    detail: str = ""
    retry_after: float | None = None
    ref: str = ""


class Reconcile(str, enum.Enum):
    DELIVERED = "delivered"
    FAILED = "failed"
    ABSENT = "absent"
    PENDING = "pending"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class ReconcileResult:
    status: Reconcile
    detail: str = ""


@dataclass
class Outbound:
    """One message ready to send. `phone` is empty for chat channels."""

    delivery_id: str
    title: str
    markdown: str
    text: str
    params: list[tuple[str, str]] = field(default_factory=list)
    phone: str = ""
    alerts: list[dict[str, Any]] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    first_sent_at: float = 0.0
    ref: str = ""  # the provider's id from an earlier send (a voice call's CallId), for reconciliation


def retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after", "")
    try:
        return max(float(raw), 0.0) if raw else None
    except ValueError:
        return None


class Provider:
    """A provider sends one Outbound and classifies the answer; it never raises for provider errors.

    `sms` providers are not idempotent: once a request may have reached the provider, an unclear
    answer is UNKNOWN (reconcile), never RETRY.
    """

    sms: ClassVar[bool] = False

    def __init__(self, channel: ChannelConfig, client: httpx.AsyncClient) -> None:
        self.channel = channel
        self.client = client

    def option(self, key: str) -> str:
        return str(self.channel.options.get(key, ""))

    def secret(self, key: str) -> str:
        found = self.channel.secrets.get(key)
        return found.value if found is not None else ""

    def configured_headers(self) -> dict[str, str]:
        raw = self.channel.options.get("headers")
        headers = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        for key, secret in self.channel.secrets.items():
            if key.startswith("header:"):
                headers[key[len("header:") :]] = secret.value
        return headers

    async def send(self, msg: Outbound) -> SendResult:
        raise NotImplementedError

    async def reconcile(self, msg: Outbound) -> ReconcileResult:
        return ReconcileResult(Reconcile.UNSUPPORTED, "provider has no status query")

    async def close(self) -> None:
        """Release a provider's own connections (SMPP sessions); HTTP providers share the relay's client."""

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response | SendResult:
        """Send, mapping transport failures: a connection that never opened is always safe to retry;
        a timeout or broken response after the request left is UNKNOWN for SMS."""
        try:
            return await self.client.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return SendResult(Outcome.RETRY, f"connection failed ({type(exc).__name__})")
        except httpx.TimeoutException as exc:
            return SendResult(Outcome.UNKNOWN if self.sms else Outcome.RETRY, f"timed out ({type(exc).__name__})")
        except httpx.HTTPError as exc:
            return SendResult(Outcome.UNKNOWN if self.sms else Outcome.RETRY, f"transport error ({type(exc).__name__})")

    def classify_status(self, response: httpx.Response) -> SendResult | None:
        """Outcome from the HTTP status alone, or None when the body must decide (2xx)."""
        status = response.status_code
        if 200 <= status < 300:
            return None
        if status == 429:
            return SendResult(Outcome.RATE_LIMITED, "HTTP 429", retry_after(response))
        if status >= 500:
            # For SMS a 5xx may come from a gateway after the backend accepted the send.
            return SendResult(Outcome.UNKNOWN if self.sms else Outcome.RETRY, f"HTTP {status}")
        if status in (408, 425):
            return SendResult(Outcome.UNKNOWN if self.sms else Outcome.RETRY, f"HTTP {status}")
        return SendResult(Outcome.PERMANENT, f"HTTP {status}")

    @staticmethod
    def json_body(response: httpx.Response) -> dict[str, Any] | None:
        try:
            body = response.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None


class ChatRobot(Provider):
    """A chat-group robot webhook (DingTalk, WeCom, Feishu): POST a JSON payload, then let the body decide.

    These robots answer HTTP 200 for most failures and put the error in the body, so a 2xx is only a
    success when the body's code is 0. Subclasses build the payload and name their error codes; a code in
    neither table (or an unreadable body) is retried.
    """

    # Body error code -> seconds to back off (the robot throttles, or is over its quota).
    rate_limited: ClassVar[Mapping[int, float]] = {}
    # Body error codes that will fail again unchanged: bad token or signature, blocked IP, bad payload.
    permanent: ClassVar[frozenset[int]] = frozenset()

    def body_error(self, data: dict[str, Any]) -> tuple[Any, str]:
        """The error code in a JSON answer, and the detail to record. DingTalk and WeCom use errcode/errmsg."""
        code = data.get("errcode")
        return code, f"errcode {code}: {str(data.get('errmsg', ''))[:200]}"

    async def post(self, url: str, payload: dict[str, Any]) -> SendResult:
        response = await self.request("POST", url, json=payload)
        if isinstance(response, SendResult):
            return response
        by_status = self.classify_status(response)
        if by_status is not None:
            return by_status
        data = self.json_body(response)
        if data is None:
            return SendResult(Outcome.RETRY, "response is not JSON")
        code, detail = self.body_error(data)
        if code == 0:
            return SendResult(Outcome.SUCCESS, "ok")
        if code in self.rate_limited:
            return SendResult(Outcome.RATE_LIMITED, detail, self.rate_limited[code])
        if code in self.permanent:
            return SendResult(Outcome.PERMANENT, detail)
        return SendResult(Outcome.RETRY, detail)
