"""Each provider against a fake that is a real HTTP server on loopback and checks signatures."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.config import build_renderer, load_config
from relay.config.model import Config
from relay.providers import Outbound, Outcome, Provider, Reconcile, build_provider
from relay.templates import sanitize_sms
from tests.relay.relay_fakes import FakeProviders
from tests.relay.relay_testlib import config_text, write_secrets
from tests.support.prometheus import free_port


def _all_channels(tmp: Path, fakes: FakeProviders) -> Config:
    s = write_secrets(tmp)
    channels = f"""
  ding:
    type: dingtalk
    base_url: {fakes.url("/dingtalk/robot/send")}
    access_token: {{secret_file: {s}/ding_token}}
    secret: {{secret_file: {s}/ding_secret}}
  wecom:
    type: wecom
    base_url: {fakes.url("/wecom/send")}
    key: {{secret_file: {s}/wecom_key}}
  feishu:
    type: feishu
    base_url: {fakes.url("/feishu/hook/")}
    hook_token: {{secret_file: {s}/feishu_token}}
    secret: {{secret_file: {s}/feishu_secret}}
  hook:
    type: webhook
    url: {fakes.url("/webhook")}
    secret: {{secret_file: {s}/webhook_secret}}
  aliyun:
    type: aliyun_sms
    base_url: {fakes.url("/aliyun/")}
    access_key_id: {{secret_file: {s}/aliyun_id}}
    access_key_secret: {{secret_file: {s}/aliyun_secret}}
    sign_name: 哨兵
    template_code: SMS_0001
    recipients: [zhang]
  tencent:
    type: tencent_sms
    base_url: {fakes.url("/tencent/")}
    secret_id: {{secret_file: {s}/tencent_id}}
    secret_key: {{secret_file: {s}/tencent_key}}
    sdk_app_id: "1400000000"
    sign_name: 哨兵
    template_id: "100001"
    recipients: [zhang]
  gateway:
    type: sms_gateway
    url: {fakes.url("/gateway/send")}
    body_template: '{{"to": "{{{{ phone }}}}", "text": {{{{ text | tojson }}}}, "id": "{{{{ delivery_id }}}}"}}'
    success_field: code
    success_value: "0"
    recipients: [zhang]
"""
    routes = "\n  all:\n    channels: [ding, wecom, feishu, hook, aliyun, tencent, gateway]\n"
    path = tmp / "relay.yml"
    path.write_text(config_text(tmp, fakes, free_port(), channels=channels, routes=routes))
    return load_config(path)


SAMPLE = {
    "status": "firing",
    "labels": {"alertname": "DiskFull", "severity": "critical", "instance": "db1:9100"},
    "annotations": {"summary": "数据库服务器磁盘即将写满，请尽快清理 http://wiki.local/disk"},
    "startsAt": "2026-11-27T04:00:00Z",
    "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://prom/graph",
    "fingerprint": "abc",
}


def _send(config: Config, name: str, timeout: float = 2.0, reconcile: bool = False) -> Any:
    renderer = build_renderer(config)
    channel = config.channels[name]

    async def run() -> Any:
        async with httpx.AsyncClient(timeout=timeout) as client:
            provider: Provider = build_provider(channel, client, renderer)
            ctx = renderer.context([SAMPLE], name, "all")
            msg = Outbound(
                delivery_id="d-0001",
                title="t",
                markdown=renderer.render("im_markdown", ctx),
                text=sanitize_sms(renderer.render("sms_text", ctx), 300),
                params=[
                    (n, sanitize_sms(renderer.render_inline(e, ctx), channel.max_param_chars))
                    for n, e in channel.template_params
                ],
                phone="13800001234" if channel.is_sms else "",
                alerts=[SAMPLE],
                context=ctx,
                first_sent_at=1.0e9,
            )
            if reconcile:
                return await provider.reconcile(msg)
            return await provider.send(msg)

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("channel", "behaviour", "expected"),
    [
        ("ding", "ok", Outcome.SUCCESS),
        ("ding", "error:130101", Outcome.RATE_LIMITED),  # send too fast (20/min)
        ("ding", "error:310000", Outcome.PERMANENT),  # keyword / sign / IP check failed
        ("ding", "error:-1", Outcome.RETRY),  # system busy
        ("ding", "http:502", Outcome.RETRY),
        ("wecom", "ok", Outcome.SUCCESS),
        ("wecom", "error:45009", Outcome.RATE_LIMITED),  # api freq out of limit
        ("wecom", "error:93000", Outcome.PERMANENT),  # invalid webhook url
        ("feishu", "ok", Outcome.SUCCESS),
        ("feishu", "error:11232", Outcome.RATE_LIMITED),  # frequency limited
        ("feishu", "error:19024", Outcome.PERMANENT),  # keyword check failed
        ("hook", "ok", Outcome.SUCCESS),
        ("hook", "http:429", Outcome.RATE_LIMITED),
        ("hook", "http:400", Outcome.PERMANENT),
        ("hook", "http:503", Outcome.RETRY),
        ("aliyun", "ok", Outcome.SUCCESS),
        ("aliyun", "error:isv.BUSINESS_LIMIT_CONTROL", Outcome.RATE_LIMITED),
        ("aliyun", "error:isv.MOBILE_NUMBER_ILLEGAL", Outcome.PERMANENT),
        ("aliyun", "error:isp.SYSTEM_ERROR", Outcome.RETRY),
        ("aliyun", "http:502", Outcome.UNKNOWN),  # may have been accepted behind the gateway
        ("tencent", "ok", Outcome.SUCCESS),
        ("tencent", "error:LimitExceeded.PhoneNumberDailyLimit", Outcome.RATE_LIMITED),  # per-number status
        ("tencent", "error:FailedOperation.InsufficientBalanceInSmsPackage", Outcome.PERMANENT),
        ("tencent", "error:top.AuthFailure.SecretIdNotFound", Outcome.PERMANENT),  # Response.Error
        ("tencent", "error:InternalError.Timeout", Outcome.UNKNOWN),
        ("gateway", "ok", Outcome.SUCCESS),
        ("gateway", "error:E42", Outcome.PERMANENT),  # success predicate: code == "0"
    ],
)
def test_outcome_classification(
    tmp_path: Path, fakes: FakeProviders, channel: str, behaviour: str, expected: Outcome
) -> None:
    config = _all_channels(tmp_path, fakes)
    provider = {"ding": "dingtalk", "hook": "webhook"}.get(channel, channel)
    fakes.plan(provider, behaviour)
    result = _send(config, channel)
    assert result.outcome is expected, result
    got = fakes.got(provider) or fakes.got(provider + ":rejected")
    assert got and all(r.signature_ok for r in got), "the fake rejected our signature"


def test_timeout_is_retry_for_chat_but_unknown_for_sms(tmp_path: Path, fakes: FakeProviders) -> None:
    config = _all_channels(tmp_path, fakes)
    fakes.plan("dingtalk", "hang:1.5")
    assert _send(config, "ding", timeout=0.5).outcome is Outcome.RETRY
    fakes.plan("aliyun", "hang:1.5")
    assert _send(config, "aliyun", timeout=0.5).outcome is Outcome.UNKNOWN
    fakes.plan("gateway", "hang:1.5")
    assert _send(config, "gateway", timeout=0.5).outcome is Outcome.UNKNOWN


def test_refused_connection_is_retry_even_for_sms(tmp_path: Path, fakes: FakeProviders) -> None:
    config = _all_channels(tmp_path, fakes)
    dead = free_port()
    options = dict(config.channels["aliyun"].options, base_url=f"http://127.0.0.1:{dead}/")
    object.__setattr__(config.channels["aliyun"], "options", options)
    assert _send(config, "aliyun").outcome is Outcome.RETRY


def test_sms_parameters_are_short_and_carry_no_urls(tmp_path: Path, fakes: FakeProviders) -> None:
    config = _all_channels(tmp_path, fakes)
    _send(config, "aliyun")
    body = fakes.got("aliyun")[0].body
    params = json.loads(body["TemplateParam"])
    assert body["OutId"] == "d-0001" and body["PhoneNumbers"] == "13800001234"
    assert params["status"] == "告警"
    assert all(len(v) <= 20 and "http" not in v for v in params.values()), params
    _send(config, "tencent")
    tbody = fakes.got("tencent")[0].body
    assert tbody["SessionContext"] == "d-0001" and tbody["PhoneNumberSet"] == ["+8613800001234"]
    assert all(len(v) <= 20 and "http" not in v for v in tbody["TemplateParamSet"])


def test_reconcile_finds_our_delivery_id(tmp_path: Path, fakes: FakeProviders) -> None:
    config = _all_channels(tmp_path, fakes)
    assert _send(config, "aliyun", reconcile=True).status is Reconcile.ABSENT
    _send(config, "aliyun")
    assert _send(config, "aliyun", reconcile=True).status is Reconcile.DELIVERED
    assert _send(config, "tencent", reconcile=True).status is Reconcile.PENDING  # no receipt proves nothing
    _send(config, "tencent")
    assert _send(config, "tencent", reconcile=True).status is Reconcile.DELIVERED
    assert _send(config, "gateway", reconcile=True).status is Reconcile.UNSUPPORTED


def test_im_payloads(tmp_path: Path, fakes: FakeProviders) -> None:
    config = _all_channels(tmp_path, fakes)
    for name in ("ding", "wecom", "feishu", "hook"):
        assert _send(config, name).outcome is Outcome.SUCCESS
    ding = fakes.got("dingtalk")[0].body
    assert ding["msgtype"] == "markdown" and "数据库服务器磁盘" in ding["markdown"]["text"]
    assert "2026-11-27 12:00:00" in ding["markdown"]["text"]  # 04:00Z shown in Asia/Shanghai
    assert fakes.got("wecom")[0].body["msgtype"] == "markdown"
    card = fakes.got("feishu")[0].body["card"]
    assert card["elements"][0]["tag"] == "markdown"
    hook = fakes.got("webhook")[0]
    assert hook.headers["x-shaobing-delivery"] == "d-0001" and hook.body["alerts"][0]["fingerprint"] == "abc"
