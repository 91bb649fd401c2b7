"""install.sh on a CPU the bundle has no compiled wheels for (loongarch64 servers): the pure-Python part installs,
and what needs psutil is reported as not applicable with the package to install; basic auth and the password
audit use the system's libcrypt instead of the bcrypt module.

The case is made real on this machine with a bundle built for aarch64 only (``--arches aarch64``), installed in
an x86_64 Debian 13 root with the network cut: x86_64 is then exactly such a CPU (no lock for it, no psutil,
bcrypt or cryptography wheel that would load), and install.sh takes the same path it takes on loongarch64.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.rootfs import DebianRoot
from tests.deploy.test_installer import SCRAPE

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("needs_root"), pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def foreign_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("foreign")
    proc = subprocess.run(["bash", str(REPO / "deploy/build-bundle.sh"), "--pythons", "3.13", "--arches", "aarch64",
                           "--output", str(out)], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (tarball,) = out.glob("shaobing-agent-*.tar.gz")
    return tarball


@pytest.fixture
def root(tmp_path: Path, foreign_bundle: Path) -> Iterator[DebianRoot]:
    r = DebianRoot("trixie", tmp_path / "root")
    try:
        r.add_bundle(foreign_bundle)
        yield r
    finally:
        r.remove()


def test_pure_python_install_reports_what_is_missing_and_runs_the_rest(root: DebianRoot) -> None:
    assert not (root.path / "bundle/wheelhouse/lock-cp313-x86_64.txt").exists()
    first = root.run("bash /bundle/install.sh --township 城关镇")
    assert first.returncode == 0, first.output
    assert "no compiled wheels for x86_64" in first.stdout, first.stdout
    password = re.search(r"password: (\S+)", first.stdout)
    assert password, first.stdout
    site = root.path / "opt/shaobing/venv/lib/python3.13/site-packages"
    assert not list(site.glob("psutil*")) and not list(site.glob("bcrypt*")) and not list(site.glob("cryptography*"))
    assert "include-system-site-packages = true" in root.read("opt/shaobing/venv/pyvenv.cfg")
    web = root.read("etc/shaobing/web.yml")
    assert re.search(r"\$2b\$10\$", web), "the scrape password is bcrypt-hashed by libcrypt"

    # Basic auth against that hash (libcrypt's bcrypt in the endpoint): the right password in, a wrong one out.
    scraped = root.run(f"PASSWORD='{password.group(1)}' URL=http://127.0.0.1:10130/metrics\n" + SCRAPE)
    assert scraped.returncode == 0, scraped.output
    body = scraped.stdout
    wrong = root.run("PASSWORD='not-the-password' URL=http://127.0.0.1:10130/metrics\n" + SCRAPE)
    assert wrong.returncode != 0
    # Health (read from /proc, no psutil) works; the collectors that need psutil say not applicable, not failed.
    for series in ('shaobing_collector_success{collector="health"} 1', "node_load1 ", "node_memory_MemTotal_bytes ",
                   "process_resident_memory_bytes ", 'shaobing_collector_applicable{collector="exposure"} 0',
                   'shaobing_collector_applicable{collector="service_credentials"} 0'):
        assert series in body, (series, body[-3000:])
    failed = re.findall(r'^shaobing_collector_success\{collector="([^"]+)"\} 0$', body, re.M)
    assert failed == [], failed

    # The password audit (libcrypt in its child) runs; the scan report names the missing module and the package.
    once = root.run("/opt/shaobing/venv/bin/shaobing agent once --collector passwords")
    assert once.returncode == 0, once.output
    assert re.search(r"^shaobing_password_accounts\{", once.stdout, re.M), once.stdout[-2000:]
    scan = root.run("/opt/shaobing/venv/bin/shaobing scan")
    assert "Traceback" not in scan.output
    assert "psutil" in scan.stdout and "python3-psutil" in scan.stdout, scan.stdout[-3000:]

    purged = root.run("bash /bundle/install.sh --uninstall --purge")
    assert purged.returncode == 0, purged.output
