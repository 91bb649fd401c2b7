"""Reading an Alertmanager webhook (payload version 4) and planning the outbox messages for it.

Parsing is strict about shape and lenient about content: anything that is not the documented
structure is a 400 with a reason, never an exception that becomes a 500.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from relay.config.model import ChannelConfig, Config
from relay.oncall import OncallUpdate
from relay.store import NewMessage, Notice, Webhook

__all__ = [
    "PayloadError",
    "parse_payload",
    "dedup_key",
    "group_key",
    "firing_set",
    "build_webhook",
    "plan_messages",
    "plan_channel",
    "dest_key",
]

MAX_ALERTS = 10000
STATUSES = ("firing", "resolved")


class PayloadError(ValueError):
    """The request body is not a usable Alertmanager webhook; the message is the 400 reason."""


def _str_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise PayloadError(f"{where}: expected an object with string values")
    return dict(value)


def _opt_str(alert: Mapping[str, Any], key: str, where: str) -> str:
    value = alert.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PayloadError(f"{where}.{key}: expected a string")
    return value


def _fingerprint(labels: Mapping[str, str]) -> str:
    text = json.dumps(sorted(labels.items()), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_payload(body: bytes) -> list[dict[str, Any]]:
    """Return normalized alerts (each carrying groupKey and receiver) or raise PayloadError."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise PayloadError("invalid JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError("expected a JSON object (Alertmanager webhook payload)")
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("'alerts' must be a list")
    if len(alerts) > MAX_ALERTS:
        raise PayloadError(f"too many alerts in one request ({len(alerts)} > {MAX_ALERTS})")
    group_key = _opt_str(data, "groupKey", "payload")
    group_labels = _str_map(data.get("groupLabels") or {}, "payload.groupLabels")
    receiver = _opt_str(data, "receiver", "payload")
    external_url = _opt_str(data, "externalURL", "payload")
    out: list[dict[str, Any]] = []
    for i, alert in enumerate(alerts):
        where = f"alerts[{i}]"
        if not isinstance(alert, dict):
            raise PayloadError(f"{where}: expected an object")
        status = alert.get("status")
        if status not in STATUSES:
            raise PayloadError(f"{where}.status: expected 'firing' or 'resolved'")
        labels = _str_map(alert.get("labels"), f"{where}.labels")
        annotations = _str_map(alert.get("annotations") or {}, f"{where}.annotations")
        starts_at = _opt_str(alert, "startsAt", where)
        if not starts_at:
            raise PayloadError(f"{where}.startsAt: missing")
        normalized = {
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": starts_at,
            "endsAt": _opt_str(alert, "endsAt", where),
            "generatorURL": _opt_str(alert, "generatorURL", where),
            "fingerprint": _opt_str(alert, "fingerprint", where) or _fingerprint(labels),
            "groupKey": group_key,
            "receiver": receiver,
            "externalURL": external_url,
            "groupLabels": group_labels,
        }
        out.append(normalized)
    try:
        json.dumps(out, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise PayloadError("strings must be valid Unicode (found a lone surrogate)") from None
    return out


def _digest(parts: Sequence[str]) -> str:
    """128 bits of SHA-256 over length-prefixed parts (unambiguous whatever the parts contain)."""
    text = "".join(f"{len(p)}:{p}" for p in parts)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def dedup_key(route: str, alert: Mapping[str, Any]) -> str:
    """(route, receiver, groupKey, fingerprint, status, startsAt).

    Alertmanager resends whole groups and HA pairs both send: those collapse. The route and receiver are
    part of the key because Alertmanager posts the same group (same groupKey) to every receiver whose route
    matches -- the SMS and the IM receiver of a critical alert -- and each of them must deliver.
    """
    return _digest(
        [route, alert["receiver"], alert["groupKey"], alert["fingerprint"], alert["status"], alert["startsAt"]]
    )


def group_key(route: str, alert: Mapping[str, Any]) -> str:
    return _digest([route, alert["receiver"], alert["groupKey"]])


def firing_set(alerts: Sequence[Mapping[str, Any]]) -> str:
    """What Alertmanager compares to decide whether a group changed: its firing alerts."""
    return _digest(sorted(f"{a['fingerprint']}@{a['startsAt']}" for a in alerts if a["status"] == "firing"))


def dest_key(channel: str, recipient: str) -> str:
    return f"{channel}/{recipient}" if recipient else channel


def plan_channel(channel: ChannelConfig, alert: Mapping[str, Any], now: float, zone: ZoneInfo) -> list[NewMessage]:
    """Which of this channel's destinations get the alert, and when (quiet hours defer, never drop)."""
    status = str(alert.get("status", ""))
    severity = str(dict(alert.get("labels") or {}).get("severity", ""))
    if status == "resolved" and not channel.send_resolved:
        return []
    if channel.severities is not None and severity not in channel.severities:
        return []
    next_at = now
    quiet = channel.quiet_hours
    if quiet is not None and severity not in quiet.bypass_severities:
        local = dt.datetime.fromtimestamp(now, zone)
        if quiet.active(local):
            next_at = quiet.end_after(local).timestamp()
    held = next_at > now
    labels = dict(alert.get("labels") or {})
    return [
        NewMessage(channel.name, r, dest_key(channel.name, r), next_at, held) for r in channel.destinations(now, labels)
    ]


def plan_messages(config: Config, route: str, alert: Mapping[str, Any], now: float) -> list[NewMessage]:
    zone = ZoneInfo(config.timezone)
    messages: list[NewMessage] = []
    for name in config.routes[route].channels:
        messages.extend(plan_channel(config.channels[name], alert, now, zone))
    return messages


def build_webhook(config: Config, route: str, alerts: Sequence[dict[str, Any]], now: float) -> Webhook:
    """One parsed request -> what the store needs: notices with their planned messages and the group's state."""
    notices = [Notice(dedup_key(route, a), a, plan_messages(config, route, a, now)) for a in alerts]
    first = alerts[0] if alerts else {"receiver": "", "groupKey": ""}
    gaps = {name: config.channels[name].reminder_gap() for name in config.routes[route].channels}
    oncall = None
    escalation = config.routes[route].escalation
    if config.acknowledge is not None or escalation is not None:
        # The incident is the group's critical alerts firing now; none left (resolved) ends it.
        critical = [a for a in alerts if a["status"] == "firing" and a["labels"].get("severity") == "critical"]
        labels = first.get("groupLabels")
        oncall = OncallUpdate(
            key=group_key(route, first),
            route=route,
            group_labels=dict(labels) if isinstance(labels, dict) else {},
            firing=critical,
            escalate_after=escalation.after_seconds if escalation is not None else None,
        )
    return Webhook(
        route=route,
        group=group_key(route, first),
        firing=firing_set(alerts),
        notices=notices,
        reminder_gaps=gaps,
        duplicate_window=config.delivery.duplicate_window_seconds,
        oncall=oncall,
    )
