from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.relay.relay_fakes import FakeProviders


@pytest.fixture
def fakes() -> Iterator[FakeProviders]:
    with FakeProviders() as fake:
        yield fake
