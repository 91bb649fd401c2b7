"""Aliyun voice notification (语音服务 Dyvmsapi 2017-05-25): a text-to-speech call (SingleCallByTts), signed like
its SMS API, carrying our delivery id as OutId.

A placed call is not yet a delivered one: the send answers UNKNOWN with the CallId, and reconciliation asks
QueryCallDetailByCallId how the call ended — answered (listened to the end, or hung up while it played) is
delivered; busy, not answered, refused, unreachable or switched off is a failure (the relay moves on to the
fallback and the escalation chain keeps running). A call request that timed out has no CallId and cannot be
looked up: it goes to operator review, never redialled blindly.
"""

from __future__ import annotations

import json
import time

from relay.providers.aliyun import AliyunSms, aliyun_number
from relay.providers.base import Outbound, Outcome, Reconcile, ReconcileResult, SendResult

__all__ = ["AliyunVoice", "CALL_STATES"]

# QueryCallDetailByCallId "state" (呼叫结果状态码): answered, pending, or why nobody heard it.
ANSWERED = {"200000": "listened and hung up", "200001": "hung up while it played"}
PENDING = {"200101": "in progress", "": "no record yet"}
CALL_STATES = {
    "200002": "busy",
    "200003": "not answered",
    "200005": "refused",
    "200007": "out of service area",
    "200010": "switched off",
    "200011": "suspended",
    "200119": "call limit reached",
}
# ProdId of SingleCallByTts (voice verification code and TTS voice notification) in the call-detail query.
TTS_PROD_ID = "11010000138001"


class AliyunVoice(AliyunSms):
    sms = True

    async def send(self, msg: Outbound) -> SendResult:
        params = self._common("SingleCallByTts")
        params.update(
            CalledNumber=aliyun_number(msg.phone),
            TtsCode=self.option("tts_code"),
            TtsParam=json.dumps(dict(msg.params), ensure_ascii=False),
            PlayTimes=self.option("play_times") or "2",
            OutId=msg.delivery_id,
        )
        if self.option("called_show_number"):
            params["CalledShowNumber"] = self.option("called_show_number")
        answer = await self.post_rpc(params)
        if isinstance(answer, SendResult):
            return answer
        return SendResult(Outcome.UNKNOWN, "call placed; waiting for its outcome", ref=str(answer.get("CallId", "")))

    async def reconcile(self, msg: Outbound) -> ReconcileResult:
        if not msg.ref:
            return ReconcileResult(Reconcile.UNSUPPORTED, "the call request got no answer (no CallId): not redialled")
        params = self._common("QueryCallDetailByCallId")
        started = int(((msg.first_sent_at or time.time()) - 3600) * 1000)
        params.update(CallId=msg.ref, ProdId=TTS_PROD_ID, QueryDate=str(started))
        data = await self.query_rpc(params)
        if isinstance(data, ReconcileResult):
            return data
        try:
            detail = json.loads(data.get("Data") or "{}")
        except ValueError:
            detail = {}
        state = str(detail.get("state", "")) if isinstance(detail, dict) else ""
        if state in ANSWERED:
            return ReconcileResult(Reconcile.DELIVERED, f"answered ({ANSWERED[state]})")
        if state in PENDING:
            return ReconcileResult(Reconcile.PENDING, PENDING[state])
        return ReconcileResult(Reconcile.FAILED, f"call {state}: {CALL_STATES.get(state, detail.get('stateDesc', ''))}")
