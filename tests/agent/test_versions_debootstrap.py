"""Identity and package detection inside a fresh Debian 13 root made with debootstrap (optional).

The root is built once (about 40 s from deb.debian.org) and cached under /var/cache/shaobing-test, so a second
run of the suite reuses it. Skipped cleanly when not root, without debootstrap, or when the mirror fails.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agent.collector import AgentContext
from agent.collectors.versions import VersionsCollector, VersionsOptions
from agent.platform.os_release import identify_os

CACHE = Path("/var/cache/shaobing-test")
ROOT = CACHE / "versions-debian13"  # other suites may keep their own roots here
MIRROR = "http://deb.debian.org/debian"


@pytest.fixture(scope="module")
def debian13() -> Path:
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("needs root and debootstrap")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a parallel run waits for the first build instead of racing it
        if not (ROOT / "var/lib/dpkg/status").is_file():
            tmp = CACHE / f"versions-debian13.tmp-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                result = subprocess.run(["debootstrap", "--variant=minbase", "trixie", str(tmp), MIRROR],
                                        capture_output=True, text=True, timeout=240, check=False)
            except subprocess.TimeoutExpired:
                shutil.rmtree(tmp, ignore_errors=True)
                pytest.skip("debootstrap took longer than 240 s")
            if result.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                pytest.skip(f"debootstrap failed: {(result.stderr or result.stdout).strip()[-300:]}")
            tmp.rename(ROOT)
    return ROOT


def test_identity_and_packages_in_debian13_root(debian13: Path, tmp_path: Path) -> None:
    identity = identify_os(debian13)
    assert identity is not None and (identity.product, identity.cycle) == ("debian", "13")

    expected = subprocess.run(["dpkg-query", f"--admindir={debian13 / 'var/lib/dpkg'}", "-W", "-f", "${Version}",
                               "libssl3t64"], capture_output=True, text=True, timeout=60, check=True).stdout
    now = datetime(2026, 11, 27, tzinfo=timezone.utc).timestamp()
    c = VersionsCollector(VersionsOptions(), AgentContext(state_dir=tmp_path, clock=lambda: now), root=debian13)
    out = c.new_metric_set()
    c.collect(out)
    labels = {"product": "debian", "cycle": "13", "kind": "os"}
    assert out.get("shaobing_eol_timestamp_seconds", labels) == datetime(2030, 6, 30, tzinfo=timezone.utc).timestamp()
    assert out.get("shaobing_software_info", {"software": "openssl", "version": expected, "source": "package"}) == 1
    # nothing from the host leaks in: a foreign root is read, never executed
    assert all(dict(s.labels)["source"] == "package" for s in out.samples("shaobing_software_info"))
    assert not [s for s in out.samples("shaobing_software_info") if ("software", "nginx") in s.labels]
