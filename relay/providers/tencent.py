"""Tencent Cloud SMS (腾讯云短信, API 2021-01-11) with the TC3-HMAC-SHA256 signature.

HTTP 200 is not success: errors come as Response.Error, and each number has its own status in
Response.SendStatusSet[].Code ("Ok" only on success). Our delivery id travels as SessionContext;
reconciliation pulls delivery receipts (PullSmsSendStatusByPhoneNumber) and matches SessionContext.
Receipts arrive late and only when pulling is enabled, so absence proves nothing: an unmatched send
stays in reconciliation until it gives up and waits for an operator.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
import urllib.parse
from typing import Any

from relay.providers.base import Outbound, Outcome, Provider, Reconcile, ReconcileResult, SendResult

__all__ = ["TencentSms", "tc3_authorization"]

VERSION = "2021-01-11"
RATE_LIMITED_PREFIXES = ("LimitExceeded.", "RequestLimitExceeded")
RETRYABLE = {"InternalError.RequestTimeException", "InternalError.SigFieldMissing", "InternalError.SendAndRecvFail"}
UNCERTAIN = {"InternalError.Timeout", "InternalError.RestApiInterfaceNotExist"}
PERMANENT_PREFIXES = (
    "AuthFailure",
    "FailedOperation",
    "InvalidParameter",
    "UnauthorizedOperation",
    "UnsupportedOperation",
    "MissingParameter",
    "ResourceNotFound",
)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def tc3_authorization(
    secret_id: str, secret_key: str, service: str, host: str, content_type: str, payload: bytes, timestamp: int
) -> str:
    """Signature v3 for a POST with an empty query, signing content-type and host."""
    date = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d")
    canonical = f"POST\n/\n\ncontent-type:{content_type}\nhost:{host}\n\ncontent-type;host\n{_sha256(payload)}"
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{_sha256(canonical.encode())}"
    signing = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    signature = hmac.new(signing, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host, Signature={signature}"


def classify_code(code: str) -> Outcome:
    if code.startswith(RATE_LIMITED_PREFIXES):
        return Outcome.RATE_LIMITED
    if code in UNCERTAIN:
        return Outcome.UNKNOWN
    if code in RETRYABLE or code.startswith("InternalError"):
        return Outcome.RETRY
    if code.startswith(PERMANENT_PREFIXES):
        return Outcome.PERMANENT
    return Outcome.RETRY


def e164(phone: str) -> str:
    return phone if phone.startswith("+") else f"+86{phone}"


class TencentSms(Provider):
    sms = True
    content_type = "application/json; charset=utf-8"
    service = "sms"
    version = VERSION

    async def _call(self, action: str, body: dict[str, Any]) -> Any:
        url = self.option("base_url")
        host = urllib.parse.urlsplit(url).netloc
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        ts = int(time.time())
        headers = {
            "Authorization": tc3_authorization(
                self.secret("secret_id"), self.secret("secret_key"), self.service, host, self.content_type, payload, ts
            ),
            "Content-Type": self.content_type,
            "Host": host,
            "X-TC-Action": action,
            "X-TC-Version": self.version,
            "X-TC-Timestamp": str(ts),
            "X-TC-Region": self.option("region"),
        }
        return await self.request("POST", url, content=payload, headers=headers)

    async def call_api(self, action: str, body: dict[str, Any]) -> dict[str, Any] | SendResult:
        """The answer's "Response" object, or the SendResult a failure means (transport, HTTP status, or a
        Response.Error by its documented code)."""
        response = await self._call(action, body)
        if isinstance(response, SendResult):
            return response
        data = self.json_body(response)
        inner = data.get("Response") if data else None
        if not isinstance(inner, dict):
            by_status = self.classify_status(response)
            return by_status or SendResult(Outcome.UNKNOWN, f"HTTP {response.status_code}, unreadable body")
        error = inner.get("Error")
        if isinstance(error, dict):
            code = str(error.get("Code", ""))
            return SendResult(classify_code(code), f"{code}: {str(error.get('Message', ''))[:200]}", 60.0)
        return inner

    async def send(self, msg: Outbound) -> SendResult:
        body = {
            "PhoneNumberSet": [e164(msg.phone)],
            "SmsSdkAppId": self.option("sdk_app_id"),
            "SignName": self.option("sign_name"),
            "TemplateId": self.option("template_id"),
            "TemplateParamSet": [value for _, value in msg.params],
            "SessionContext": msg.delivery_id,
        }
        inner = await self.call_api("SendSms", body)
        if isinstance(inner, SendResult):
            return inner
        statuses = inner.get("SendStatusSet") or []
        status = statuses[0] if statuses and isinstance(statuses[0], dict) else None
        if status is None:
            return SendResult(Outcome.UNKNOWN, "no SendStatusSet in response")
        code = str(status.get("Code", ""))
        if code == "Ok":
            return SendResult(Outcome.SUCCESS, "Ok", ref=str(status.get("SerialNo", "")))
        return SendResult(classify_code(code), f"{code}: {str(status.get('Message', ''))[:200]}", 600.0)

    async def reconcile(self, msg: Outbound) -> ReconcileResult:
        begin = int(msg.first_sent_at or time.time()) - 300
        body = {
            "BeginTime": begin,
            "EndTime": int(time.time()) + 60,
            "Offset": 0,
            "Limit": 100,
            "PhoneNumber": e164(msg.phone),
            "SmsSdkAppId": self.option("sdk_app_id"),
        }
        response = await self._call("PullSmsSendStatusByPhoneNumber", body)
        if isinstance(response, SendResult):
            return ReconcileResult(Reconcile.PENDING, f"query failed: {response.detail}")
        data = self.json_body(response)
        inner = data.get("Response") if data else None
        if not isinstance(inner, dict) or "Error" in inner:
            return ReconcileResult(Reconcile.PENDING, "query failed")
        for record in inner.get("PullSmsSendStatusSet") or []:
            if isinstance(record, dict) and record.get("SessionContext") == msg.delivery_id:
                if str(record.get("ReportStatus", "")).upper() == "FAIL":
                    return ReconcileResult(Reconcile.FAILED, f"receipt FAIL: {record.get('Description', '')}")
                return ReconcileResult(Reconcile.DELIVERED, "receipt found")
        return ReconcileResult(Reconcile.PENDING, "no receipt yet")
