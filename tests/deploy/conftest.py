"""Fixtures for the deploy tests: the offline bundle (built once per session) and fresh Debian roots."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/build-bundle.sh's tarball (wheel downloads are cached across runs in ~/.cache)."""
    out = tmp_path_factory.mktemp("bundle")
    proc = subprocess.run(["bash", str(REPO_ROOT / "deploy" / "build-bundle.sh"), "--output", str(out)],
                          capture_output=True, text=True, timeout=1200, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tarballs = list(out.glob("shaobing-agent-*.tar.gz"))
    assert len(tarballs) == 1, proc.stdout
    return tarballs[0]


@pytest.fixture
def needs_root() -> None:
    import os
    import shutil

    if os.geteuid() != 0:
        pytest.skip("installer tests need root (chroot, unshare); CI runs as root")
    for tool in ("debootstrap", "unshare", "chroot"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


