"""Fake providers as a real HTTP server on 127.0.0.1 (ephemeral port).

Each fake checks the request the way the real service does (signatures re-implemented here from the
providers' documents, independently of relay/), records it, and answers with a scripted behaviour:
"ok", "error:<code>" (body-level error), "http:<status>", "hang:<seconds>" (accept, then answer late),
"slow:<seconds>" (wait, then accept and answer).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRETS = {
    "ding_token": "ding-access-token",
    "ding_secret": "SECdingtalk-secret",
    "wecom_key": "wecom-key-123",
    "feishu_token": "feishu-hook-token",
    "feishu_secret": "feishu-secret",
    "webhook_secret": "webhook-secret",
    "aliyun_id": "LTAItestid",
    "aliyun_secret": "aliyun-test-secret",
    "tencent_id": "AKIDtestid",
    "tencent_key": "tencent-test-key",
    "bearer": "am-bearer-token",
}


@dataclass
class Received:
    provider: str
    body: Any
    headers: dict[str, str]
    at: float
    signature_ok: bool
    query: dict[str, str] = field(default_factory=dict)


def _aliyun_expected(params: dict[str, str], secret: str) -> str:
    enc = lambda s: urllib.parse.quote(s, safe="~")  # noqa: E731
    canonical = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
    sts = "POST&%2F&" + enc(canonical)
    return base64.b64encode(hmac.new((secret + "&").encode(), sts.encode(), hashlib.sha1).digest()).decode()


def _tencent_ok(headers: dict[str, str], body: bytes) -> bool:
    auth = headers.get("authorization", "")
    try:
        _, rest = auth.split(" ", 1)
        parts = dict(p.strip().split("=", 1) for p in rest.split(","))
        secret_id, date, service, _ = parts["Credential"].split("/")
    except (ValueError, KeyError):
        return False
    if secret_id != SECRETS["tencent_id"]:
        return False
    ts = headers.get("x-tc-timestamp", "0")
    ch = f"content-type:{headers.get('content-type', '')}\nhost:{headers.get('host', '')}\n"
    canonical = f"POST\n/\n\n{ch}\ncontent-type;host\n{hashlib.sha256(body).hexdigest()}"
    sts = f"TC3-HMAC-SHA256\n{ts}\n{date}/{service}/tc3_request\n{hashlib.sha256(canonical.encode()).hexdigest()}"

    def h(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    key = h(h(h(("TC3" + SECRETS["tencent_key"]).encode(), date), service), "tc3_request")
    return hmac.compare_digest(parts["Signature"], hmac.new(key, sts.encode(), hashlib.sha256).hexdigest())


class FakeProviders:
    def __init__(self, port: int = 0) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.behaviours: dict[str, deque[str]] = {}
        self.default: dict[str, str] = {}
        self.aliyun_records: list[dict[str, Any]] = []
        # Aliyun voice: how each placed call ends (QueryCallDetailByCallId "state"), in order; default answered.
        self.call_states: deque[str] = deque()
        self.calls: dict[str, str] = {}  # CallId -> its final state
        self.tencent_receipts: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakeProviders:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def plan(self, provider: str, *behaviours: str) -> None:
        with self.lock:
            self.behaviours.setdefault(provider, deque()).extend(behaviours)

    def got(self, provider: str, query_only: bool = False) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.provider == provider]

    def _next(self, provider: str) -> str:
        with self.lock:
            queue = self.behaviours.get(provider)
            return queue.popleft() if queue else self.default.get(provider, "ok")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                split = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(split.query))
                headers = {k.lower(): v for k, v in self.headers.items()}
                path = split.path
                provider = path.strip("/").split("/")[0]
                action = ""
                if provider == "wecom" and path.endswith("/upload_media"):
                    self._wecom_upload(query, headers, raw)
                    return
                if provider in ("aliyun", "aliyunvoice"):
                    body: Any = dict(urllib.parse.parse_qsl(raw.decode()))
                    action = body.get("Action", "")
                elif provider in ("dingtalk", "wecom", "feishu", "webhook", "tencent", "gateway", "tencentvoice"):
                    body = json.loads(raw or b"{}")
                    action = headers.get("x-tc-action", "")
                else:
                    self._reply(404, {"error": "no such fake"})
                    return
                sig = self._verify(provider, path, query, headers, raw, body)
                behaviour = "ok"
                if action not in ("QuerySendDetails", "PullSmsSendStatusByPhoneNumber", "QueryCallDetailByCallId"):
                    behaviour = fake._next(provider)
                if behaviour.startswith("slow:"):
                    time.sleep(float(behaviour.split(":", 1)[1]))
                    behaviour = "ok"
                if behaviour.startswith("http:"):
                    with fake.lock:
                        fake.received.append(Received(provider + ":rejected", body, headers, time.time(), sig, query))
                    self._reply(int(behaviour.split(":", 1)[1]), {"error": "scripted"})
                    return
                with fake.lock:
                    if action not in ("QuerySendDetails", "PullSmsSendStatusByPhoneNumber", "QueryCallDetailByCallId"):
                        fake.received.append(Received(provider, body, headers, time.time(), sig, query))
                    elif action == "QueryCallDetailByCallId":
                        fake.received.append(Received("aliyunvoice:query", body, headers, time.time(), sig, query))
                answer = self._answer(provider, action, behaviour, body, sig)
                if behaviour.startswith("hang:"):
                    time.sleep(float(behaviour.split(":", 1)[1]))
                try:
                    self._reply(200 if provider != "webhook" or sig else 401, answer)
                except OSError:
                    pass

            def _wecom_upload(self, query: dict[str, str], headers: dict[str, str], raw: bytes) -> None:
                """WeCom robot upload_media: multipart/form-data with one part named "media" (with filename),
                ?key=...&type=file; answers a media_id that a later {"msgtype": "file"} message refers to."""
                head = f"Content-Type: {headers.get('content-type', '')}\r\n\r\n".encode()
                msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
                parts = list(msg.iter_parts()) if msg.is_multipart() else []
                media = [p for p in parts if p.get_param("name", header="content-disposition") == "media"]
                ok = query.get("key") == SECRETS["wecom_key"] and query.get("type") == "file" and len(media) == 1
                body: dict[str, Any] = {}
                if media:
                    body = {"filename": media[0].get_filename(), "content": media[0].get_payload(decode=True)}
                with fake.lock:
                    fake.received.append(Received("wecom:upload", body, headers, time.time(), ok, query))
                    media_id = f"media-{len(fake.received)}"
                if not ok:
                    self._reply(200, {"errcode": 40058, "errmsg": "invalid upload"})
                    return
                self._reply(
                    200, {"errcode": 0, "errmsg": "ok", "type": "file", "media_id": media_id, "created_at": "1"}
                )

            def _verify(
                self, provider: str, path: str, query: dict[str, str], headers: dict[str, str], raw: bytes, body: Any
            ) -> bool:
                if provider == "dingtalk":
                    ts, secret = query.get("timestamp", ""), SECRETS["ding_secret"]
                    mac = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
                    fresh = abs(time.time() * 1000 - int(ts or 0)) < 3600_000
                    return (
                        query.get("access_token") == SECRETS["ding_token"]
                        and fresh
                        and query.get("sign") == base64.b64encode(mac).decode()
                    )
                if provider == "wecom":
                    return query.get("key") == SECRETS["wecom_key"]
                if provider == "feishu":
                    ts = str(body.get("timestamp", ""))
                    key = f"{ts}\n{SECRETS['feishu_secret']}".encode()
                    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
                    return path.endswith("/" + SECRETS["feishu_token"]) and body.get("sign") == expected
                if provider == "webhook":
                    ts = headers.get("x-shaobing-timestamp", "")
                    mac = hmac.new(SECRETS["webhook_secret"].encode(), ts.encode() + b"." + raw, hashlib.sha256)
                    return headers.get("x-shaobing-signature") == "sha256=" + mac.hexdigest()
                if provider in ("aliyun", "aliyunvoice"):
                    params = {k: v for k, v in body.items() if k != "Signature"}
                    return params.get("AccessKeyId") == SECRETS["aliyun_id"] and body.get(
                        "Signature"
                    ) == _aliyun_expected(params, SECRETS["aliyun_secret"])
                if provider == "tencent":
                    return _tencent_ok(headers, raw)
                if provider == "tencentvoice":
                    scope = headers.get("authorization", "").split("Credential=")[-1].split(",")[0]
                    return (
                        _tencent_ok(headers, raw)
                        and scope.endswith("/vms/tc3_request")
                        and (headers.get("x-tc-version") == "2020-09-02")
                    )
                return True

            def _voice(self, action: str, code: str, body: dict[str, str], sig: bool) -> Any:
                """Dyvmsapi: SingleCallByTts places a call (needs CalledNumber, TtsCode, a JSON TtsParam);
                QueryCallDetailByCallId (CallId, ProdId, QueryDate in ms) reports how it ended, in Data as a
                JSON string, as the real API does."""
                if not sig:
                    return {"Code": "SignatureDoesNotMatch", "Message": "signature mismatch"}
                if action == "SingleCallByTts":
                    if code:
                        return {"Code": code, "Message": "scripted", "RequestId": "r"}
                    json.loads(body["TtsParam"])
                    assert body.get("CalledNumber") and body.get("TtsCode") and body.get("OutId")
                    with fake.lock:
                        call_id = f"1160{len(fake.calls) + 1:08d}^1028{len(fake.calls) + 1:06d}"
                        fake.calls[call_id] = fake.call_states.popleft() if fake.call_states else "200000"
                    return {"Code": "OK", "Message": "OK", "CallId": call_id, "RequestId": "r"}
                if action == "QueryCallDetailByCallId":
                    assert body.get("ProdId") and body.get("QueryDate", "").isdigit()
                    with fake.lock:
                        state = fake.calls.get(body.get("CallId", ""))
                    if state is None:
                        return {"Code": "OK", "Message": "OK", "Data": None, "RequestId": "r"}
                    data = {"callId": body["CallId"], "state": state, "stateDesc": "scripted", "duration": 20}
                    return {"Code": "OK", "Message": "OK", "Data": json.dumps(data), "RequestId": "r"}
                return {"Code": "InvalidAction", "Message": action}

            def _answer(self, provider: str, action: str, behaviour: str, body: Any, sig: bool) -> Any:
                code = behaviour.split(":", 1)[1] if behaviour.startswith("error:") else ""
                if provider == "tencentvoice":
                    # SendTtsVoice: TemplateId, TemplateParamSet, CalledNumber (E.164), VoiceSdkAppid.
                    if not sig:
                        return {
                            "Response": {
                                "Error": {"Code": "AuthFailure.SignatureFailure", "Message": "bad"},
                                "RequestId": "r",
                            }
                        }
                    if code:
                        return {"Response": {"Error": {"Code": code, "Message": "scripted"}, "RequestId": "r"}}
                    assert action == "SendTtsVoice" and body["CalledNumber"].startswith("+")
                    assert body["TemplateId"] and body["VoiceSdkAppid"] and isinstance(body["TemplateParamSet"], list)
                    with fake.lock:
                        call_id = f"tc-call-{len(fake.calls) + 1}"
                        fake.calls[call_id] = "pending"
                    return {
                        "Response": {
                            "SendStatus": {"CallId": call_id, "SessionContext": body["SessionContext"]},
                            "RequestId": "r",
                        }
                    }
                if provider in ("dingtalk", "wecom"):
                    if not sig:
                        return {"errcode": 310000 if provider == "dingtalk" else 93000, "errmsg": "sign not match"}
                    return {"errcode": int(code or 0), "errmsg": "scripted" if code else "ok"}
                if provider == "feishu":
                    if not sig:
                        return {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}
                    return {"code": int(code or 0), "msg": "scripted" if code else "success", "data": {}}
                if provider in ("webhook", "gateway"):
                    return {"ok": not code, "code": code or "0"}
                if provider == "aliyunvoice":
                    return self._voice(action, code, body, sig)
                if provider == "aliyun":
                    if not sig:
                        return {"Code": "SignatureDoesNotMatch", "Message": "signature mismatch"}
                    if action == "QuerySendDetails":
                        with fake.lock:
                            found = [r for r in fake.aliyun_records if r["PhoneNum"] == body.get("PhoneNumber")]
                        return {
                            "Code": "OK",
                            "TotalCount": len(found),
                            "SmsSendDetailDTOs": {"SmsSendDetailDTO": found},
                        }
                    if code:
                        return {"Code": code, "Message": "scripted", "RequestId": "r"}
                    with fake.lock:
                        fake.aliyun_records.append(
                            {
                                "PhoneNum": body.get("PhoneNumbers"),
                                "OutId": body.get("OutId"),
                                "SendStatus": 3,
                                "ErrCode": "DELIVERED",
                            }
                        )
                    return {"Code": "OK", "Message": "OK", "BizId": f"biz-{len(fake.aliyun_records)}", "RequestId": "r"}
                if provider == "tencent":
                    if not sig:
                        return {"Response": {"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "bad"}}}
                    if action == "PullSmsSendStatusByPhoneNumber":
                        with fake.lock:
                            found = [r for r in fake.tencent_receipts if r["PhoneNumber"] == body.get("PhoneNumber")]
                        return {"Response": {"PullSmsSendStatusSet": found, "RequestId": "r"}}
                    if code.startswith("top."):
                        return {"Response": {"Error": {"Code": code[4:], "Message": "scripted"}, "RequestId": "r"}}
                    phone = (body.get("PhoneNumberSet") or [""])[0]
                    if not code:
                        with fake.lock:
                            fake.tencent_receipts.append(
                                {
                                    "PhoneNumber": phone,
                                    "SessionContext": body.get("SessionContext"),
                                    "ReportStatus": "SUCCESS",
                                }
                            )
                    return {
                        "Response": {
                            "SendStatusSet": [
                                {
                                    "SerialNo": "sn-1",
                                    "PhoneNumber": phone,
                                    "Fee": 1,
                                    "SessionContext": body.get("SessionContext"),
                                    "Code": code or "Ok",
                                    "Message": "scripted" if code else "send success",
                                    "IsoCode": "CN",
                                }
                            ],
                            "RequestId": "r",
                        }
                    }
                return {}

        return Handler
