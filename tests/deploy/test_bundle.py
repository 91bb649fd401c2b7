"""The offline bundle: complete, checksummed, agent-only, and installable for every CPython x CPU it claims.

The installer tests run the bundle on x86_64 Debian 11 and 13; here pip resolves every lock file against the
wheelhouse alone for its own Python version and CPU (aarch64 included), as the township machine would.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.deploy.rootfs import unpack_bundle

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "deploy"))
from packaging.requirements import Requirement  # noqa: E402
from packaging.utils import canonicalize_name  # noqa: E402
from wheel_markers import target_env  # noqa: E402

COMBOS = [(f"3.{minor}", arch) for minor in range(6, 14) for arch in ("x86_64", "aarch64")]


@pytest.fixture(scope="module")
def unpacked(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("unpacked")
    unpack_bundle(bundle, out)
    return out


def test_contents_and_checksums(unpacked: Path) -> None:
    for name in ("install.sh", "agent.example.yml", "systemd/shaobing-agent.service",
                 "systemd/shaobing-agent.legacy.service", "VERSION", "SHA256SUMS"):
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


def _requirements_for(wheel: Path, pyver: str, arch: str) -> list[Requirement]:
    """The wheel's Requires-Dist that apply on that Python and CPU (extras excluded)."""
    env = target_env(pyver, arch)
    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    reqs = [Requirement(line.split(":", 1)[1].strip()) for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    return [r for r in reqs if r.marker is None or r.marker.evaluate(env)]


@pytest.mark.parametrize(("pyver", "arch"), COMBOS)
def test_every_lock_resolves_offline(unpacked: Path, pyver: str, arch: str, tmp_path: Path) -> None:
    tag = "cp" + pyver.replace(".", "")
    lock = unpacked / "wheelhouse" / f"lock-{tag}-{arch}.txt"
    abi = tag + "m" if pyver in ("3.6", "3.7") else tag  # pymalloc's ABI flag, dropped in 3.8
    full = "3.6.8" if pyver == "3.6" else pyver  # CentOS 7's; anyio 3 needs >= 3.6.2
    assert lock.is_file()
    version = (unpacked / "VERSION").read_text().strip()
    # pip judges the markers of shaobing's own requirements by the Python running it (httpx>=0.27 "for 3.7"), so
    # below 3.8 it resolves the lock alone and the agent's requirements are checked against it just below.
    ours = [f"shaobing=={version}"] if pyver not in ("3.6", "3.7") else []
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed", "--no-index",
         "--disable-pip-version-check", "--find-links", str(unpacked / "wheelhouse"), "--only-binary=:all:",
         "--platform", f"manylinux2014_{arch}", "--python-version", full, "--implementation", "cp",
         "--abi", abi, "--target", str(tmp_path / "t"), "-r", str(lock), *ours],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    pins = dict(line.split("==") for line in lock.read_text().split())
    wheel = next((unpacked / "wheelhouse").glob(f"shaobing-{version}-*.whl"))
    unmet = [str(req) for req in _requirements_for(wheel, pyver, arch)
             if canonicalize_name(req.name) not in {canonicalize_name(n) for n in pins}
             or not req.specifier.contains(pins[next(n for n in pins if canonicalize_name(n) ==
                                                      canonicalize_name(req.name))], prereleases=True)]
    assert unmet == [], f"the lock for {pyver} {arch} does not satisfy the agent's requirements: {unmet}"
    if pyver in ("3.9", "3.10"):
        # anyio needs exceptiongroup below 3.11: the marker pip ignores for --python-version (wheel_markers.py).
        assert "exceptiongroup" in pins
    if pyver == "3.6":
        # The project's own markers, judged for the target (wheel_markers.py --for), and sniffio's contextvars,
        # published as source only and built into a pure-Python wheel by build-bundle.sh.
        assert {"dataclasses", "typing_extensions", "contextvars", "immutables"} <= set(pins)
        assert pins["httpx"].startswith("0.22.") and pins["cryptography"].startswith("40.")
    if pyver in ("3.8", "3.9"):
        assert "dataclasses" not in pins
    assert all(re.match(r"^[\w.+!]+$", v) for v in pins.values())


OPTIONAL_COMPILED = {"psutil", "bcrypt", "cryptography", "cffi"}


@pytest.mark.parametrize("pyver", [f"3.{minor}" for minor in range(6, 14)])
def test_the_pure_python_locks_for_other_cpus_are_complete(unpacked: Path, pyver: str) -> None:
    """lock-cpXY-noarch.txt (loongarch64 and any CPU without wheels): only pure-Python wheels, and with the agent's
    whole dependency tree except the compiled modules agent/optional.py does without."""
    tag = "cp" + pyver.replace(".", "")
    lock = unpacked / "wheelhouse" / f"lock-{tag}-noarch.txt"
    if pyver == "3.6":
        # contextvars needs immutables, which is compiled: no such install for 3.6 (install.sh says so, exit 5).
        assert not lock.exists()
        return
    pins = {canonicalize_name(n): v for n, v in (line.split("==") for line in lock.read_text().split())}
    wheels = {}
    for whl in (unpacked / "wheelhouse").glob("*-none-any.whl"):
        name, version = whl.name.split("-")[:2]
        wheels[(canonicalize_name(name), version)] = whl
    missing = [f"{n}=={v}" for n, v in pins.items() if (n, v) not in wheels]
    assert missing == [], f"no pure-Python wheel for {missing}"
    assert not set(pins) & OPTIONAL_COMPILED
    version = (unpacked / "VERSION").read_text().strip()
    todo = [next((unpacked / "wheelhouse").glob(f"shaobing-{version}-*.whl"))]
    seen: set[Path] = set()
    unmet: list[str] = []
    while todo:
        wheel = todo.pop()
        if wheel in seen:
            continue
        seen.add(wheel)
        for req in _requirements_for(wheel, pyver, "loongarch64"):
            name = canonicalize_name(req.name)
            if name in OPTIONAL_COMPILED:
                continue
            if name not in pins or not req.specifier.contains(pins[name], prereleases=True):
                unmet.append(f"{wheel.name}: {req}")
                continue
            todo.append(wheels[(name, pins[name])])
    assert unmet == [], unmet
    with zipfile.ZipFile(wheels[("pyyaml", pins["pyyaml"])]) as zf:
        assert not [n for n in zf.namelist() if n.endswith(".so")], "PyYAML without its C extension"


def test_the_bundled_agent_is_the_python36_source_with_a_valid_record(unpacked: Path) -> None:
    """build-bundle.sh rewrites the agent in its wheel for 3.6 (py36_source.py); pip checks RECORD on install."""
    import base64
    import hashlib

    wheel = next((unpacked / "wheelhouse").glob("shaobing-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        record = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))).decode()
        rows = [line.split(",") for line in record.splitlines() if line]
        assert {name for name, _, _ in rows} == set(zf.namelist())
        for name, digest, size in rows:
            if not digest:
                continue
            data = zf.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={expected}" and int(size) == len(data), name
        agent = [n for n in zf.namelist() if n.startswith("agent/") and n.endswith(".py")]
        assert len(agent) >= 100
        assert not [n for n in agent if "from __future__ import annotations" in zf.read(n).decode()]
        # Only the agent is rewritten: the relay and report stay as written (they need 3.9+).
        assert "from __future__ import annotations" in zf.read("relay/cli.py").decode()
