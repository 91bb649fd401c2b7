"""The shipped relay config (deploy/central/relay.example.yml), made runnable on loopback for tests.

Rewritten: provider base URLs (to the loopback fakes), secret file paths and values (the fakes' test
secrets), the listen address, the store path, and the timers a test names in `timers` (as the
Alertmanager tests shorten group_wait). Channels, routes, people, budgets, severities, reminders,
fallbacks and the heartbeat section are exactly what ships.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.alerts.central import loopback_alertmanager_config
from tests.relay.relay_fakes import SECRETS, FakeProviders

REPO = Path(__file__).resolve().parents[2]
RELAY_EXAMPLE = REPO / "deploy" / "central" / "relay.example.yml"

# Which fake answers for which provider type, and which test secret stands in for which shipped one.
_BASE_URLS = {
    "dingtalk": "/dingtalk/robot/send",
    "wecom": "/wecom/send",
    "feishu": "/feishu/hook/",
    "aliyun_sms": "/aliyun/",
    "tencent_sms": "/tencent/",
}
_ENV = {
    "SHAOBING_DINGTALK_TOKEN": SECRETS["ding_token"],
    "SHAOBING_DINGTALK_SECRET": SECRETS["ding_secret"],
    "SHAOBING_WECOM_KEY": SECRETS["wecom_key"],
    "SHAOBING_FEISHU_HOOK": SECRETS["feishu_token"],
    "SHAOBING_FEISHU_SECRET": SECRETS["feishu_secret"],
}
_FILES = {
    "relay-token": SECRETS["bearer"],
    "ack-secret": "ack-signing-secret-for-tests-0123",
    "aliyun-ak-id": SECRETS["aliyun_id"],
    "aliyun-ak-secret": SECRETS["aliyun_secret"],
}


def shipped_relay_config(
    tmp: Path,
    fakes: FakeProviders,
    port: int,
    monkeypatch: pytest.MonkeyPatch,
    timers: Mapping[str, Any] | None = None,
) -> Path:
    """Write the loopback copy of relay.example.yml to tmp/relay.yml; `timers` maps a dotted path ("section.key",
    "routes.sms.escalation.after_minutes") to a value."""
    secrets = tmp / "secrets"
    secrets.mkdir(exist_ok=True)
    for name, value in _FILES.items():
        (secrets / name).write_text(value + "\n")
        (secrets / name).chmod(0o600)
    for name, value in _ENV.items():
        monkeypatch.setenv(name, value)
    text = RELAY_EXAMPLE.read_text(encoding="utf-8").replace("/etc/shaobing/", f"{secrets}/")
    doc = yaml.safe_load(text)
    doc["server"]["listen"] = f"127.0.0.1:{port}"
    doc["store"]["path"] = str(tmp / "relay.db")
    for channel in doc["channels"].values():
        channel["base_url"] = fakes.url(_BASE_URLS[channel["type"]])
    for dotted, value in (timers or {}).items():
        *path, key = dotted.split(".")
        node = doc
        for part in path:
            assert part in node, f"{dotted}: {part} is not in the shipped config"
            node = node[part]
        node[key] = value
    path = tmp / "relay.yml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def shipped_alertmanager_config(relay_url: str, token_file: Path, timers: Mapping[str, str]) -> str:
    """deploy/central/alertmanager.yml on loopback; `timers` (group_wait, group_interval, repeat_interval)
    replace the shipped values on the root and on every child route that sets its own."""
    doc = yaml.safe_load(loopback_alertmanager_config(relay_url, token_file))
    for route in [doc["route"], *doc["route"].get("routes", [])]:
        for key, value in timers.items():
            if route is doc["route"] or key in route:
                route[key] = value
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
