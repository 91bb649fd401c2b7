"""The unit for systemd 219 (CentOS 7): only directives 219 knows, chosen by install.sh there, and the password audit
still reads /etc/shadow although neither systemd 219 nor Linux 3.10 has ambient capabilities.

Two ways in: a Debian 13 root (chroot, offline) where ``systemctl --version`` answers "systemd 219" and
``systemctl restart`` starts ExecStart as systemd 219 does for ``User=`` with ``CapabilityBoundingSet=`` — the
user, the bounding set, no ambient capabilities; and the legacy unit booted under real systemd
(tests/deploy/test_nspawn_boot.py), where the kernel grants the capability from the interpreter's file
capability alone (CapAmb 0, no_new_privs off).
"""

from __future__ import annotations

import configparser
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.rootfs import DebianRoot

REPO = Path(__file__).resolve().parents[2]
LEGACY = REPO / "deploy" / "systemd" / "shaobing-agent.legacy.service"
MODERN = REPO / "deploy" / "systemd" / "shaobing-agent.service"
KNOWN_219 = Path(__file__).parent / "fixtures" / "systemd-219-service-directives.txt"


def _directives(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        out.setdefault(section, []).append(line.split("=", 1)[0])
    return out


def test_every_directive_is_one_systemd_219_knows() -> None:
    known = {section: set(names) for section, names in _directives(KNOWN_219).items()}
    unit = _directives(LEGACY)
    unknown = {section: [d for d in names if d not in known.get(section, set())] for section, names in unit.items()}
    assert {s: d for s, d in unknown.items() if d} == {}
    # The check can fail: the modern unit is full of directives 219 ignores (and so would silently run unhardened
    # and, without AmbientCapabilities=, without the audit's capability).
    modern = _directives(MODERN)["Service"]
    assert {"AmbientCapabilities", "StateDirectory", "ProtectKernelTunables", "MemoryMax"} <= {
        d for d in modern if d not in known["Service"]}


def test_the_legacy_unit_keeps_what_219_can_keep() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(LEGACY, encoding="utf-8")
    svc = parser["Service"]
    assert svc["User"] == "shaobing" and svc["CapabilityBoundingSet"] == "CAP_DAC_READ_SEARCH"
    assert svc["ExecStart"].startswith("/opt/shaobing/venv/bin/python3-cap /opt/shaobing/venv/bin/shaobing agent run")
    assert svc["ReadOnlyDirectories"] == "/" and svc["ReadWriteDirectories"] == "/var/lib/shaobing"
    assert svc["DevicePolicy"] == "closed" and svc["ProtectHome"] == "read-only"
    # Anything that turns on no_new_privs would void the file capability the audit depends on.
    for voiding in ("NoNewPrivileges", "SystemCallFilter", "RestrictAddressFamilies", "SystemCallArchitectures",
                    "PrivateDevices", "MemoryDenyWriteExecute"):
        assert voiding not in svc, voiding


FAKE_SYSTEMCTL_219 = r"""#!/bin/sh
# systemd 219 as far as install.sh sees it: its version, and a restart that starts ExecStart the way 219 does for
# User= and CapabilityBoundingSet= (no AmbientCapabilities=, which 219 does not know).
case "$1" in
    --version) echo "systemd 219"; echo "+PAM +AUDIT +SELINUX +IMA -APPARMOR +SMACK +SYSVINIT +UTMP" ;;
    restart)
        if [ "$2" = shaobing-agent.service ]; then
            exec_start=$(sed -n 's/^ExecStart=//p' /etc/systemd/system/shaobing-agent.service)
            setsid setpriv --reuid=shaobing --regid=shaobing --init-groups --bounding-set=-all,+dac_read_search \
                $exec_start > /tmp/agent.log 2>&1 < /dev/null &
        fi ;;
    stop) [ -f /var/lib/shaobing/agent.pid ] && kill "$(cat /var/lib/shaobing/agent.pid)" 2>/dev/null; sleep 1 ;;
esac
exit 0
"""

PROBE = r"""
/opt/shaobing/venv/bin/python - <<'EOF'
import base64, os, sys, time, urllib.request
auth = base64.b64encode(("prometheus:" + os.environ["PASSWORD"]).encode()).decode()
deadline, body = time.monotonic() + 60, ""
while time.monotonic() < deadline:
    try:
        req = urllib.request.Request("http://127.0.0.1:10130/metrics", headers={"Authorization": "Basic " + auth})
        body = urllib.request.urlopen(req, timeout=5).read().decode()
        if "shaobing_password_accounts{" in body:
            break
    except OSError:
        pass
    time.sleep(0.5)
print(body)
pid = open("/var/lib/shaobing/agent.pid").read().strip()
for line in open("/proc/%s/status" % pid):
    if line.startswith(("Uid", "CapEff", "CapAmb", "NoNewPrivs")):
        print("STATUS " + line.strip())
EOF
"""


@pytest.fixture
def root_219(tmp_path: Path, bundle: Path, needs_root: None) -> Iterator[DebianRoot]:
    root = DebianRoot("trixie", tmp_path / "root")
    root.add_bundle(bundle)
    fake = root.path / "usr/local/bin/systemctl"
    fake.write_text(FAKE_SYSTEMCTL_219)
    fake.chmod(0o755)
    (root.path / "run/systemd/system").mkdir(parents=True, exist_ok=True)
    try:
        yield root
    finally:
        root.remove()


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_install_picks_the_legacy_unit_on_systemd_219_and_the_audit_reads_shadow(root_219: DebianRoot) -> None:
    root = root_219
    before = root.files()
    # One run: install (the fake systemctl starts the agent), then scrape it before the namespace ends.
    result = root.run("bash /bundle/install.sh --township 城关镇 > /tmp/install.out 2>&1; rc=$?; cat /tmp/install.out;"
                      " [ $rc = 0 ] || exit $rc\n"
                      "PASSWORD=$(sed -n 's/.*password: \\([^ ]*\\).*/\\1/p' /tmp/install.out | head -n 1)\n"
                      "export PASSWORD\n" + PROBE)
    assert result.returncode == 0, result.output
    assert "legacy unit" in result.stdout, result.stdout
    unit = root.read("etc/systemd/system/shaobing-agent.service")
    assert unit == LEGACY.read_text(encoding="utf-8")
    cap = root.path / "opt/shaobing/venv/bin/python3-cap"
    import os

    st = cap.stat()
    assert oct(st.st_mode & 0o7777) == "0o750" and st.st_uid == 0
    gid = int(next(line.split(":")[2] for line in root.read("etc/group").splitlines() if line.startswith("shaobing:")))
    assert st.st_gid == gid
    magic, permitted, inheritable, _, _ = struct.unpack("<5I", os.getxattr(cap, "security.capability"))
    assert (magic, permitted, inheritable) == (0x02000001, 1 << 2, 0)  # revision 2, effective, dac_read_search
    status = dict(line.split(None, 2)[1:] for line in result.stdout.splitlines() if line.startswith("STATUS "))
    assert status["Uid:"].split()[0] != "0", status
    assert int(status["CapEff:"], 16) == 1 << 2 and int(status["CapAmb:"], 16) == 0, status
    # The audit's child read /etc/shadow with the interpreter's file capability: accounts are counted.
    assert re.search(r"^shaobing_password_accounts\{", result.stdout, re.M), result.stdout[-3000:]
    assert not re.search(r'^shaobing_collector_success\{collector="passwords"\} 0', result.stdout, re.M)

    purged = root.run("bash /bundle/install.sh --uninstall --purge")
    assert purged.returncode == 0, purged.output
    assert root.files() - before == set()


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_newer_systemd_keeps_the_modern_unit_and_a_missing_capability_is_said(root_219: DebianRoot) -> None:
    """systemd 252: the modern unit. This fake starts it without the ambient capability (as a systemd that ignored
    AmbientCapabilities= would): install.sh reads the running agent's CapEff and says so."""
    (root_219.path / "usr/local/bin/systemctl").write_text(FAKE_SYSTEMCTL_219.replace("systemd 219", "systemd 252"))
    result = root_219.run("bash /bundle/install.sh --township 城关镇")
    assert result.returncode == 0, result.output
    assert "modern unit" in result.stdout
    assert root_219.read("etc/systemd/system/shaobing-agent.service") == MODERN.read_text(encoding="utf-8")
    assert not (root_219.path / "opt/shaobing/venv/bin/python3-cap").exists()
    assert "without CAP_DAC_READ_SEARCH" in result.stderr and "--unit legacy" in result.stderr, result.output
    bad = root_219.run("bash /bundle/install.sh --unit bogus")
    assert bad.returncode == 2 and "--unit" in bad.stderr, bad.output
