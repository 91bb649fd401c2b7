"""install.sh inside fresh Debian roots (debootstrap), offline: install, run, scrape, upgrade, uninstall.

Debian 11 (Python 3.9, the oldest supported) and Debian 13 (Python 3.13, the newest) run by default; set
SHAOBING_INSTALLER_SUITES="trixie" to run only one. Each root is built once per machine (~75 s) and cached.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.deploy.rootfs import DebianRoot

# The first run on a machine builds the Debian roots (~75 s each) and the bundle: more than the default 300 s.
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("needs_root"), pytest.mark.timeout(900)]

SUITES = os.environ.get("SHAOBING_INSTALLER_SUITES", "bullseye trixie").split()
PY_VERSION = {"bullseye": "3.9", "trixie": "3.13", "bookworm": "3.11"}

# Start the agent exactly as the unit's ExecStart would (as user shaobing, with CAP_DAC_READ_SEARCH), scrape
# /metrics with the generated credentials, and stop it. $1 = password.
SCRAPE = r"""
set -e
exec_start=$(sed -n 's/^ExecStart=//p' /etc/systemd/system/shaobing-agent.service)
setpriv --reuid=shaobing --regid=shaobing --init-groups --inh-caps=+dac_read_search \
    --ambient-caps=+dac_read_search $exec_start > /tmp/agent.log 2>&1 &
pid=$!
SCRAPE_PASSWORD="$PASSWORD" SCRAPE_URL="${URL:-http://127.0.0.1:10130/metrics}" SCRAPE_CA="${CA:-}" \
    /opt/shaobing/venv/bin/python - <<'EOF'
import base64, os, ssl, sys, time, urllib.request, urllib.error
auth = base64.b64encode(("prometheus:" + os.environ["SCRAPE_PASSWORD"]).encode()).decode()
url = os.environ["SCRAPE_URL"]
ctx = ssl.create_default_context(cafile=os.environ["SCRAPE_CA"]) if os.environ["SCRAPE_CA"] else None
deadline = time.monotonic() + 30
error = None
while True:
    try:
        req = urllib.request.Request(url, headers={"Authorization": "Basic " + auth})
        body = urllib.request.urlopen(req, timeout=5, context=ctx).read().decode()
        if "shaobing_collector_success" in body:
            break
    except OSError as exc:
        error = exc
    if time.monotonic() > deadline:
        sys.exit(f"no answer from the agent ({error}): " + open("/tmp/agent.log").read()[-1000:])
    time.sleep(0.3)
try:
    urllib.request.urlopen(url, timeout=5, context=ctx)
    sys.exit("/metrics answered without credentials")
except urllib.error.HTTPError as exc:
    assert exc.code == 401, exc.code
print(body)
EOF
echo "AGENT_USER=$(ps -o user= -p $pid 2>/dev/null || stat -c %U /proc/$pid)"
kill -TERM $pid
wait $pid || true
"""


@pytest.fixture(params=SUITES)
def root(request: pytest.FixtureRequest, tmp_path: Path, bundle: Path) -> Iterator[DebianRoot]:
    r = DebianRoot(request.param, tmp_path / "root")
    r.add_bundle(bundle)
    try:
        yield r
    finally:
        r.remove()


def test_install_run_upgrade_uninstall(root: DebianRoot) -> None:
    before = root.files()
    passwd_before = root.read("etc/passwd")

    first = root.run("bash /bundle/install.sh --township 城关镇 --site '镇政府 机房'")
    assert first.returncode == 0, first.output
    assert f"Python {PY_VERSION[root.suite]}" in first.stdout
    assert "no systemd here" in first.stdout and "setpriv" in first.stdout
    m = re.search(r"password: (\S+)", first.stdout)
    assert m, first.stdout
    password = m.group(1)
    assert "job_name: shaobing" in first.stdout and 'township: "城关镇"' in first.stdout
    assert re.search(r"^  \S+,\S+:10130,城关镇,<role>,镇政府 机房,http$", first.stdout, re.M), first.stdout

    agent_yml = root.read("etc/shaobing/agent.yml")
    web_yml = root.read("etc/shaobing/web.yml")
    assert 'township: "城关镇"' in agent_yml and 'site: "镇政府 机房"' in agent_yml
    assert password not in web_yml and "$2b$" in web_yml
    assert oct((root.path / "etc/shaobing/web.yml").stat().st_mode & 0o777) == "0o640"

    scraped = root.run(f"PASSWORD={password}\n" + SCRAPE)
    assert scraped.returncode == 0, scraped.output
    assert "shaobing_collector_success" in scraped.stdout
    assert "AGENT_USER=shaobing" in scraped.stdout

    # Upgrade: same bundle again; configuration and state untouched, no new password. Run the way an admin does
    # over ssh, in one shell whose command line names the venv: the upgrade must stop the agent, not that shell.
    (root.path / "var/lib/shaobing/marker").write_text("state")
    # (The trailing command keeps that shell from being exec'd as PID 1 of the test's namespace, which no signal
    # without a handler can stop.)
    # The agent is running (started as the unit would): the upgrade finds it by its pid file and stops it.
    again = root.run(
        "exec_start=$(sed -n 's/^ExecStart=//p' /etc/systemd/system/shaobing-agent.service)\n"
        "setpriv --reuid=shaobing --regid=shaobing --init-groups --inh-caps=+dac_read_search "
        "--ambient-caps=+dac_read_search $exec_start > /tmp/agent.log 2>&1 &\n"
        "agent=$!\n"
        "for i in $(seq 1 100); do [ -s /var/lib/shaobing/agent.pid ] && break; sleep 0.1; done\n"
        "echo \"AGENT_PID=$(cat /var/lib/shaobing/agent.pid)\"\n"
        "bash -c 'bash /bundle/install.sh --township 别的镇 && /opt/shaobing/venv/bin/shaobing version'; rc=$?\n"
        "kill -0 $agent 2>/dev/null && echo AGENT_STILL_RUNNING\n"
        "exit $rc")
    assert again.returncode == 0, again.output  # 143 before: the installer killed the shell it ran in
    agent_pid = re.search(r"AGENT_PID=(\d+)", again.stdout)
    assert agent_pid, again.output
    assert f"PID {agent_pid.group(1)}" in again.output and "AGENT_STILL_RUNNING" not in again.stdout
    assert "升级 upgrade" in again.stdout and "password:" not in again.stdout
    assert "shaobing " in again.stdout.splitlines()[-1]  # the version line after the upgrade
    assert "existing configuration kept" in again.stderr
    assert root.read("etc/shaobing/agent.yml") == agent_yml
    assert root.read("etc/shaobing/web.yml") == web_yml
    assert root.read("var/lib/shaobing/marker") == "state"
    assert root.run(f"PASSWORD={password}\n" + SCRAPE).returncode == 0

    # Uninstall keeps the configuration; --purge leaves nothing behind.
    kept = root.run("bash /bundle/install.sh --uninstall")
    assert kept.returncode == 0, kept.output
    assert (root.path / "etc/shaobing/agent.yml").exists()
    assert not (root.path / "opt/shaobing").exists() and not (root.path / "var/lib/shaobing").exists()
    purged = root.run("bash /bundle/install.sh --uninstall --purge")
    assert purged.returncode == 0, purged.output
    after = root.files()
    assert after - before == set(), f"left behind: {sorted(after - before)[:20]}"
    assert before - after == set(), f"removed: {sorted(before - after)[:20]}"
    assert root.read("etc/passwd") == passwd_before


@pytest.fixture
def trixie(tmp_path: Path, bundle: Path) -> Iterator[DebianRoot]:
    r = DebianRoot(SUITES[-1], tmp_path / "root")
    r.add_bundle(bundle)
    try:
        yield r
    finally:
        r.remove()


def _fails_cleanly(root: DebianRoot, script: str, code: int, *needles: str, user: str | None = None) -> None:
    before = root.files()
    passwd = root.read("etc/passwd")
    result = root.run(script, user=user)
    assert result.returncode == code, result.output
    for needle in needles:
        assert needle in result.stderr, result.output
    assert root.files() == before, f"half-installed: {sorted(root.files() ^ before)[:20]}"
    assert root.read("etc/passwd") == passwd


def test_bad_inputs_fail_cleanly(trixie: DebianRoot) -> None:
    _fails_cleanly(trixie, "bash /bundle/install.sh", 3, "must run as root", user="65534:65534")

    holder = ("python3 -c 'import socket,time; s=socket.socket(); s.bind((\"0.0.0.0\",10130)); s.listen(); "
              "time.sleep(60)' & sleep 1; bash /bundle/install.sh")
    _fails_cleanly(trixie, holder, 6, "port 10130 is in use", '"python3"')
    # Without ss (no iproute2) the port is still checked, and the message says how to learn the holder.
    no_ss = "mv /usr/bin/ss /usr/lib/hidden-ss; " + holder + "; rc=$?; mv /usr/lib/hidden-ss /usr/bin/ss; exit $rc"
    _fails_cleanly(trixie, no_ss, 6, "port 10130 is in use", "install iproute2")

    hide = "for f in /usr/bin/python3*; do mv $f /usr/lib/hidden-${f##*/}; done; "
    unhide = "; rc=$?; for f in /usr/lib/hidden-python3*; do mv $f /usr/bin/${f##*/hidden-}; done; exit $rc"
    _fails_cleanly(trixie, hide + "bash /bundle/install.sh" + unhide, 5, "no usable Python >= 3.6",
                   "apt-get install python3", "yum install python3")
    old = "printf '#!/bin/sh\\necho 3.5\\n' > /usr/bin/python3 && chmod +x /usr/bin/python3; "
    _fails_cleanly(trixie, hide + old + "bash /bundle/install.sh; rc=$?; rm /usr/bin/python3; (exit $rc)" + unhide,
                   5, "python3=3.5")

    # The fleet password file: refused when other users can read it, empty, or longer than bcrypt takes.
    _fails_cleanly(trixie, "printf 'secret\\n' > /tmp/pw; chmod 0644 /tmp/pw; bash /bundle/install.sh "
                   "--password-file /tmp/pw; rc=$?; rm /tmp/pw; exit $rc", 2, "mode 644", "chmod 600 /tmp/pw")
    _fails_cleanly(trixie, "printf ' \\n' > /tmp/pw; chmod 0600 /tmp/pw; bash /bundle/install.sh "
                   "--password-file /tmp/pw; rc=$?; rm /tmp/pw; exit $rc", 2, "(unusable password file) /tmp/pw: empty")
    _fails_cleanly(trixie, "bash /bundle/install.sh --password-file /nonexistent", 2, "cannot read password file")
    # The fleet password on a host without TLS: cleartext on every scrape, and it opens the HTTPS agents too.
    _fails_cleanly(trixie, "printf 'fleet-secret\\n' > /tmp/pw; chmod 0600 /tmp/pw; bash /bundle/install.sh "
                   "--password-file /tmp/pw; rc=$?; rm /tmp/pw; exit $rc", 2, "travel in cleartext",
                   "--insecure-plain-http")

    _fails_cleanly(trixie, "echo x >> /bundle/VERSION; bash /bundle/install.sh; rc=$?; "
                   "sed -i '$d' /bundle/VERSION; exit $rc", 4, "checksum")


def test_failure_after_changes_rolls_back(trixie: DebianRoot) -> None:
    """A wheelhouse without the agent's wheel fails in pip, after the user and venv exist: all undone."""
    breaking = ("mkdir /tmp/keep && mv /bundle/wheelhouse/shaobing-*.whl /tmp/keep/ && "
                "cp /bundle/SHA256SUMS /tmp/keep/ && "
                "grep -v 'shaobing-.*whl' /tmp/keep/SHA256SUMS > /bundle/SHA256SUMS; "
                "bash /bundle/install.sh; rc=$?; mv /tmp/keep/*.whl /bundle/wheelhouse/; "
                "cp /tmp/keep/SHA256SUMS /bundle/; exit $rc")
    _fails_cleanly(trixie, breaking, 1, "rolling back", "offline pip install failed")


def _password_file(root: DebianRoot, name: str, password: str) -> str:
    path = root.path / "tmp" / name
    path.write_text(password + "\n", encoding="utf-8")  # as an editor saves it; both sides trim the newline
    path.chmod(0o600)
    return f"/tmp/{name}"


def test_install_with_tls_and_fleet_password(trixie: DebianRoot, tmp_path: Path) -> None:
    """The county's way: its CA's certificate and the fleet's one scrape password; a re-run can rotate it."""
    import bcrypt

    from tests.support.tls import make_ca, make_cert

    ca = make_ca(tmp_path / "pki")
    cert = make_cert(tmp_path / "pki", "agent", ca, hosts=["127.0.0.1", "localhost"], days=30)
    for src, name in ((cert.cert_file, "agent.crt"), (cert.key_file, "agent.key"), (ca.cert_file, "ca.crt")):
        (trixie.path / "tmp" / name).write_bytes(src.read_bytes())
    password = "county fleet password 2026"
    pw_file = _password_file(trixie, "agent_scrape_password", password)
    result = trixie.run("bash /bundle/install.sh --tls-cert /tmp/agent.crt --tls-key /tmp/agent.key "
                        f"--township 城关镇 --password-file {pw_file}")
    assert result.returncode == 0, result.output
    assert "scheme: https" in result.stdout and "password:" not in result.stdout
    assert password not in result.output and "taken from that file, not shown" in result.stdout
    assert re.search(r"^  \S+,\S+:10130,城关镇,<role>,,https$", result.stdout, re.M), result.stdout
    web_yml = trixie.read("etc/shaobing/web.yml")
    assert "tls_server_config:" in web_yml and password not in web_yml
    hash_ = re.search(r"prometheus: '(\S+)'", web_yml).group(1)  # type: ignore[union-attr]
    assert bcrypt.checkpw(password.encode(), hash_.encode())
    key = trixie.path / "etc/shaobing/tls/agent.key"
    assert oct(key.stat().st_mode & 0o777) == "0o640"
    # The agent itself (as user shaobing) must read its key; the scrape verifies the chain against the CA.
    scraped = trixie.run(f"PASSWORD='{password}' URL=https://127.0.0.1:10130/metrics CA=/tmp/ca.crt\n" + SCRAPE)
    assert scraped.returncode == 0, scraped.output
    assert "shaobing_collector_success" in scraped.stdout

    # Re-run with a new fleet password: an explicit action, so the hash is replaced (and said so); TLS is kept.
    rotated = "rotated fleet password"
    again = trixie.run(f"bash /bundle/install.sh --password-file {_password_file(trixie, 'new_pw', rotated)}")
    assert again.returncode == 0, again.output
    assert "scrape password hash replaced" in again.stdout and rotated not in again.output
    web_yml = trixie.read("etc/shaobing/web.yml")
    doc = yaml.safe_load(web_yml)
    assert bcrypt.checkpw(rotated.encode(), doc["basic_auth_users"]["prometheus"].encode())
    assert not bcrypt.checkpw(password.encode(), doc["basic_auth_users"]["prometheus"].encode())
    assert doc["tls_server_config"] == {"cert_file": "tls/agent.crt", "key_file": "tls/agent.key"}
    assert oct((trixie.path / "etc/shaobing/web.yml").stat().st_mode & 0o777) == "0o640"
    assert not (trixie.path / "etc/shaobing/web.yml.previous").exists()
    scraped = trixie.run(f"PASSWORD='{rotated}' URL=https://127.0.0.1:10130/metrics CA=/tmp/ca.crt\n" + SCRAPE)
    assert scraped.returncode == 0, scraped.output
    # A plain re-run keeps the rotated hash.
    assert trixie.run("bash /bundle/install.sh").returncode == 0
    assert trixie.read("etc/shaobing/web.yml") == web_yml
    purged = trixie.run("bash /bundle/install.sh --uninstall --purge")
    assert purged.returncode == 0 and not (trixie.path / "etc/shaobing").exists()


def test_install_without_the_venv_module(root: DebianRoot) -> None:
    """A stock offline Debian has python3 but not python3-venv (getting it needs the network): the bundled pip
    wheel installs into a private site directory, and the agent runs, upgrades and uninstalls the same."""
    purge = root.run("dpkg --purge python3-venv $(dpkg-query -W -f '${Package}\\n' 'python3.*-venv')\n"
                     "python3 -c 'import ensurepip' 2>/dev/null && echo STILL_HAS_ENSUREPIP; true")
    assert purge.returncode == 0 and "STILL_HAS_ENSUREPIP" not in purge.stdout, purge.output
    before = root.files()

    first = root.run("bash /bundle/install.sh --township 城关镇")
    assert first.returncode == 0, first.output
    assert "no venv module: private site directory /opt/shaobing/venv/lib/site" in first.stdout
    assert (root.path / "opt/shaobing/venv/lib/site/agent/cli.py").is_file()
    assert not (root.path / "opt/shaobing/venv/pyvenv.cfg").exists()
    password = re.search(r"password: (\S+)", first.stdout)
    assert password, first.stdout
    scraped = root.run(f"PASSWORD={password.group(1)}\n" + SCRAPE)
    assert scraped.returncode == 0, scraped.output
    assert "AGENT_USER=shaobing" in scraped.stdout
    assert 'shaobing_collector_success{collector="health"} 1' in scraped.stdout
    # The agent's own children (the password audit) find the private site directory too.
    once = root.run("/opt/shaobing/venv/bin/shaobing agent once --collector passwords --collector health")
    assert once.returncode == 0, once.output
    assert "shaobing_password_accounts" in once.stdout

    again = root.run("bash /bundle/install.sh")
    assert again.returncode == 0 and "升级 upgrade" in again.stdout, again.output
    assert root.run("/opt/shaobing/venv/bin/shaobing version").returncode == 0

    purged = root.run("bash /bundle/install.sh --uninstall --purge")
    assert purged.returncode == 0, purged.output
    after = root.files()
    assert after - before == set(), f"left behind: {sorted(after - before)[:20]}"
    assert before - after == set(), f"removed: {sorted(before - after)[:20]}"
