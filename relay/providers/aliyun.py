"""Aliyun SMS (阿里云短信服务, Dysmsapi 2017-05-25) over the RPC API with the HMAC-SHA1 signature.

SendSms carries our delivery id as OutId. An unclear outcome is reconciled with QuerySendDetails,
whose records include OutId: found -> the send happened; absent after the grace period -> it never
reached Aliyun and may be sent again (with the same OutId).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from relay.providers.base import Outbound, Outcome, Provider, Reconcile, ReconcileResult, SendResult

__all__ = ["AliyunSms", "rpc_signature", "percent_encode"]

# Error codes from the Dysmsapi error-code reference (短信服务 API 错误码).
RATE_LIMITED = {
    "isv.BUSINESS_LIMIT_CONTROL": 600.0,  # per-number flow control (minute/hour/day)
    "isv.DAY_LIMIT_CONTROL": 3600.0,
    "Throttling.User": 60.0,
    "Throttling.Api": 60.0,
    "Throttling": 60.0,
}
PERMANENT = {
    "isv.MOBILE_NUMBER_ILLEGAL",
    "isv.AMOUNT_NOT_ENOUGH",
    "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.SMS_SIGNATURE_ILLEGAL",
    "isv.TEMPLATE_MISSING_PARAMETERS",
    "isv.INVALID_PARAMETERS",
    "isv.PARAM_LENGTH_LIMIT",
    "isv.OUT_OF_SERVICE",
    "isv.ACCOUNT_NOT_EXISTS",
    "isv.ACCOUNT_ABNORMAL",
    "isv.BLACK_KEY_CONTROL_LIMIT",
    "isv.INVALID_JSON_PARAM",
    "isv.MOBILE_COUNT_OVER_LIMIT",
    "isv.SMS_CONTENT_ILLEGAL",
    "isv.SMS_SIGN_ILLEGAL",
    "isv.DENY_IP_RANGE",
    "isv.PARAM_NOT_SUPPORT_URL",
    "isv.TEMPLATE_PARAMS_ILLEGAL",
    "isp.RAM_PERMISSION_DENY",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId.NotFound",
    "InvalidAccessKeyId.Inactive",
    "Forbidden.RAM",
}
# Explicit "not done, try again" answers; the SMS was not sent.
RETRYABLE = {
    "isp.SYSTEM_ERROR",
    "ServiceUnavailable",
    "InternalError",
    "SignatureNonceUsed",
    "InvalidTimeStamp.Expired",
}

_CHINA = ZoneInfo("Asia/Shanghai")


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Aliyun specifies it: space -> %20, '*' -> %2A, '~' kept."""
    return urllib.parse.quote(value, safe="~")


def rpc_signature(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """The RPC ("POP") signature: HMAC-SHA1 over METHOD&%2F&encode(sorted canonical query)."""
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{access_key_secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def aliyun_number(phone: str) -> str:
    """Mainland numbers go without a prefix; others as country code + number, without '+'."""
    if phone.startswith("+86"):
        return phone[3:]
    return phone[1:] if phone.startswith("+") else phone


class AliyunSms(Provider):
    sms = True

    def _common(self, action: str) -> dict[str, str]:
        return {
            "AccessKeyId": self.secret("access_key_id"),
            "Action": action,
            "Format": "JSON",
            "RegionId": self.option("region_id"),
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
        }

    def _signed(self, params: dict[str, str]) -> dict[str, str]:
        signed = dict(params)
        signed["Signature"] = rpc_signature("POST", params, self.secret("access_key_secret"))
        return signed

    async def send(self, msg: Outbound) -> SendResult:
        params = self._common("SendSms")
        params.update(
            PhoneNumbers=aliyun_number(msg.phone),
            SignName=self.option("sign_name"),
            TemplateCode=self.option("template_code"),
            TemplateParam=json.dumps(dict(msg.params), ensure_ascii=False),
            OutId=msg.delivery_id,
        )
        answer = await self.post_rpc(params)
        if isinstance(answer, SendResult):
            return answer
        return SendResult(Outcome.SUCCESS, "OK", ref=str(answer.get("BizId", "")))

    async def post_rpc(self, params: dict[str, str]) -> dict[str, Any] | SendResult:
        """POST a signed RPC call: the body of a "Code": "OK" answer, or the SendResult any other answer means
        (transport failure, HTTP status, or the documented error codes)."""
        response = await self.request("POST", self.option("base_url"), data=self._signed(params))
        if isinstance(response, SendResult):
            return response
        data = self.json_body(response)
        if data is None or "Code" not in data:
            by_status = self.classify_status(response)
            return by_status or SendResult(Outcome.UNKNOWN, f"HTTP {response.status_code}, unreadable body")
        code = str(data.get("Code"))
        detail = f"{code}: {str(data.get('Message', ''))[:200]}"
        if code == "OK":
            return data
        if code in RATE_LIMITED:
            return SendResult(Outcome.RATE_LIMITED, detail, RATE_LIMITED[code])
        if code in PERMANENT:
            return SendResult(Outcome.PERMANENT, detail)
        if code in RETRYABLE:
            return SendResult(Outcome.RETRY, detail)
        return SendResult(Outcome.RETRY if response.status_code < 500 else Outcome.UNKNOWN, detail)

    async def query_rpc(self, params: dict[str, str]) -> dict[str, Any] | ReconcileResult:
        """A signed status query: the body of a "Code": "OK" answer, or PENDING saying why there is none."""
        response = await self.request("POST", self.option("base_url"), data=self._signed(params))
        if isinstance(response, SendResult):
            return ReconcileResult(Reconcile.PENDING, f"query failed: {response.detail}")
        data = self.json_body(response)
        if data is None or data.get("Code") != "OK":
            code = data.get("Code") if data else f"HTTP {response.status_code}"
            return ReconcileResult(Reconcile.PENDING, f"query failed: {code}")
        return data

    async def reconcile(self, msg: Outbound) -> ReconcileResult:
        days = {dt.datetime.fromtimestamp(t, _CHINA).strftime("%Y%m%d") for t in (msg.first_sent_at, time.time())}
        for day in sorted(days):
            page = 1
            while page <= 20:
                params = self._common("QuerySendDetails")
                params.update(PhoneNumber=aliyun_number(msg.phone), SendDate=day, PageSize="50", CurrentPage=str(page))
                data = await self.query_rpc(params)
                if isinstance(data, ReconcileResult):
                    return data
                records = (data.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
                for record in records:
                    if isinstance(record, dict) and str(record.get("OutId", "")) == msg.delivery_id:
                        if int(record.get("SendStatus", 0) or 0) == 2:
                            return ReconcileResult(Reconcile.FAILED, f"send failed: {record.get('ErrCode', '')}")
                        return ReconcileResult(Reconcile.DELIVERED, f"found, SendStatus {record.get('SendStatus')}")
                total = int(data.get("TotalCount", 0) or 0)
                if page * 50 >= total:
                    break
                page += 1
        return ReconcileResult(Reconcile.ABSENT, "no record with our OutId")
