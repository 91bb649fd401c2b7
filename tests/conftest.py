"""Suite-wide rules for running on two workers (scripts/test.sh: pytest-xdist).

Every test file runs whole on one worker (its module fixtures -- a Prometheus, a MariaDB, a relay -- start
once), and the files that build the offline bundle or install into fresh Debian roots run together on one
worker, so the bundle is built once and two multi-minute installs never compete for the disk
(``pytest_xdist_make_scheduler`` below; xdist's own ``--dist loadgroup`` cannot rename nodes on pytest 9.2).
Their tests that build the bundle or need root for a fresh root are marked ``slow``: plain ``pytest`` skips
them, scripts/test.sh (CI) runs them.
"""

from __future__ import annotations

from typing import Any

import pytest

# The files whose tests build the bundle or unpack fresh Debian roots (one worker runs them all, in order).
ROOT_FILES = frozenset(
    f"tests/deploy/{name}.py"
    for name in ("test_bundle", "test_centre_setup", "test_installer", "test_installer_old_python",
                 "test_installer_other_cpu", "test_legacy_unit", "test_nspawn_boot")
)
ROOTS_GROUP = "debian-roots"
# Fixtures that mean "this test builds the bundle or installs into a fresh root".
_SLOW_FIXTURES = {"bundle", "needs_root"}


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if set(getattr(item, "fixturenames", ())) & _SLOW_FIXTURES:
            # The scheduler only sees node ids, so the files are listed by hand; a new one must be listed too.
            if item.nodeid.split("::", 1)[0] not in ROOT_FILES:
                raise pytest.UsageError(f"{item.nodeid} builds a bundle or root: add its file to ROOT_FILES in {__file__}")
            item.add_marker(pytest.mark.slow)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        """The unit of work one worker takes whole: the test's file, or the group of root-building files."""

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return ROOTS_GROUP if path in ROOT_FILES else path

    return ByFile(config, log)
