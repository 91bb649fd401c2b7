"""The offline bundle: complete, checksummed, agent-only, and installable for every CPython x CPU it claims.

The installer tests run the bundle on x86_64 Debian 11 and 13; here pip resolves every lock file against the
wheelhouse alone for its own Python version and CPU (aarch64 included), as the township machine would.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.rootfs import unpack_bundle

COMBOS = [(f"3.{minor}", arch) for minor in range(9, 14) for arch in ("x86_64", "aarch64")]


@pytest.fixture(scope="module")
def unpacked(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("unpacked")
    unpack_bundle(bundle, out)
    return out


def test_contents_and_checksums(unpacked: Path) -> None:
    for name in ("install.sh", "agent.example.yml", "systemd/shaobing-agent.service", "VERSION", "SHA256SUMS"):
        assert (unpacked / name).is_file(), name
    check = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=unpacked, capture_output=True,
                           text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    listed = {line.split("  ", 1)[1] for line in (unpacked / "SHA256SUMS").read_text().splitlines()}
    present = {str(p.relative_to(unpacked)) for p in unpacked.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    assert listed == present
    wheels = {p.name.split("-")[0].lower() for p in (unpacked / "wheelhouse").glob("*.whl")}
    # The agent only: the relay's and the dashboards' dependencies stay out of township machines.
    assert not wheels & {"starlette", "uvicorn", "jinja2", "grafana_foundation_sdk"}
    assert {"shaobing", "pyyaml", "psutil", "pypinyin", "bcrypt", "httpx", "cryptography", "pip"} <= wheels


@pytest.mark.parametrize(("pyver", "arch"), COMBOS)
def test_every_lock_resolves_offline(unpacked: Path, pyver: str, arch: str, tmp_path: Path) -> None:
    abi = "cp" + pyver.replace(".", "")
    lock = unpacked / "wheelhouse" / f"lock-{abi}-{arch}.txt"
    assert lock.is_file()
    version = (unpacked / "VERSION").read_text().strip()
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed", "--no-index",
         "--disable-pip-version-check", "--find-links", str(unpacked / "wheelhouse"), "--only-binary=:all:",
         "--platform", f"manylinux2014_{arch}", "--python-version", pyver, "--implementation", "cp",
         "--abi", abi, "--target", str(tmp_path / "t"), "-r", str(lock), f"shaobing=={version}"],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    pins = dict(line.split("==") for line in lock.read_text().split())
    if pyver in ("3.9", "3.10"):
        # anyio needs exceptiongroup below 3.11: the marker pip ignores for --python-version (wheel_markers.py).
        assert "exceptiongroup" in pins
    assert all(re.match(r"^[\w.+!]+$", v) for v in pins.values())
