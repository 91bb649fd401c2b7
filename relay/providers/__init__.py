"""Providers: one small class per service, each over an injected httpx client and a configurable base URL."""

from __future__ import annotations

import httpx

from relay.config.model import ChannelConfig
from relay.providers.aliyun import AliyunSms
from relay.providers.aliyun_voice import AliyunVoice
from relay.providers.base import Outbound, Outcome, Provider, Reconcile, ReconcileResult, SendResult
from relay.providers.dingtalk import DingTalk
from relay.providers.feishu import Feishu
from relay.providers.gsm_modem import GsmModemProvider
from relay.providers.smpp import Smpp
from relay.providers.sms_gateway import SmsGateway
from relay.providers.tencent import TencentSms
from relay.providers.tencent_voice import TencentVoice
from relay.providers.webhook import Webhook
from relay.providers.wecom import WeCom
from relay.templates import Renderer

__all__ = [
    "Outbound",
    "Outcome",
    "Provider",
    "Reconcile",
    "ReconcileResult",
    "SendResult",
    "PROVIDERS",
    "build_provider",
]

PROVIDERS: dict[str, type[Provider]] = {
    "dingtalk": DingTalk,
    "wecom": WeCom,
    "feishu": Feishu,
    "webhook": Webhook,
    "aliyun_sms": AliyunSms,
    "aliyun_voice": AliyunVoice,
    "tencent_sms": TencentSms,
    "tencent_voice": TencentVoice,
    "sms_gateway": SmsGateway,
    "smpp": Smpp,
    "gsm_modem": GsmModemProvider,
}


def build_provider(channel: ChannelConfig, client: httpx.AsyncClient, renderer: Renderer) -> Provider:
    provider = PROVIDERS[channel.type](channel, client)
    if isinstance(provider, SmsGateway):
        provider.renderer = renderer
    return provider
