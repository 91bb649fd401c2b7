from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.relay.relay_fakes import FakeProviders
from tests.relay.relay_testlib import RelayProcess


@pytest.fixture
def fakes() -> Iterator[FakeProviders]:
    with FakeProviders() as fake:
        yield fake


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may ever reach a real provider: in-process HTTP to anything but loopback fails the test.
    (Relay subprocesses are checked in relay_testlib.assert_loopback_config before they start.)"""
    original = httpx.AsyncClient.send

    async def guarded(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        host = request.url.host
        if host != "relay":  # the in-process ASGI transport's base URL
            assert ipaddress.ip_address(host).is_loopback, f"test tried to reach {host}"
        return await original(self, request, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "send", guarded)


@pytest.fixture
def relays() -> Iterator[list[RelayProcess]]:
    """Relay processes a test starts; every one is stopped afterwards."""
    started: list[RelayProcess] = []
    yield started
    for relay in started:
        relay.stop()
