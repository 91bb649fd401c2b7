"""Fixtures for the alert-rule, routing and end-to-end alerting tests."""

from __future__ import annotations

import sys
from pathlib import Path

# pytest's default "prepend" import mode puts only this directory on sys.path; the shared support package is
# imported as `tests.support`, so the repository root must be importable too (harmless if it already is).
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
