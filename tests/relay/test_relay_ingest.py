"""The ingest endpoint: auth, limits, validation, dedup, storage failure -> 503, and a fuzz run."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.app import create_app
from relay.config import load_config
from relay.config.model import Config
from relay.metrics import Metrics
from relay.store import Store
from tests.relay.relay_fakes import SECRETS, FakeProviders
from tests.relay.relay_testlib import alert, config_text, payload

AUTH = {"Authorization": f"Bearer {SECRETS['bearer']}"}
# What Alertmanager sends with every webhook (notify/webhook: Content-Type application/json).
AUTH_JSON = {**AUTH, "Content-Type": "application/json"}


class SyncClient:
    """A synchronous face over httpx.ASGITransport (the app in-process, no sockets)."""

    def __init__(self, app: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://relay")

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.post(url, **kwargs))

    def get(self, url: str) -> httpx.Response:
        return self.loop.run_until_complete(self.client.get(url))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


class Relay:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store(config.store.path)
        self.metrics = Metrics(config.channels, config.routes)
        self.client = SyncClient(create_app(config, self.store, self.metrics))


@pytest.fixture
def relay(tmp_path: Path, fakes: FakeProviders) -> Iterator[Relay]:
    basic = f"    basic: [{{username: am, password: {{secret_file: {tmp_path}/secrets/bearer}}}}]\n"
    text = config_text(tmp_path, fakes, 10131)
    text = text.replace("  auth:\n", "  max_body_bytes: 65536\n  auth:\n" + basic)
    path = tmp_path / "relay.yml"
    path.write_text(text)
    r = Relay(load_config(path))
    yield r
    r.client.close()
    r.store.close()


def test_accepts_persists_and_deduplicates(relay: Relay) -> None:
    body = payload([alert(1), alert(2, severity="warning"), alert(1, status="resolved")])
    first = relay.client.post("/alertmanager/ops", json=body, headers=AUTH)
    assert first.status_code == 200 and first.json() == {"status": "accepted", "accepted": 3, "duplicates": 0}
    again = relay.client.post("/alertmanager/ops", json=body, headers=AUTH)  # Alertmanager resends the group
    assert again.json()["accepted"] == 0 and again.json()["duplicates"] == 3
    assert relay.store.alert_count() == 3
    rows = relay.store.list_rows(("pending",))
    # ding gets all three; SMS only the critical firing one.
    assert sorted(r.channel for r in rows) == ["ding", "ding", "ding", "sms"]
    assert relay.metrics.value("shaobing_relay_alerts_received_total", route="ops") == 6


def test_basic_auth_and_rejections(relay: Relay) -> None:
    body = payload([alert(1)])
    basic = base64.b64encode(f"am:{SECRETS['bearer']}".encode()).decode()
    assert (
        relay.client.post("/alertmanager/ops", json=body, headers={"Authorization": f"Basic {basic}"}).status_code
        == 200
    )
    assert relay.client.post("/alertmanager/ops", json=body).status_code == 401
    wrong = base64.b64encode(b"am:nope").decode()
    assert (
        relay.client.post("/alertmanager/ops", json=body, headers={"Authorization": f"Basic {wrong}"}).status_code
        == 401
    )
    assert (
        relay.client.post("/alertmanager/ops", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    assert relay.client.post("/alertmanager/ops", json=body, headers={"Authorization": "Basic !!!"}).status_code == 401
    assert relay.client.post("/alertmanager/nosuch", json=body, headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"alerts": {}}', "'alerts' must be a list"),
        (b'{"alerts": [{"status": "firing", "labels": {"a": 1}, "startsAt": "x"}]}', "alerts[0].labels"),
        (b'{"alerts": [{"status": "weird", "labels": {}, "startsAt": "x"}]}', "alerts[0].status"),
        (b'{"alerts": [{"status": "firing", "labels": {}}]}', "alerts[0].startsAt"),
        (b'{"alerts": [{"status": "firing", "labels": {"a": "\\ud800"}, "startsAt": "x"}]}', "lone surrogate"),
        (b"[" * 100000, "invalid JSON"),
    ],
)
def test_malformed_payload_is_400_with_reason(relay: Relay, body: bytes, reason: str) -> None:
    response = relay.client.post("/alertmanager/ops", content=body, headers=AUTH_JSON)
    assert response.status_code in (400, 413)
    if response.status_code == 400:
        assert reason in response.json()["error"]


def test_body_size_limit(relay: Relay) -> None:
    big = payload([alert(i) for i in range(400)])
    response = relay.client.post("/alertmanager/ops", json=big, headers=AUTH)
    assert response.status_code == 413


def test_storage_failure_is_503(relay: Relay) -> None:
    relay.store.close()  # every statement now fails with sqlite3.ProgrammingError
    response = relay.client.post("/alertmanager/ops", json=payload([alert(1)]), headers=AUTH)
    assert response.status_code == 503
    assert relay.metrics.value("shaobing_relay_store_errors_total") == 1
    assert relay.client.get("/healthz").status_code == 503
    assert relay.client.get("/metrics").status_code == 200
    relay.store = Store(relay.config.store.path)  # so the fixture can close something


def test_metrics_exposition(relay: Relay) -> None:
    relay.client.post("/alertmanager/ops", json=payload([alert(1)]), headers=AUTH)
    text = relay.client.get("/metrics").text
    for name in (
        'shaobing_relay_alerts_received_total{route="ops"} 1',
        'shaobing_relay_deliveries_total{channel="ding",outcome="dead_letter"} 0',
        'shaobing_relay_queue_depth{channel="ding"} 1',
        'shaobing_relay_dead_letters{channel="sms"} 0',
        "shaobing_relay_store_errors_total 0",
        'shaobing_relay_build_info{version="',
        "# TYPE shaobing_relay_oldest_pending_age_seconds gauge",
    ):
        assert name in text, name
    # The exposition parses with the reference client library.
    from prometheus_client.parser import text_string_to_metric_families

    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"shaobing_relay_deliveries", "shaobing_relay_queue_depth"} <= names


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
alert_like = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["firing", "resolved", "x"]),
        "labels": st.dictionaries(st.text(max_size=8), st.text(max_size=8)),
        "startsAt": st.text(max_size=30),
    },
    optional={"annotations": json_values, "fingerprint": json_values, "endsAt": json_values},
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(alert_like, max_size=5).map(lambda alerts: json.dumps({"version": "4", "alerts": alerts}).encode()),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_fuzz_never_5xx(relay: Relay, body: bytes) -> None:
    response = relay.client.post("/alertmanager/ops", content=body, headers=AUTH_JSON)
    assert response.status_code in (200, 400, 413), response.text
    data: Any = response.json()
    assert isinstance(data, dict)


@pytest.mark.parametrize("content_type", ["", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_body_that_is_not_json_is_refused_with_415(relay: Relay, content_type: str) -> None:
    body = json.dumps(payload([alert(1)]))
    headers = {**AUTH, "Content-Type": content_type} if content_type else AUTH
    answer = relay.client.post("/alertmanager/ops", content=body, headers=headers)
    assert answer.status_code == 415 and "application/json" in answer.json()["error"]
    assert relay.store.alert_count() == 0
    ok = relay.client.post(
        "/alertmanager/ops", content=body, headers={**AUTH, "Content-Type": "application/json; charset=utf-8"}
    )
    assert ok.status_code == 200
