"""Suite-wide collection rules for running on several workers (scripts/test.sh: pytest-xdist, --dist loadgroup).

Every test file runs whole on one worker (its module fixtures -- a Prometheus, a MariaDB, a relay -- start once),
and the files that build the offline bundle or unpack fresh Debian roots share one group, so the bundle is
built once and two multi-minute installs never compete for the disk. Those files are marked ``slow``: plain
``pytest`` skips them, scripts/test.sh (CI) runs them.
"""

from __future__ import annotations

import pytest

ROOTS_GROUP = "debian-roots"
# Fixtures that mean "this test builds the bundle or installs into a fresh root".
_ROOT_FIXTURES = {"bundle", "needs_root"}


@pytest.hookimpl(tryfirst=True)  # before -m deselects and before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & _ROOT_FIXTURES:
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.xdist_group(ROOTS_GROUP))
        else:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
