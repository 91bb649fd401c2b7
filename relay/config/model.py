"""The relay configuration as typed, validated objects."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from relay.config.nodes import Secret

if TYPE_CHECKING:
    from relay.config.roster import Roster

__all__ = [
    "AuthConfig",
    "ChannelConfig",
    "Config",
    "DeliveryConfig",
    "Person",
    "QuietHours",
    "RouteConfig",
    "EscalationConfig",
    "AcknowledgeConfig",
    "ServerConfig",
    "StoreConfig",
    "HeartbeatConfig",
    "LinksConfig",
    "SMS_TYPES",
    "IM_TYPES",
    "CHANNEL_TYPES",
]

# Channels that reach a person's phone (recipients are people; sends are not idempotent): SMS, and voice calls.
SMS_TYPES = ("aliyun_sms", "tencent_sms", "sms_gateway", "smpp", "gsm_modem", "aliyun_voice", "tencent_voice")
VOICE_TYPES = ("aliyun_voice", "tencent_voice")
IM_TYPES = ("dingtalk", "wecom", "feishu", "webhook")
CHANNEL_TYPES = IM_TYPES + SMS_TYPES


@dataclass(frozen=True)
class AuthConfig:
    bearer_tokens: tuple[Secret, ...] = ()
    basic: tuple[tuple[str, Secret], ...] = ()
    allow_unauthenticated: bool = False


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 10131
    max_body_bytes: int = 1 << 20
    auth: AuthConfig = field(default_factory=AuthConfig)


@dataclass(frozen=True)
class StoreConfig:
    path: Path = Path("relay.db")
    synchronous: str = "full"


@dataclass(frozen=True)
class DeliveryConfig:
    max_attempts: int = 10
    backoff_initial_seconds: float = 5.0
    backoff_max_seconds: float = 600.0
    jitter: float = 0.2
    request_timeout_seconds: float = 10.0
    reconcile_delay_seconds: float = 60.0
    reconcile_grace_seconds: float = 300.0
    reconcile_give_up_seconds: float = 3600.0
    digest_max_items: int = 30
    concurrency: int = 8
    poll_interval_seconds: float = 1.0
    # A notice seen again within this time is a duplicate even when its whole group is unchanged (HA pairs,
    # webhook retries); after it, an unchanged group is Alertmanager's repeat_interval: a reminder.
    # Keep it below the shortest repeat_interval of the routes that post here.
    duplicate_window_seconds: float = 300.0


@dataclass(frozen=True)
class QuietHours:
    start: dt.time
    end: dt.time
    bypass_severities: tuple[str, ...] = ("critical",)

    def active(self, local: dt.datetime) -> bool:
        now = local.time()
        if self.start <= self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def end_after(self, local: dt.datetime) -> dt.datetime:
        """The first local time >= `local` at which quiet hours are over."""
        candidate = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if candidate <= local:
            candidate += dt.timedelta(days=1)
        return candidate


@dataclass(frozen=True)
class Person:
    key: str
    name: str
    phone: str


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    type: str
    options: Mapping[str, object]
    secrets: Mapping[str, Secret]
    recipients: tuple[Person, ...] = ()
    severities: tuple[str, ...] | None = None
    send_resolved: bool = True
    quiet_hours: QuietHours | None = None
    fallback: str | None = None
    # (window seconds, max sends) per destination: per robot for IM, per recipient for SMS.
    rate_limits: tuple[tuple[float, int], ...] = ()
    template_params: tuple[tuple[str, str], ...] = ()
    max_param_chars: int = 20
    # Least seconds between two reminders of one alert on this channel; None: no reminders at all.
    reminder_interval: float | None = 0.0
    # Size limit of one rendered message (UTF-8 bytes for chat; characters of the text for SMS).
    max_message_bytes: int = 4000
    # Recipients on duty: named rosters ("roster:NAME"), and with "on_duty" every roster, one of which is
    # chosen by the alert's township label (relay/config/roster.py).
    rosters: tuple[Roster, ...] = ()
    on_duty: tuple[Roster, ...] = ()

    def reminder_gap(self) -> float | None:
        return self.reminder_interval

    @property
    def is_sms(self) -> bool:
        return self.type in SMS_TYPES

    def destinations(self, at: float, labels: Mapping[str, str] | None = None) -> list[str]:
        """Recipient keys at time `at`: people for SMS (fixed ones, then whoever is on duty for the alert's
        township), a single '' for a chat robot or webhook."""
        if not self.is_sms:
            return [""]
        from relay.config.roster import roster_for

        keys = [p.key for p in self.recipients]
        keys += [roster.on_duty(at)[0].key for roster in self.rosters]
        if self.on_duty:
            roster = roster_for({r.key: r for r in self.on_duty}, str((labels or {}).get("township", "")))
            if roster is not None:
                keys.append(roster.on_duty(at)[0].key)
        return list(dict.fromkeys(keys))

    def everyone(self) -> tuple[Person, ...]:
        """Every person this channel can ever send to (rate limits are set up for each)."""
        seen = {p.key: p for p in self.recipients}
        for roster in (*self.rosters, *self.on_duty):
            for p in roster.people:
                seen.setdefault(p.key, p)
        return tuple(seen.values())

    def all_destinations(self) -> list[str]:
        return [p.key for p in self.everyone()] if self.is_sms else [""]

    def person(self, key: str) -> Person | None:
        return next((p for p in self.everyone() if p.key == key), None)


@dataclass(frozen=True)
class EscalationConfig:
    """Unacknowledged after `after_seconds` -> the next level's channels, then the next (relay/oncall.py)."""

    after_seconds: float
    levels: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class RouteConfig:
    name: str
    channels: tuple[str, ...]
    escalation: EscalationConfig | None = None


@dataclass(frozen=True)
class AcknowledgeConfig:
    """Signed acknowledgement links and the Alertmanager silences they create."""

    public_url: str
    secret: Secret
    alertmanagers: tuple[str, ...]
    link_valid_seconds: float = 24 * 3600.0
    silence_hours: tuple[int, ...] = (4, 1, 24)  # the first is the default choice
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class HeartbeatConfig:
    """The dead man's switch: an always-firing alert (ShaobingWatchdog) posted to `route` by every
    Alertmanager; a source (the value of `source_label`) silent for `timeout_seconds` is announced on
    `channels`, and again when it is back."""

    route: str
    channels: tuple[str, ...]
    source_label: str = "prometheus"
    timeout_seconds: float = 600.0
    restart_grace_seconds: float = 120.0
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class LinksConfig:
    """Where an operator sees what a digest left out (else the Alertmanager URL from the webhook)."""

    alertmanager: str = ""
    grafana: str = ""


@dataclass(frozen=True)
class Config:
    path: Path
    server: ServerConfig
    store: StoreConfig
    delivery: DeliveryConfig
    timezone: str
    people: dict[str, Person]
    channels: dict[str, ChannelConfig]
    routes: dict[str, RouteConfig]
    templates: dict[str, str]
    heartbeat: HeartbeatConfig | None = None
    links: LinksConfig = field(default_factory=LinksConfig)
    rosters: Mapping[str, Roster] = field(default_factory=dict)
    acknowledge: AcknowledgeConfig | None = None
