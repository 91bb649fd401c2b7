"""Tencent Cloud voice message (语音消息 VMS, API 2020-09-02): a text-to-speech call (SendTtsVoice), TC3 signed,
our delivery id as SessionContext.

Tencent reports how a call ended only by calling back (事件回调, `voiceprompt_callback`: result 0 answered,
1 not answered, 2 call failed): the relay serves that callback at /callbacks/tencent-voice/<token>
(relay/voice_callbacks.py) and reconciliation reads what arrived. A placed call is therefore UNKNOWN until the
callback says; none at all (the centre not reachable from Tencent) ends in operator review, never a redial.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from relay.providers.base import Outbound, Outcome, Reconcile, ReconcileResult, SendResult
from relay.providers.tencent import TencentSms, e164

__all__ = ["TencentVoice", "CALLBACK_RESULTS"]

CALLBACK_RESULTS = {"0": "answered", "1": "not answered", "2": "call failed"}


class TencentVoice(TencentSms):
    service = "vms"
    version = "2020-09-02"
    # Set by the delivery loop: CallId -> the callback's result ("0", "1", "2"), or None if none arrived yet.
    results: Callable[[str], str | None] | None = None

    async def send(self, msg: Outbound) -> SendResult:
        body = {
            "TemplateId": self.option("template_id"),
            "TemplateParamSet": [value for _, value in msg.params],
            "CalledNumber": e164(msg.phone),
            "VoiceSdkAppid": self.option("voice_sdk_app_id"),
            "PlayTimes": int(self.option("play_times") or 2),
            "SessionContext": msg.delivery_id,
        }
        inner = await self.call_api("SendTtsVoice", body)
        if isinstance(inner, SendResult):
            return inner
        status = inner.get("SendStatus")
        call_id = str(status.get("CallId", "")) if isinstance(status, dict) else ""
        if not call_id:
            return SendResult(Outcome.UNKNOWN, "no CallId in the answer")
        return SendResult(Outcome.UNKNOWN, "call placed; waiting for Tencent's callback", ref=call_id)

    async def reconcile(self, msg: Outbound) -> ReconcileResult:
        if not msg.ref:
            return ReconcileResult(Reconcile.UNSUPPORTED, "the call request got no answer (no CallId): not redialled")
        if self.results is None:
            return ReconcileResult(Reconcile.UNSUPPORTED, "no callback store")
        result = await asyncio.to_thread(self.results, msg.ref)
        if result is None:
            return ReconcileResult(Reconcile.PENDING, "no callback from Tencent yet")
        if result == "0":
            return ReconcileResult(Reconcile.DELIVERED, "answered")
        return ReconcileResult(Reconcile.FAILED, f"call result {result}: {CALLBACK_RESULTS.get(result, 'unknown')}")
