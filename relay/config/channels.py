"""Channel sections: one schema per provider type, with defaults matching each provider's published limits."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

import yaml

from relay.config.model import CHANNEL_TYPES, SMS_TYPES, VOICE_TYPES, ChannelConfig, Person, QuietHours
from relay.config.nodes import Reader, Secret
from relay.config.roster import Roster

__all__ = ["parse_channel", "DEFAULT_RATE_LIMITS", "DEFAULT_TEMPLATE_PARAMS"]

# Provider limits, per destination (robot or phone number):
# - DingTalk custom robot: 20 messages per minute, then throttled for 10 minutes.
# - WeCom group robot: 20 messages per minute.
# - Feishu custom bot: 100 per minute and 5 per second.
# - SMS: our own per-person caps (cost and noise), below the providers' per-number flow control.
DEFAULT_RATE_LIMITS: dict[str, tuple[tuple[float, int], ...]] = {
    "dingtalk": ((60.0, 20),),
    "wecom": ((60.0, 20),),
    "feishu": ((1.0, 5), (60.0, 100)),
    "webhook": ((1.0, 50),),
    "aliyun_sms": ((60.0, 1), (3600.0, 5), (86400.0, 20)),
    "tencent_sms": ((60.0, 1), (3600.0, 5), (86400.0, 20)),
    "sms_gateway": ((60.0, 1), (3600.0, 5), (86400.0, 20)),
    "smpp": ((60.0, 1), (3600.0, 5), (86400.0, 20)),
    "gsm_modem": ((60.0, 1), (3600.0, 5), (86400.0, 20)),
    # A phone call per person: at most one in 5 minutes, 3 an hour, 10 a day.
    "aliyun_voice": ((300.0, 1), (3600.0, 3), (86400.0, 10)),
    "tencent_voice": ((300.0, 1), (3600.0, 3), (86400.0, 10)),
}

# Aliyun allows up to 35 characters per template variable in notification templates; Tencent Cloud's
# default for non-verification templates is shorter, so both default to a conservative 20.
DEFAULT_TEMPLATE_PARAMS: tuple[tuple[str, str], ...] = (
    ("status", "{{ status_zh }}"),
    ("alert", "{{ title }}"),
    ("target", "{{ place }}"),
    ("time", "{{ time }}"),
)

# A voice call says who, what and where in a few words (no URLs, no times read out): e.g. the TTS template
# "哨兵紧急告警：${place}，${alert}，请尽快处理。"
VOICE_TEMPLATE_PARAMS: tuple[tuple[str, str], ...] = (
    ("place", "{{ place }}"),
    ("alert", "{{ title }}"),
)

# Reminders for an alert that stays firing: SMS at most every 4 hours per person (cost, and sleep), chat
# robots at every Alertmanager repeat_interval (0: no extra spacing).
DEFAULT_REMINDER_SECONDS = {"sms": 4 * 3600.0, "im": 0.0}

# The largest message a provider takes, in UTF-8 bytes of the rendered text. WeCom documents 4096 bytes for
# markdown content; Feishu 20 KB for the whole request body (the card JSON around the text needs room);
# DingTalk answers over-long messages with an error, 20,000 bytes is the commonly quoted limit. SMS: the text
# of a generic gateway message, in characters: 5 concatenated segments of 67 UCS-2 characters.
DEFAULT_MESSAGE_LIMITS = {
    "dingtalk": 18000,
    "wecom": 4000,
    "feishu": 16000,
    "webhook": 65536,
    "aliyun_sms": 335,
    "tencent_sms": 335,
    "sms_gateway": 335,
    "smpp": 335,
    "gsm_modem": 335,
    "aliyun_voice": 335,
    "tencent_voice": 335,
}

_COMMON = (
    "type",
    "fallback",
    "severities",
    "send_resolved",
    "quiet_hours",
    "rate_limits",
    "description",
    "reminders",
    "reminder_interval_seconds",
    "max_message_bytes",
)
_SMS_COMMON = (
    "recipients",
    "per_recipient_hourly",
    "per_recipient_daily",
    "template_params",
    "max_param_chars",
)

# key -> kind: "str" (optional string), "str!" (required), "secret" (optional), "secret!" (required)
_SCHEMAS: dict[str, dict[str, str]] = {
    "dingtalk": {"base_url": "str", "access_token": "secret!", "secret": "secret"},
    "wecom": {"base_url": "str", "key": "secret!"},
    "feishu": {"base_url": "str", "hook_token": "secret!", "secret": "secret"},
    "webhook": {"url": "str!", "secret": "secret", "headers": "headers"},
    "aliyun_sms": {
        "base_url": "str",
        "access_key_id": "secret!",
        "access_key_secret": "secret!",
        "sign_name": "str!",
        "template_code": "str!",
        "region_id": "str",
    },
    "tencent_sms": {
        "base_url": "str",
        "secret_id": "secret!",
        "secret_key": "secret!",
        "sdk_app_id": "str!",
        "sign_name": "str!",
        "template_id": "str!",
        "region": "str",
    },
    "aliyun_voice": {
        "base_url": "str",
        "access_key_id": "secret!",
        "access_key_secret": "secret!",
        "tts_code": "str!",
        "called_show_number": "str",
        "play_times": "str",
        "region_id": "str",
    },
    "gsm_modem": {
        "port": "str!",
        "baudrate": "baud",
        "pin": "secret",
        "health_interval_seconds": "seconds",
        "delivery_reports": "bool",
    },
    "tencent_voice": {
        "base_url": "str",
        "secret_id": "secret!",
        "secret_key": "secret!",
        "voice_sdk_app_id": "str!",
        "template_id": "str!",
        "play_times": "str",
        "region": "str",
        "callback_token": "secret!",
    },
    "smpp": {
        "host": "str!",
        "port": "port",
        "system_id": "str!",
        "password": "secret!",
        "system_type": "str",
        "source_addr": "str!",
        "source_addr_ton": "byte",
        "source_addr_npi": "byte",
        "dest_addr_ton": "byte",
        "dest_addr_npi": "byte",
        "bind": "bind",
        "enquire_link_seconds": "seconds",
        "response_timeout_seconds": "seconds",
    },
    "sms_gateway": {
        "url": "str!",
        "method": "str",
        "headers": "headers",
        "body_template": "str!",
        "content_type": "str",
        "success_status": "ints",
        "success_field": "str",
        "success_value": "str",
        "secret": "secret",
    },
}

_DEFAULTS: dict[str, dict[str, object]] = {
    "dingtalk": {"base_url": "https://oapi.dingtalk.com/robot/send"},
    "wecom": {"base_url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"},
    "feishu": {"base_url": "https://open.feishu.cn/open-apis/bot/v2/hook/"},
    "webhook": {},
    "aliyun_sms": {"base_url": "https://dysmsapi.aliyuncs.com/", "region_id": "cn-hangzhou"},
    "aliyun_voice": {"base_url": "https://dyvmsapi.aliyuncs.com/", "region_id": "cn-hangzhou", "play_times": "2"},
    "tencent_voice": {"base_url": "https://vms.tencentcloudapi.com/", "region": "ap-guangzhou", "play_times": "2"},
    "tencent_sms": {"base_url": "https://sms.tencentcloudapi.com/", "region": "ap-guangzhou"},
    "sms_gateway": {"method": "POST", "content_type": "application/json", "success_status": [200]},
    "gsm_modem": {"baudrate": 115200, "health_interval_seconds": 60},
    # SMPP: source TON/NPI 0/0 (an SP number such as 106...), destination 0/1 (a national mobile number).
    "smpp": {
        "port": 2775,
        "bind": "transceiver",
        "source_addr_ton": 0,
        "source_addr_npi": 0,
        "dest_addr_ton": 0,
        "dest_addr_npi": 1,
        "enquire_link_seconds": 30,
        "response_timeout_seconds": 10,
    },
}

_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
SEVERITIES = ("critical", "warning", "info")


def _time(reader: Reader, node: yaml.Node, keypath: str) -> dt.time:
    raw = reader.string(node, keypath)
    match = _TIME.match(raw)
    if not match:
        raise reader.fail(node, keypath, f"expected HH:MM (24h), got '{raw}'")
    return dt.time(int(match.group(1)), int(match.group(2)))


def _quiet_hours(reader: Reader, node: yaml.Node, keypath: str) -> QuietHours:
    keys = reader.mapping(node, keypath, ("start", "end", "bypass_severities"), required=("start", "end"))
    bypass: tuple[str, ...] = ("critical",)
    if "bypass_severities" in keys:
        bypass = tuple(reader.strings(keys["bypass_severities"], f"{keypath}.bypass_severities"))
    start = _time(reader, keys["start"], f"{keypath}.start")
    end = _time(reader, keys["end"], f"{keypath}.end")
    if start == end:
        raise reader.fail(node, keypath, "start and end are equal; remove quiet_hours to disable it")
    return QuietHours(start, end, bypass)


def _rate_limits(reader: Reader, node: yaml.Node, keypath: str) -> tuple[tuple[float, int], ...]:
    out: list[tuple[float, int]] = []
    for i, item in enumerate(reader.sequence(node, keypath)):
        sub = f"{keypath}[{i}]"
        keys = reader.mapping(item, sub, ("window_seconds", "max"), required=("window_seconds", "max"))
        window = reader.number(keys["window_seconds"], f"{sub}.window_seconds", 0.01, 7 * 86400)
        out.append((window, reader.integer(keys["max"], f"{sub}.max", 1, 1_000_000)))
    return tuple(out)


def _template_params(reader: Reader, node: yaml.Node, keypath: str) -> tuple[tuple[str, str], ...]:
    """An ordered mapping: Aliyun uses the names, Tencent Cloud the order ({1}, {2}, ...)."""
    pairs = reader.free_mapping(node, keypath)
    if not pairs:
        raise reader.fail(node, keypath, "give at least one template parameter")
    return tuple((name, reader.string(value, f"{keypath}.{name}")) for name, value in pairs.items())


def _option(reader: Reader, kind: str, node: yaml.Node, keypath: str, secrets: dict[str, Secret], key: str) -> object:
    base = kind.rstrip("!")
    if base == "secret":
        secrets[key] = reader.secret(node, keypath)
        return None
    if base == "ints":
        items = reader.sequence(node, keypath)
        return [reader.integer(item, f"{keypath}[{i}]", 100, 599) for i, item in enumerate(items)]
    if base == "port":
        return reader.integer(node, keypath, 1, 65535)
    if base == "bool":
        return "true" if reader.boolean(node, keypath) else "false"
    if base == "baud":
        return reader.integer(node, keypath, 1200, 4_000_000)
    if base == "byte":
        return reader.integer(node, keypath, 0, 255)
    if base == "seconds":
        return reader.integer(node, keypath, 1, 3600)
    if base == "bind":
        return reader.choice(node, keypath, ("transceiver", "transmitter"))
    if base == "headers":
        headers: dict[str, str] = {}
        for name, item in reader.free_mapping(node, keypath).items():
            if isinstance(item, yaml.MappingNode):
                secrets[f"header:{name}"] = reader.secret(item, f"{keypath}.{name}")
            else:
                headers[name] = reader.string(item, f"{keypath}.{name}")
        return headers
    text = reader.string(node, keypath)
    if key in ("base_url", "url") and not _URL.match(text):
        raise reader.fail(node, keypath, f"'{text}' is not an http(s) URL")
    return text


def parse_channel(
    reader: Reader,
    name: str,
    node: yaml.Node,
    people: Mapping[str, Person],
    rosters: Mapping[str, Roster] | None = None,
    rosters_broken: bool = False,
) -> tuple[ChannelConfig, yaml.Node | None]:
    """`rosters_broken`: the rosters section had errors (already reported), so roster references are not
    checked again here."""
    keypath = f"channels.{name}"
    rosters = rosters or {}
    if not isinstance(node, yaml.MappingNode):
        raise reader.fail(node, keypath, "expected a mapping with at least 'type'")
    type_node = next((v for k, v in node.value if getattr(k, "value", None) == "type"), None)
    if type_node is None:
        raise reader.fail(node, keypath, f"missing required key 'type' (one of {', '.join(CHANNEL_TYPES)})")
    ctype = reader.choice(type_node, f"{keypath}.type", CHANNEL_TYPES)
    schema = _SCHEMAS[ctype]
    is_sms = ctype in SMS_TYPES
    allowed = _COMMON + tuple(schema) + (_SMS_COMMON if is_sms else ())
    required = tuple(k for k, kind in schema.items() if kind.endswith("!")) + (("recipients",) if is_sms else ())
    keys = reader.mapping(node, keypath, allowed, required)

    options: dict[str, object] = dict(_DEFAULTS[ctype])
    secrets: dict[str, Secret] = {}
    for key, kind in schema.items():
        if key in keys:
            value = _option(reader, kind, keys[key], f"{keypath}.{key}", secrets, key)
            if value is not None:
                options[key] = value

    if ctype == "smpp":
        # SMPP 3.4 field sizes (C-octet strings with their NUL): system_id 16, password 9, source_addr 21.
        for key, most in (("system_id", 15), ("source_addr", 20)):
            if len(str(options.get(key, ""))) > most:
                raise reader.fail(keys[key], f"{keypath}.{key}", f"at most {most} characters in SMPP 3.4")
        if "password" in secrets and len(secrets["password"].value) > 8:
            raise reader.fail(keys["password"], f"{keypath}.password", "at most 8 characters in SMPP 3.4")
    if ctype == "tencent_voice" and "callback_token" in secrets and len(secrets["callback_token"].value) < 16:
        raise reader.fail(
            keys["callback_token"],
            f"{keypath}.callback_token",
            "use at least 16 characters (it is the callback URL's only credential)",
        )
    recipients: list[Person] = []
    on_rosters: list[Roster] = []
    by_township = False
    if is_sms:
        for i, item in enumerate(reader.sequence(keys["recipients"], f"{keypath}.recipients")):
            who = reader.string(item, f"{keypath}.recipients[{i}]")
            if who == "on_duty":
                if not rosters_broken and not any("*" in r.townships for r in rosters.values()):
                    raise reader.fail(
                        item,
                        f"{keypath}.recipients[{i}]",
                        'on_duty needs a roster with townships: ["*"] for alerts from townships no roster lists',
                    )
                by_township = True
            elif who.startswith("roster:"):
                if rosters_broken:
                    continue
                if who[7:] not in rosters:
                    raise reader.fail(item, f"{keypath}.recipients[{i}]", f"'{who[7:]}' is not defined under rosters:")
                on_rosters.append(rosters[who[7:]])
            elif who not in people:
                raise reader.fail(item, f"{keypath}.recipients[{i}]", f"'{who}' is not defined under people:")
            else:
                recipients.append(people[who])
        if not recipients and not on_rosters and not by_township and not rosters_broken:
            raise reader.fail(keys["recipients"], f"{keypath}.recipients", "give at least one person or roster")

    severities: tuple[str, ...] | None = ("critical",) if is_sms else None
    if "severities" in keys:
        severities = tuple(reader.strings(keys["severities"], f"{keypath}.severities")) or None
    send_resolved = not is_sms
    if "send_resolved" in keys:
        send_resolved = reader.boolean(keys["send_resolved"], f"{keypath}.send_resolved")
    quiet = _quiet_hours(reader, keys["quiet_hours"], f"{keypath}.quiet_hours") if "quiet_hours" in keys else None

    limits = DEFAULT_RATE_LIMITS[ctype]
    if "rate_limits" in keys:
        limits = _rate_limits(reader, keys["rate_limits"], f"{keypath}.rate_limits")
    if is_sms and ("per_recipient_hourly" in keys or "per_recipient_daily" in keys):
        caps = dict((w, m) for w, m in limits)
        if "per_recipient_hourly" in keys:
            caps[3600.0] = reader.integer(keys["per_recipient_hourly"], f"{keypath}.per_recipient_hourly", 1, 1000)
        if "per_recipient_daily" in keys:
            caps[86400.0] = reader.integer(keys["per_recipient_daily"], f"{keypath}.per_recipient_daily", 1, 10000)
        limits = tuple(sorted(caps.items()))

    params: tuple[tuple[str, str], ...] = ()
    max_chars = 20
    if is_sms:
        params = VOICE_TEMPLATE_PARAMS if ctype in VOICE_TYPES else DEFAULT_TEMPLATE_PARAMS
        if "template_params" in keys:
            params = _template_params(reader, keys["template_params"], f"{keypath}.template_params")
        if "max_param_chars" in keys:
            max_chars = reader.integer(keys["max_param_chars"], f"{keypath}.max_param_chars", 1, 500)

    reminder: float | None = DEFAULT_REMINDER_SECONDS["sms" if is_sms else "im"]
    if "reminder_interval_seconds" in keys:
        reminder = reader.number(
            keys["reminder_interval_seconds"], f"{keypath}.reminder_interval_seconds", 0.0, 30 * 86400.0
        )
    if "reminders" in keys and not reader.boolean(keys["reminders"], f"{keypath}.reminders"):
        reminder = None
    limit = DEFAULT_MESSAGE_LIMITS[ctype]
    if "max_message_bytes" in keys:
        limit = reader.integer(keys["max_message_bytes"], f"{keypath}.max_message_bytes", 70, 1 << 20)

    fallback_node = keys.get("fallback")
    fallback = reader.string(fallback_node, f"{keypath}.fallback") if fallback_node is not None else None
    channel = ChannelConfig(
        name=name,
        type=ctype,
        options=options,
        secrets=secrets,
        recipients=tuple(recipients),
        severities=severities,
        send_resolved=send_resolved,
        quiet_hours=quiet,
        fallback=fallback,
        rate_limits=limits,
        template_params=params,
        max_param_chars=max_chars,
        reminder_interval=reminder,
        max_message_bytes=limit,
        rosters=tuple(on_rosters),
        on_duty=tuple(rosters.values()) if by_township else (),
    )
    return channel, fallback_node
