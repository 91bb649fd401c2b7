"""Risky file modes in a temp root laid out like a host: planted bad modes are found, good ones are not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.collector import AgentContext
from agent.collectors.permissions import PermissionsCollector, PermissionsOptions

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown to other users needs root")


def _file(path: Path, mode: int, text: str = "x\n", uid: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chown(path, uid, uid)
    path.chmod(mode)
    return path


@pytest.fixture
def host(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    _file(root / "etc/passwd", 0o644, "root:x:0:0::/root:/bin/bash\n")
    _file(root / "etc/group", 0o644)
    _file(root / "etc/shadow", 0o644)  # readable by everyone: bad
    _file(root / "etc/gshadow", 0o640)
    _file(root / "etc/sudoers", 0o440)
    _file(root / "etc/sudoers.d/admins", 0o666)  # anyone can grant themselves sudo: bad
    _file(root / "etc/cron.d/backup", 0o666)  # root runs it, anyone edits it: bad (Lynis' finding)
    _file(root / "etc/cron.daily/logrotate", 0o755)
    (root / "etc/spool-tmp").mkdir(parents=True)
    (root / "etc/spool-tmp").chmod(0o1777)  # world-writable with the sticky bit: fine
    (root / "etc/cron.d/link").symlink_to("/tmp/anything")  # links are not followed
    _file(root / "lib/systemd/system/app.service", 0o646)  # bad
    _file(root / "usr/bin/ping", 0o4755)
    _file(root / "usr/local/bin/helper", 0o4755)  # SUID, no package: bad
    (root / "bin").symlink_to("usr/bin")  # merged /usr
    _file(root / "var/lib/dpkg/info/iputils-ping.list", 0o644, "/.\n/bin\n/bin/ping\n")
    _file(root / "home/alice/.ssh/authorized_keys", 0o666, uid=0)  # writable by others: bad
    for p in (root / "home/alice", root / "home/alice/.ssh"):
        os.chown(p, 0, 0)
    _file(root / "home/bob/.ssh/authorized_keys", 0o600, uid=65534)
    for p in (root / "home/bob", root / "home/bob/.ssh"):
        os.chown(p, 65534, 65534)
        p.chmod(0o700)
    return root


def test_planted_modes_are_found_and_good_ones_are_not(host: Path, tmp_path: Path) -> None:
    col = PermissionsCollector(PermissionsOptions(root=str(host)), AgentContext(state_dir=tmp_path / "state"))
    out = col.new_metric_set()
    col.collect(out)
    count = lambda check: out.get("shaobing_permission_findings", {"check": check})  # noqa: E731
    assert count("world_writable") == 3  # cron.d/backup, sudoers.d/admins (also under /etc), app.service
    assert count("key_file") == 2  # shadow 0644, sudoers.d/admins 0666
    assert count("suid_unpackaged") == 1  # /usr/local/bin/helper; /usr/bin/ping is dpkg's /bin/ping
    assert count("authorized_keys") == 1  # alice's; bob's is his own and 0600
    assert out.get("shaobing_permission_scan_truncated") == 0
    report = col.report()
    assert report is not None
    titles = "\n".join(f"{f.title} | {f.fix}" for f in report.findings)
    assert "/etc/cron.d/backup | chmod o-w /etc/cron.d/backup" in titles
    assert "/usr/local/bin/helper" in titles and "/usr/bin/ping" not in titles
    assert "/etc/spool-tmp" not in titles and "link" not in titles and "bob" not in titles
    assert "chown root /etc/shadow && chmod 0640 /etc/shadow" in titles


def test_the_walk_is_bounded_and_says_so(host: Path, tmp_path: Path) -> None:
    opts = PermissionsOptions(root=str(host), max_entries=3)
    col = PermissionsCollector(opts, AgentContext(state_dir=tmp_path / "state"))
    out = col.new_metric_set()
    col.collect(out)
    assert out.get("shaobing_permission_scan_truncated") == 1
