"""install.sh on the Pythons township hosts ship: 3.6 (CentOS 7) and 3.7 (Kylin V10, openEuler 20.03, UOS 20).

A fresh Debian 13 root, offline, whose Debian python3 is purged and replaced by a CPython 3.6 or 3.7 build
(this machine's pyenv builds, copied to /usr/local as `make install` would put them): that Python is the only
python3 there is. 3.6 comes without ensurepip (the private site directory path, as on a host without
python3-venv), 3.7 with it (a venv). Install with TLS and the fleet password, scrape over HTTPS with basic auth
as user shaobing, every collector succeeds (the password audit's child included), upgrade, uninstall, purge.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.rootfs import DebianRoot
from tests.deploy.test_installer import SCRAPE

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("needs_root"), pytest.mark.timeout(900)]

PYENV = Path.home() / ".pyenv" / "versions"
# (pyenv build, has ensurepip/venv): the two installation paths, one on each.
PYTHONS = [("3.6.15", False), ("3.7.16", True)]


def _install_python(root: DebianRoot, build: Path, *, with_venv: bool) -> str:
    """Purge Debian's python3 and put ``build`` in /usr/local as the root's only python3; returns X.Y."""
    purge = root.run("dpkg --purge $(dpkg-query -W -f '${Package}\\n' 'python3*' 'libpython3*' | sort -u) "
                     ">/dev/null 2>&1; command -v python3 || echo NO_PYTHON3")
    assert "NO_PYTHON3" in purge.stdout, purge.output
    xy = build.name.rsplit(".", 1)[0]
    local = root.path / "usr" / "local"
    skip = {"test", "idlelib", "tkinter", "lib2to3", "turtledemo", "site-packages", "__pycache__", "config"}
    if not with_venv:
        skip |= {"ensurepip", "venv"}
    for sub in ("bin", "lib", "include"):
        (local / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2(build / "bin" / f"python{xy}", local / "bin" / f"python{xy}")
    for lib in (build / "lib").glob("libpython*.so*"):
        shutil.copy2(lib, local / "lib" / lib.name, follow_symlinks=True)
    shutil.copytree(build / "lib" / f"python{xy}", local / "lib" / f"python{xy}",
                    ignore=lambda _d, names: [n for n in names if n in skip or n.startswith("config-")])
    (local / "lib" / f"python{xy}" / "site-packages").mkdir()
    # Byte-compiled as a distribution's package is, so that running the agent writes nothing into /usr.
    ok = root.run(f"ldconfig && ln -s /usr/local/bin/python{xy} /usr/bin/python3 && "
                  f"python3 -m compileall -q /usr/local/lib/python{xy} >/dev/null; python3 -c "
                  "'import ssl, sys; print(\"%d.%d\" % sys.version_info[:2], ssl.OPENSSL_VERSION)' && "
                  "(python3 -c 'import venv, ensurepip' 2>/dev/null && echo HAS_VENV || echo NO_VENV) && "
                  "(python3 -m pip --version 2>/dev/null || echo NO_PIP)")
    assert ok.returncode == 0 and ok.stdout.startswith(xy), ok.output
    assert ("HAS_VENV" if with_venv else "NO_VENV") in ok.stdout and "NO_PIP" in ok.stdout, ok.stdout
    return xy


@pytest.fixture(params=PYTHONS, ids=[p[0] for p in PYTHONS])
def old_root(request: pytest.FixtureRequest, tmp_path: Path, bundle: Path) -> Iterator[tuple[DebianRoot, str, bool]]:
    build, with_venv = PYENV / request.param[0], request.param[1]
    if not (build / "bin").is_dir():
        pytest.skip(f"no CPython build at {build} (this machine image has them under pyenv)")
    r = DebianRoot("trixie", tmp_path / "root")
    try:
        xy = _install_python(r, build, with_venv=with_venv)
        r.add_bundle(bundle)
        yield r, xy, with_venv
    finally:
        r.remove()


def test_install_scrape_upgrade_uninstall_on_an_old_python(old_root: tuple[DebianRoot, str, bool],
                                                            tmp_path: Path) -> None:
    from tests.support.tls import make_ca, make_cert

    root, xy, with_venv = old_root
    ca = make_ca(tmp_path / "pki")
    cert = make_cert(tmp_path / "pki", "agent", ca, hosts=["127.0.0.1", "localhost"], days=30)
    for src, name in ((cert.cert_file, "agent.crt"), (cert.key_file, "agent.key"), (ca.cert_file, "ca.crt")):
        (root.path / "tmp" / name).write_bytes(src.read_bytes())
    password = "county fleet password 2026"
    (root.path / "root" / "pw").write_text(password + "\n")
    (root.path / "root" / "pw").chmod(0o600)
    before = root.files()

    first = root.run("bash /bundle/install.sh --township 城关镇 --tls-cert /tmp/agent.crt --tls-key /tmp/agent.key "
                     "--password-file /root/pw")
    assert first.returncode == 0, first.output
    assert f"Python {xy}" in first.stdout, first.stdout
    assert ("no venv module" in first.stdout) != with_venv, first.stdout
    lock = (root.path / "bundle" / "wheelhouse" / f"lock-cp{xy.replace('.', '')}-x86_64.txt").read_text()
    if xy == "3.6":
        # The last releases for 3.6, from the lock: what pip resolved for CentOS 7 is what got installed.
        assert "dataclasses==" in lock and "httpx==0.22." in lock and "cryptography==40." in lock
    site = "opt/shaobing/venv/lib/site" if not with_venv else f"opt/shaobing/venv/lib/python{xy}/site-packages"
    installed = root.read(f"{site}/agent/compat.py")
    assert "from __future__ import annotations" not in installed, "the bundle's agent is the 3.6 source"

    scraped = root.run(f"PASSWORD='{password}' URL=https://127.0.0.1:10130/metrics CA=/tmp/ca.crt\n" + SCRAPE)
    assert scraped.returncode == 0, scraped.output
    assert "AGENT_USER=shaobing" in scraped.stdout
    body = scraped.stdout
    failed = re.findall(r'^shaobing_collector_success\{collector="([^"]+)"\} 0$', body, re.M)
    assert failed == [], f"collectors failed on Python {xy}: {failed}"
    for series in ('shaobing_collector_success{collector="health"} 1', "node_load1 ", "node_memory_MemTotal_bytes ",
                   'node_scrape_collector_success{collector="exposure"} 1'):
        assert series in body, series
    assert re.search(r'^shaobing_build_info\{[^}]*python="' + re.escape(xy) + r'\.\d+"\} 1$', body, re.M), body[-3000:]
    # The password audit runs in a child of the agent's own Python (pypinyin, libcrypt): it must work there too;
    # the versions collector judges the root's own Debian 13 (its end-of-life date from the bundled facts).
    once = root.run("/opt/shaobing/venv/bin/shaobing agent once --collector passwords --collector versions")
    assert once.returncode == 0, once.output
    assert re.search(r"^shaobing_password_accounts\{", once.stdout, re.M), once.stdout[-2000:]
    assert re.search(r'^shaobing_eol_timestamp_seconds\{[^}]*product="debian"', once.stdout, re.M), once.stdout[-3000:]
    assert not re.search(r'^shaobing_collector_success\{[^}]*\} 0$', once.stdout, re.M), once.stdout[-3000:]
    scan = root.run("/opt/shaobing/venv/bin/shaobing scan")
    assert scan.returncode in (0, 1), scan.output
    assert "Traceback" not in scan.output

    again = root.run("bash /bundle/install.sh")
    assert again.returncode == 0 and "升级 upgrade" in again.stdout, again.output
    assert root.run("/opt/shaobing/venv/bin/shaobing version").stdout.startswith("shaobing ")

    purged = root.run("bash /bundle/install.sh --uninstall --purge")
    assert purged.returncode == 0, purged.output
    # apt's own caches: rebuilt by the updates check (apt-get --simulate) that `scan` ran, not the installer's.
    after = root.files() - {"var/cache/apt/pkgcache.bin", "var/cache/apt/srcpkgcache.bin"}
    assert after - before == set(), f"left behind: {sorted(after - before)[:20]}"


def test_python_builds_are_the_versions_they_claim() -> None:
    """The fixture's CPythons really are 3.6/3.7 (a mislabelled build would make the test above meaningless)."""
    for name, _ in PYTHONS:
        exe = PYENV / name / "bin" / f"python{name.rsplit('.', 1)[0]}"
        if not exe.exists():
            pytest.skip(f"no {exe}")
        out = subprocess.run([str(exe), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True, timeout=30, check=True).stdout.strip()
        assert out == name
