"""Updates collector: real apt against a local repository, dnf/yum on captured outputs, a hanging apt-get."""

from __future__ import annotations

import email.utils
import hashlib
import os
import shutil
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.collector import AgentContext
from agent.collectors.reboot import RebootCollector, RebootOptions
from agent.collectors.updates import UpdatesCollector, UpdatesOptions
from agent.exporter import ExpositionCache
from agent.platform import apt, rpm
from agent.platform.os_release import OsIdentity
from agent.process import CommandError
from agent.scheduler import Scheduler

FIXTURES = Path(__file__).parent / "fixtures" / "versions"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


# -- parsers on captured outputs -----------------------------------------------------------------------------
def test_apt_inst_lines() -> None:
    text = (
        "NOTE: This is only a simulation!\n"
        "Inst libssl3 [3.0.11-1~deb12u1] (3.0.11-1~deb12u2 Debian:12.4/stable, Debian-Security:12/stable-security"
        " [amd64])\n"
        "Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable-updates [all])\n"
        "Inst newdep (1.0-1 Debian:12.11/stable [amd64])\n"
        "Conf libssl3 (3.0.11-1~deb12u2 Debian:12.4/stable, Debian-Security:12/stable-security [amd64])\n"
    )
    upgrades = apt.parse_simulation(text)
    assert [(u.package, u.origin, u.arch, u.security) for u in upgrades] == [
        ("libssl3", "Debian:12.4/stable,Debian-Security:12/stable-security", "amd64", True),
        ("tzdata", "Debian:12.11/stable-updates", "all", False),
        ("newdep", "Debian:12.11/stable", "amd64", False),
    ]


def test_dnf_check_update_fixture() -> None:
    updates = rpm.parse_check_update(fixture("dnf-check-update.txt"))
    assert [u.package for u in updates] == [
        "glibc.x86_64", "glibc-common.x86_64", "glibc-all-langpacks.x86_64",
        "python3-setuptools-wheel-very-long-name.noarch",
    ]
    assert rpm.count_by_repo(updates) == {"dnf-ci-fedora-updates": 3, "dnf-ci-fedora": 1}


def test_updateinfo_fixtures() -> None:
    assert rpm.parse_updateinfo_security(fixture("dnf-updateinfo-security.txt")) == {"kernel", "openssl-libs", "curl"}
    assert rpm.parse_updateinfo_security(fixture("yum-updateinfo-rhel7.txt")) == {"389-ds-base"}
    centos7 = rpm.parse_check_update(fixture("yum-check-update-centos7.txt"))
    assert rpm.count_by_repo(centos7) == {"updates": 4, "base": 1}


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def _fake_rpm_tool(tmp_path: Path, check_update: str, updateinfo: str) -> str:
    (tmp_path / "check-update.txt").write_text(fixture(check_update))
    (tmp_path / "updateinfo.txt").write_text(fixture(updateinfo))
    # Replays captured output; refuses anything that is not cache-only (a refresh must never happen here).
    return _script(tmp_path / "fake-dnf", f"""
case " $* " in *" -C "*) ;; *) echo "refresh attempted: $*" >&2; exit 3;; esac
case " $* " in
  *" check-update "*) cat {tmp_path}/check-update.txt; exit 100;;
  *" updateinfo "*) cat {tmp_path}/updateinfo.txt; exit 0;;
esac
exit 2
""")


def test_rocky9_dnf_with_advisories(tmp_path: Path) -> None:
    tool = _fake_rpm_tool(tmp_path, "dnf-check-update.txt", "dnf-updateinfo-security.txt")
    cache = tmp_path / "cache" / "baseos-abc" / "repodata"
    cache.mkdir(parents=True)
    shutil.copy(FIXTURES / "repomd-updateinfo.xml", cache / "repomd.xml")
    options = UpdatesOptions(manager="dnf", rpm_cache_globs=[str(tmp_path / "cache/*/repodata/repomd.xml")])
    context = AgentContext(state_dir=tmp_path / "state", clock=lambda: 1_800_000_000.0)
    c = UpdatesCollector(options, context, executables={"dnf": tool},
                         identity=OsIdentity("rocky-linux", "9", "Rocky Linux 9.3", "test"))
    out = c.new_metric_set()
    c.collect(out)
    assert out.get("yum_upgrades_pending", {"origin": "dnf-ci-fedora-updates"}) == 3
    assert out.get("shaobing_security_updates_supported") == 1
    assert out.get("shaobing_security_updates_pending") == 3
    assert out.get("shaobing_security_updates_pending_since_timestamp_seconds") == 1_800_000_000.0
    assert out.get("shaobing_package_metadata_timestamp_seconds", {"manager": "dnf"}) == pytest.approx(
        (cache / "repomd.xml").stat().st_mtime)
    state = tmp_path / "state" / "security_updates_since.json"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600

    # A restart (a new collector) keeps "since"; an empty backlog clears it.
    later = AgentContext(state_dir=tmp_path / "state", clock=lambda: 1_800_090_000.0)
    again = UpdatesCollector(options, later, executables={"dnf": tool},
                             identity=OsIdentity("rocky-linux", "9", "Rocky Linux 9.3", "test"))
    out = again.new_metric_set()
    again.collect(out)
    assert out.get("shaobing_security_updates_pending_since_timestamp_seconds") == 1_800_000_000.0


def test_centos7_security_count_absent_not_zero(tmp_path: Path) -> None:
    tool = _fake_rpm_tool(tmp_path, "yum-check-update-centos7.txt", "yum-updateinfo-rhel7.txt")
    cache = tmp_path / "cache" / "x86_64" / "7" / "updates"
    cache.mkdir(parents=True)
    # Even with an (EPEL-style) updateinfo in the cache, CentOS's own repositories have none: unknown.
    shutil.copy(FIXTURES / "repomd-updateinfo.xml", cache / "repomd.xml")
    options = UpdatesOptions(manager="yum", rpm_cache_globs=[str(tmp_path / "cache/*/*/*/repomd.xml")])
    context = AgentContext(state_dir=tmp_path / "state", clock=lambda: 1_800_000_000.0)
    c = UpdatesCollector(options, context, executables={"yum": tool},
                         identity=OsIdentity("centos", "7", "CentOS Linux 7 (Core)", "test"))
    assert c.report() is None  # nothing to say before a run
    out = c.new_metric_set()
    c.collect(out)
    assert out.get("yum_upgrades_pending", {"origin": "updates"}) == 4
    assert out.get("shaobing_security_updates_supported") == 0
    assert out.get("shaobing_security_updates_pending") is None
    report = c.report()
    assert report is not None
    titles = " ".join(f.title for f in report.findings)
    assert "无法统计安全更新" in titles
    assert "停止支持" in titles  # CentOS 7 is past EOL: "0 pending" must not read as up to date


# -- a hanging package manager ---------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("apt-config") is None, reason="needs apt")
def test_hanging_apt_get_fails_alone(tmp_path: Path) -> None:
    fake = _script(tmp_path / "apt-get", "sleep 60\n")
    updates = UpdatesCollector(UpdatesOptions(manager="apt", command_timeout=1.0),
                               AgentContext(state_dir=tmp_path / "s1"), executables={"apt-get": fake})
    started = time.monotonic()
    with pytest.raises(CommandError, match="did not finish within 1s"):
        updates.collect(updates.new_metric_set())
    assert time.monotonic() - started < 10

    (tmp_path / "root" / "run").mkdir(parents=True)
    (tmp_path / "root" / "run" / "reboot-required").write_text("*** System restart required ***\n")
    reboot = RebootCollector(RebootOptions(), AgentContext(state_dir=tmp_path / "s2"), root=tmp_path / "root")
    cache = ExpositionCache()
    results = Scheduler([updates, reboot], cache).run_all_once()
    assert [r.success for r in results] == [False, True]
    page = cache.page()[0].decode()
    assert "node_reboot_required 1" in page
    assert "apt_upgrades_pending" not in page
    assert 'shaobing_collector_success{collector="updates"} 0' in page


# -- real apt with a local repository ---------------------------------------------------------------------------
def _run(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"})
    assert result.returncode == 0, f"{argv}: {result.stdout}\n{result.stderr}"
    return result


def _build_deb(tmp: Path, name: str, version: str) -> Path:
    root = tmp / f"build-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Shaobing tests <tests@localhost>\n"
        "Section: misc\nPriority: optional\nDescription: Shaobing test package\n Installed and removed by tests.\n"
    )
    deb = tmp / f"{name}_{version}_all.deb"
    _run(["dpkg-deb", "-Zgzip", "--root-owner-group", "--build", str(root), str(deb)])
    return deb


def _publish(repo: Path, debs: list[Path]) -> None:
    """A flat repository whose Release says security, as Debian's security archive does."""
    for old in repo.glob("*"):
        old.unlink()
    for deb in debs:
        shutil.copy(deb, repo / deb.name)
    packages = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo, capture_output=True,
                              text=True, timeout=60, check=True).stdout
    (repo / "Packages").write_text(packages)
    data = (repo / "Packages").read_bytes()
    (repo / "Release").write_text(
        "Origin: Debian-Security\nLabel: Debian-Security\nSuite: stable-security\nCodename: shaobing-test\n"
        f"Date: {email.utils.formatdate(usegmt=True)}\nArchitectures: all amd64\nComponents: main\n"
        f"SHA256:\n {hashlib.sha256(data).hexdigest()} {len(data)} Packages\n"
    )


@pytest.fixture
def apt_sandbox(tmp_path: Path) -> Iterator[tuple[Path, list[str], str]]:
    if os.geteuid() != 0 or shutil.which("dpkg-scanpackages") is None or shutil.which("apt-get") is None:
        pytest.skip("needs root, apt and dpkg-dev")
    name = f"shaobing-test-pkg-{uuid.uuid4().hex[:8]}"
    repo = tmp_path / "repo"
    for sub in ("repo", "lists/partial", "cache/archives/partial", "sources.list.d"):
        (tmp_path / sub).mkdir(parents=True)
    (tmp_path / "sources.list").write_text(f"deb [trusted=yes] file:{repo} ./\n")
    options = [
        f"Dir::Etc::sourcelist={tmp_path / 'sources.list'}",
        f"Dir::Etc::sourceparts={tmp_path / 'sources.list.d'}",
        f"Dir::State::Lists={tmp_path / 'lists'}",
        f"Dir::Cache={tmp_path / 'cache'}",
        "APT::Sandbox::User=root",
    ]
    try:
        yield tmp_path, options, name
    finally:
        subprocess.run(["dpkg", "--purge", name], capture_output=True, timeout=120, check=False)


def _apt_update(options: list[str]) -> None:
    argv = ["apt-get", "update", "-q"]
    for option in options:
        argv += ["-o", option]
    _run(argv)  # only in the test, only for the private list: never in the collector


def test_real_apt_security_upgrade_moves(apt_sandbox: tuple[Path, list[str], str]) -> None:
    tmp, options, name = apt_sandbox
    old, new = _build_deb(tmp, name, "1.0-1"), _build_deb(tmp, name, "2.0-1")
    started = time.time()
    _run(["dpkg", "-i", str(old)])
    collector = UpdatesCollector(UpdatesOptions(manager="apt", apt_options=options, command_timeout=120),
                                 AgentContext(state_dir=tmp / "state"))

    def measure() -> tuple[dict[tuple[str, str], float], float | None, float | None]:
        out = collector.new_metric_set()
        collector.collect(out)
        pending = {(dict(s.labels)["origin"], dict(s.labels)["arch"]): s.value
                   for s in out.samples("apt_upgrades_pending")}
        assert out.get("shaobing_security_updates_supported") == 1
        # the private lists just fetched, not the machine's own
        assert (out.get("shaobing_package_metadata_timestamp_seconds", {"manager": "apt"}) or 0) >= started - 5
        assert out.get("apt_package_cache_timestamp_seconds") is not None
        return (pending, out.get("shaobing_security_updates_pending"),
                out.get("shaobing_security_updates_pending_since_timestamp_seconds"))

    _publish(tmp / "repo", [old])
    _apt_update(options)
    assert measure() == ({("", ""): 0}, 0, None)

    _publish(tmp / "repo", [old, new])
    _apt_update(options)
    pending, security, since = measure()
    assert security == 1 and since is not None
    assert list(pending.values()) == [1]
    (origin, arch), = pending
    assert arch == "all" and "security" in origin.lower()

    _publish(tmp / "repo", [old])
    _apt_update(options)
    assert measure() == ({("", ""): 0}, 0, None)
