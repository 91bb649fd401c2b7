"""The dnf paths of the updates and versions collectors against real dnf and rpm (Debian's packages), on an
``--installroot`` that real dnf installed from local repositories built here with rpmbuild and createrepo_c —
one of them carrying updateinfo (a security and a bugfix advisory), as RHEL, Rocky and openEuler publish."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from agent.catalog import MetricSet
from agent.collector import AgentContext
from agent.collectors.updates import UpdatesCollector, UpdatesOptions
from agent.collectors.versions import VersionsCollector, VersionsOptions

pytestmark = [pytest.mark.integration, pytest.mark.skipif(
    not all(shutil.which(t) for t in ("dnf", "rpm", "rpmbuild", "createrepo_c", "modifyrepo_c")),
    reason="needs Debian's dnf, rpm and createrepo-c packages")]

SPEC = """Name: %{pkg}
Version: %{ver}
Release: %{rel}
Summary: Shaobing test package
License: MIT
BuildArch: noarch
%description
A package with no files, for the updates collector's dnf test.
%files
"""
UPDATEINFO = """<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="security@example.gov.cn" status="stable" type="security" version="1">
    <id>TSA-2026:0001</id>
    <title>Important: township-tool security update</title>
    <severity>Important</severity>
    <issued date="2026-11-20 00:00:00"/>
    <updated date="2026-11-20 00:00:00"/>
    <description>Fixes a remote code execution.</description>
    <references/>
    <pkglist><collection short="updates"><name>updates</name>
      <package name="township-tool" version="1.1" release="1" epoch="0" arch="noarch"
               src="township-tool-1.1-1.src.rpm"><filename>township-tool-1.1-1.noarch.rpm</filename></package>
    </collection></pkglist>
  </update>
  <update from="bugs@example.gov.cn" status="stable" type="bugfix" version="1">
    <id>TBA-2026:0002</id>
    <title>office-tool bug fix update</title>
    <issued date="2026-11-21 00:00:00"/>
    <updated date="2026-11-21 00:00:00"/>
    <description>Fixes printing.</description>
    <references/>
    <pkglist><collection short="updates"><name>updates</name>
      <package name="office-tool" version="2.1" release="1" epoch="0" arch="noarch"
               src="office-tool-2.1-1.src.rpm"><filename>office-tool-2.1-1.noarch.rpm</filename></package>
    </collection></pkglist>
  </update>
</updates>
"""
ROCKY = 'NAME="Rocky Linux"\nVERSION="9.4 (Blue Onyx)"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n'
STREAM = 'NAME="CentOS Stream"\nVERSION="9"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="9"\n'


@pytest.fixture(autouse=True)
def rhel_rpm_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Debian's rpm keeps its database in ~/.rpmdb; RHEL-family hosts keep it in /var/lib/rpm (EL9 through
    a link to /usr/lib/sysimage/rpm). ~/.rpmmacros gives the installroot, dnf and ``rpm --root`` that layout."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".rpmmacros").write_text("%_dbpath /var/lib/rpm\n")
    monkeypatch.setenv("HOME", str(home))


def sh(*argv: str) -> str:
    return subprocess.run(list(argv), check=True, capture_output=True, text=True, timeout=120).stdout


def build_repos(tmp: Path, updateinfo: bool = True) -> tuple[Path, Path]:
    spec = tmp / "t.spec"
    spec.write_text(SPEC)
    base, updates = tmp / "base", tmp / "updates"
    for repo, packages in ((base, (("township-tool", "1.0", "1"), ("office-tool", "2.0", "1"),
                                   ("nginx", "1.20.1", "14.el9"))),
                           (updates, (("township-tool", "1.1", "1"), ("office-tool", "2.1", "1")))):
        repo.mkdir()
        for name, ver, rel in packages:
            sh("rpmbuild", "-bb", "--quiet", "--define", f"_topdir {tmp / 'build'}", "--define", f"pkg {name}",
               "--define", f"ver {ver}", "--define", f"rel {rel}", str(spec))
            shutil.copy(tmp / "build/RPMS/noarch" / f"{name}-{ver}-{rel}.noarch.rpm", repo)
        sh("createrepo_c", "-q", str(repo))
    if updateinfo:
        (tmp / "updateinfo.xml").write_text(UPDATEINFO)
        sh("modifyrepo_c", str(tmp / "updateinfo.xml"), str(updates / "repodata"))
    return base, updates


def install_root(tmp: Path, os_release: str, *, cache: bool = True, updateinfo: bool = True) -> Path:
    base, updates = build_repos(tmp, updateinfo)
    root = tmp / "root"
    (root / "etc/yum.repos.d").mkdir(parents=True)
    (root / "etc/os-release").write_text(os_release)
    for repo in (base, updates):
        (root / f"etc/yum.repos.d/{repo.name}.repo").write_text(
            f"[{repo.name}]\nname={repo.name}\nbaseurl=file://{repo}\nenabled=1\ngpgcheck=0\n")
    opts = dnf_options(root)
    sh("dnf", "-q", "-y", *opts, "--setopt=install_weak_deps=False", "install", "township-tool-1.0",
       "office-tool-2.0", "nginx")
    if cache:
        sh("dnf", "-q", *opts, "makecache")
    return root


def dnf_options(root: Path) -> list[str]:
    return [f"--installroot={root}", "--releasever=9", f"--setopt=reposdir={root / 'etc/yum.repos.d'}"]


def updates_collector(root: Path, tmp: Path) -> UpdatesCollector:
    options = UpdatesOptions(manager="dnf", rpm_options=dnf_options(root),
                             rpm_cache_globs=[f"{root}/var/cache/dnf/*/repodata/repomd.xml"])
    return UpdatesCollector(options, AgentContext(state_dir=tmp / "state"), root=root)


def collect(collector: UpdatesCollector | VersionsCollector) -> MetricSet:
    out = collector.new_metric_set()
    collector.collect(out)
    return out


def test_dnf_counts_updates_by_repository_and_security_advisories(tmp_path: Path) -> None:
    root = install_root(tmp_path, ROCKY)
    out = collect(updates_collector(root, tmp_path))
    assert out.get("yum_upgrades_pending", {"origin": "updates"}) == 2
    assert out.get("shaobing_security_updates_supported") == 1
    assert out.get("shaobing_security_updates_pending") == 1  # the bugfix advisory is not a security update
    since = out.get("shaobing_security_updates_pending_since_timestamp_seconds")
    assert since is not None and abs(since - time.time()) < 120
    meta = out.get("shaobing_package_metadata_timestamp_seconds", {"manager": "dnf"})
    assert meta is not None and abs(meta - time.time()) < 300


def test_centos_stream_has_no_advisories_so_security_is_unknown(tmp_path: Path) -> None:
    root = install_root(tmp_path, STREAM, updateinfo=False)
    out = collect(updates_collector(root, tmp_path))
    assert out.get("yum_upgrades_pending", {"origin": "updates"}) == 2
    assert out.get("shaobing_security_updates_supported") == 0
    assert out.get("shaobing_security_updates_pending") is None  # unknown, never 0


def test_no_cached_metadata_is_an_error_that_says_so(tmp_path: Path) -> None:
    root = install_root(tmp_path, ROCKY)
    shutil.rmtree(root / "var/cache/dnf")
    with pytest.raises(RuntimeError, match="no cached metadata"):
        collect(updates_collector(root, tmp_path))


def test_versions_reads_the_rpm_database_of_the_root(tmp_path: Path) -> None:
    root = install_root(tmp_path, ROCKY)
    collector = VersionsCollector(VersionsOptions(), AgentContext(state_dir=tmp_path / "state"), root=root,
                                  path_dirs=[])
    out = collect(collector)
    info = {(s.label("software"), s.label("version"), s.label("source")) for s in out.samples("shaobing_software_info")}
    assert ("nginx", "1.20.1-14.el9", "package") in info  # the package version, as dpkg's path reports it
    eol = {(s.label("product"), s.label("cycle"), s.label("kind")): s.value
           for s in out.samples("shaobing_eol_timestamp_seconds")}
    # A distro package follows the distro's support, not upstream's end of life (nginx 1.20 ended in 2022):
    # only the OS, identified from the root's os-release, carries a date.
    assert sorted(eol) == [("rocky-linux", "9", "os")]
    assert eol[("rocky-linux", "9", "os")] > time.time()
