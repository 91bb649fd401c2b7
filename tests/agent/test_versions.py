"""Versions collector: OS identity, EOL with an injected clock, software discovery on the real machine."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agent.collector import AgentContext
from agent.collectors.versions import VersionsCollector, VersionsOptions, _eol_findings, _RunResult
from agent.platform import software as sw
from agent.platform.baseline import BaselineError, load_baseline
from agent.platform.eol_data import EolDataError, load_eol_data
from agent.platform.os_release import identify_os, identity_from_release_line
from agent.platform.windows import identity_from_windows

FIXTURES = Path(__file__).parent / "fixtures" / "versions"


def ts(day: str) -> float:
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()


def os_root(tmp_path: Path, fixture: str) -> Path:
    root = tmp_path / fixture
    (root / "etc").mkdir(parents=True)
    shutil.copy(FIXTURES / "os-release" / fixture, root / "etc" / "os-release")
    return root


def collector(tmp_path: Path, root: Path, now: float, **kwargs: object) -> VersionsCollector:
    context = AgentContext(state_dir=tmp_path / "state", clock=lambda: now)
    return VersionsCollector(VersionsOptions(), context, root=root, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fixture", "product", "cycle"),
    [
        ("centos7", "centos", "7"),
        ("centos-stream9", "centos-stream", "9"),
        ("rocky9", "rocky-linux", "9"),
        ("kylin-v10", "kylin", "V10"),
        ("uos-server-20", "uos-server", "V20"),
        ("openeuler-2003", "openeuler", "20.03-LTS"),
        ("debian12", "debian", "12"),
    ],
)
def test_os_identity_from_real_os_release_files(tmp_path: Path, fixture: str, product: str, cycle: str) -> None:
    identity = identify_os(os_root(tmp_path, fixture))
    assert identity is not None
    assert (identity.product, identity.cycle) == (product, cycle)


def test_release_file_fallbacks() -> None:
    kylin = identity_from_release_line("Kylin Linux Advanced Server release V10 (Sword)", "/etc/kylin-release")
    centos = identity_from_release_line("CentOS Linux release 7.9.2009 (Core)", "/etc/redhat-release")
    assert kylin is not None and (kylin.product, kylin.cycle) == ("kylin", "V10")
    assert centos is not None and (centos.product, centos.cycle) == ("centos", "7")


def test_centos7_eol_with_injected_clock(tmp_path: Path) -> None:
    root = os_root(tmp_path, "centos7")
    labels = {"product": "centos", "cycle": "7", "kind": "os"}

    before = collector(tmp_path, root, ts("2024-06-29"))
    assert before.report() is None  # nothing to say before a run
    out = before.new_metric_set()
    before.collect(out)
    assert out.get("shaobing_eol_timestamp_seconds", labels) == ts("2024-06-30")
    assert out.get("shaobing_eol_unknown", labels) == 0
    report = before.report()
    assert report is not None
    assert not [f for f in report.findings if f.severity == "critical"]
    assert any("将于 2024-06-30 停止支持" in f.title for f in report.findings)  # soon, not yet

    after = collector(tmp_path, root, ts("2024-07-01"))
    out = after.new_metric_set()
    after.collect(out)
    assert out.get("shaobing_eol_timestamp_seconds", labels) == ts("2024-06-30")
    report = after.report()
    assert report is not None
    critical = [f for f in report.findings if f.severity == "critical"]
    assert len(critical) == 1 and "已于 2024-06-30 停止支持" in critical[0].title
    assert "0" in critical[0].detail  # "0 pending does not mean up to date"


def test_kylin_is_unknown_never_guessed(tmp_path: Path) -> None:
    c = collector(tmp_path, os_root(tmp_path, "kylin-v10"), ts("2026-01-01"))
    out = c.new_metric_set()
    c.collect(out)
    labels = {"product": "kylin", "cycle": "V10", "kind": "os"}
    assert out.get("shaobing_eol_unknown", labels) == 1
    assert out.samples("shaobing_eol_timestamp_seconds") == []
    assert out.get("shaobing_eol_data_timestamp_seconds") == ts("2026-11-27")


def test_uos_year_precision_and_debian_lts(tmp_path: Path) -> None:
    c = collector(tmp_path, os_root(tmp_path, "uos-server-20"), ts("2026-01-01"))
    out = c.new_metric_set()
    c.collect(out)
    assert out.get("shaobing_eol_timestamp_seconds", {"product": "uos-server", "cycle": "V20", "kind": "os"}) == ts(
        "2029-01-01"
    )
    c = collector(tmp_path, os_root(tmp_path, "debian12"), ts("2026-11-27"))
    out = c.new_metric_set()
    c.collect(out)
    # Debian LTS continues in the same security archive, free: that is when Debian 12 stops getting fixes.
    assert out.get("shaobing_eol_timestamp_seconds", {"product": "debian", "cycle": "12", "kind": "os"}) == ts(
        "2028-06-30"
    )


def test_a_cycle_older_than_every_listed_one_is_past_its_end(tmp_path: Path) -> None:
    """nginx 1.16 is older than the oldest listed nginx cycle (1.20, ended 2022-05-24): ended no later than that.
    An unlisted cycle between listed ones (MariaDB 11.2) or newer than all (nginx 1.31) stays unknown, and so does
    an older cycle while the oldest listed one is still supported at the data date."""
    data = load_eol_data()
    fact = data.lookup("nginx", "1.16")
    assert fact is not None and fact.precision == "before" and fact.eol == ts("2022-05-24")
    assert data.lookup("mariadb", "11.2") is None and data.lookup("nginx", "1.31") is None
    assert data.lookup("kylin", "V9") is None  # not a plain number: never ordered, never guessed

    early = tmp_path / "eol.csv"
    early.write_text("# data_date: 2022-01-01\nproduct,cycle,release_date,eol_date,source\n"
                     "nginx,1.20,2021-04-20,2022-05-24,https://example.invalid/nginx\n")
    empty = tmp_path / "overlay.csv"
    empty.write_text("product,cycle,release_date,eol_date,source\n")
    assert load_eol_data(early, empty).lookup("nginx", "1.16") is None

    c = collector(tmp_path, Path("/"), ts("2026-12-01"))
    out = c.new_metric_set()
    result = _RunResult(now=ts("2026-12-01"))
    c._emit_eol(out, result, data, ("nginx",), "nginx", "1.16", "server", "/usr/local/nginx/sbin/nginx")
    labels = {"product": "nginx", "cycle": "1.16", "kind": "server"}
    assert out.get("shaobing_eol_unknown", labels) == 0
    assert out.get("shaobing_eol_timestamp_seconds", labels) == ts("2022-05-24")
    findings = _eol_findings(result.eol[0], ts("2026-12-01"))
    assert len(findings) == 1 and "2022-05-24 或更早" in findings[0].title


def test_operator_eol_file_and_bad_rows(tmp_path: Path) -> None:
    good = tmp_path / "eol.csv"
    good.write_text("# data_date: 2027-01-02\nproduct,cycle,release_date,eol_date,source\n"
                    "kylin,V10,2020-01-01,2030-06-30,https://example.invalid/kylin-lifecycle\n")
    empty_overlay = tmp_path / "overlay.csv"
    empty_overlay.write_text("product,cycle,release_date,eol_date,source\n")
    data = load_eol_data(good, empty_overlay)
    assert data.data_timestamp == ts("2027-01-02")
    fact = data.lookup("kylin", "V10")
    assert fact is not None and fact.eol == ts("2030-06-30")

    bad = tmp_path / "bad.csv"
    bad.write_text("product,cycle,release_date,eol_date,source\nkylin,V10,2020,2031,\n")
    with pytest.raises(EolDataError, match=r"bad\.csv:2: .*no source"):
        load_eol_data(bad, empty_overlay)
    bad.write_text("product,cycle,release_date,eol_date,source\nkylin,V10,2020,soon,https://x\n")
    with pytest.raises(EolDataError, match=r"bad\.csv:2: eol_date 'soon'"):
        load_eol_data(bad, empty_overlay)


def test_windows_identity_injected() -> None:
    server = identity_from_windows({"ProductName": "Windows Server 2019 Datacenter", "CurrentBuildNumber": "17763",
                                    "InstallationType": "Server"})
    assert server is not None and (server.product, server.cycle) == ("windows-server", "2019")
    client = identity_from_windows({"ProductName": "Windows 10 Pro", "CurrentBuildNumber": "19045",
                                    "DisplayVersion": "22H2", "InstallationType": "Client"})
    assert client is not None and (client.product, client.cycle) == ("windows", "10-22h2")
    win7 = identity_from_windows({"ProductName": "Windows 7 Professional", "CurrentBuildNumber": "7601"})
    assert win7 is not None and win7.cycle == "7-sp1"


def test_windows_eol_through_collector(tmp_path: Path) -> None:
    values = {"ProductName": "Windows Server 2012 R2 Standard", "CurrentBuildNumber": "9600",
              "InstallationType": "Server"}
    c = collector(tmp_path, tmp_path / "empty", ts("2026-01-01"), windows_values=values)
    out = c.new_metric_set()
    c.collect(out)
    labels = {"product": "windows-server", "cycle": "2012-r2", "kind": "os"}
    assert out.get("shaobing_eol_timestamp_seconds", labels) == ts("2023-10-10")


def test_version_helpers_and_baseline() -> None:
    assert sw.version_key("1.1.1w") < sw.version_key("1.1.1zd")
    assert sw.version_key("9.8p1") < sw.version_key("9.9p2") < sw.version_key("10.0p1")
    assert sw.upstream_version("1:9.2p1-2+deb12u3") == "9.2p1"
    assert sw.eol_cycle("openssl", "1.1.1w") == "1.1.1"
    assert sw.eol_cycle("openssl", "3.0.11") == "3.0"
    assert sw.eol_cycle("postgresql", "9.6.24") == "9.6"
    assert sw.eol_cycle("tomcat", "8.5.100") == "8.5"
    baseline = load_baseline()
    nginx_old = baseline.judge("nginx", "1.22.1")
    assert nginx_old is not None and nginx_old.outdated  # an abandoned branch built by hand
    nginx_ok = baseline.judge("nginx", "1.26.3")
    assert nginx_ok is not None and not nginx_ok.outdated
    ssh = baseline.judge("openssh", "9.8p1")
    assert ssh is not None and ssh.outdated and ssh.entry is not None and "CVE-2025-26465" in ssh.entry.advisory
    assert baseline.judge("redis", "7.2.11") is not None and not baseline.judge("redis", "7.2.11").outdated  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("software", "version", "verdict"),
    [
        # End-of-life branches between (or below) the maintained ones are outdated whatever their patch level.
        ("redis", "7.0.15", "unmaintained_branch"),
        ("tomcat", "10.0.27", "unmaintained_branch"),
        ("openssl", "3.1.8", "unmaintained_branch"),
        ("mariadb", "11.2.6", "unmaintained_branch"),
        ("nginx", "1.16.1", "unmaintained_branch"),
        ("redis", "7.2.10", "below_minimum"),
        ("redis", "7.2.11", "current"),
        # Newer than every branch the baseline knows: it cannot judge, so it says nothing (not "fine").
        ("java", "25.0.1", None),
        ("redis", "9.0.0", None),
        ("nodejs", "22.1.0", None),
    ],
)
def test_baseline_verdicts_are_honest(software: str, version: str, verdict: str | None) -> None:
    judged = load_baseline().judge(software, version)
    if verdict is None:
        assert judged is None
    else:
        assert judged is not None and judged.reason == verdict and judged.outdated == (verdict != "current")


def test_baseline_without_advisory_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "baseline.yml"
    bad.write_text("nginx:\n  - {branch: '1.26', minimum: '1.26.3', advisory: '', url: ''}\n")
    with pytest.raises(BaselineError, match=r"baseline\.yml:2: nginx: every minimum needs its advisory"):
        load_baseline(bad)


def _dpkg_version(package: str) -> str:
    result = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True,
                            timeout=30, check=False)
    if result.returncode != 0 or not result.stdout:
        pytest.skip(f"{package} is not installed")
    return result.stdout


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs a Debian host")
def test_real_packages_detected_with_dpkg_versions(tmp_path: Path) -> None:
    nginx, redis = _dpkg_version("nginx"), _dpkg_version("redis-server")
    c = collector(tmp_path, Path("/"), ts("2026-11-27"), path_dirs=[], tomcat_globs=[])
    c.opts.search_paths = [str(tmp_path / "nothing-here")]
    out = c.new_metric_set()
    c.collect(out)
    assert out.get("shaobing_software_info", {"software": "nginx", "version": nginx, "source": "package"}) == 1
    assert out.get("shaobing_software_info", {"software": "redis", "version": redis, "source": "package"}) == 1
    # distro packages: no upstream EOL or baseline verdict (backports), the OS EOL covers them
    assert out.get("shaobing_software_outdated", {"software": "nginx"}) is None
    assert not [s for s in out.samples("shaobing_eol_unknown") if ("product", "nginx") in s.labels]


@pytest.mark.skipif(not Path("/usr/sbin/nginx").exists() or not Path("/usr/bin/redis-server").exists(),
                    reason="needs Debian's nginx and redis-server")
def test_hand_installed_binaries_probed(tmp_path: Path) -> None:
    """Copies of the real binaries under a /usr/local-like tree are not owned by dpkg: probed, judged."""
    nginx_dir = tmp_path / "usr_local" / "nginx" / "sbin"
    redis_dir = tmp_path / "usr_local" / "redis" / "bin"
    nginx_dir.mkdir(parents=True)
    redis_dir.mkdir(parents=True)
    shutil.copy("/usr/sbin/nginx", nginx_dir / "nginx")
    shutil.copy("/usr/bin/redis-server", redis_dir / "redis-server")
    nginx_version = sw.upstream_version(_dpkg_version("nginx"))
    redis_version = sw.upstream_version(_dpkg_version("redis-server"))

    probed = sw.probe_binary(sw.spec_for("nginx"), "/usr/sbin/nginx", 10)
    assert probed is not None and probed.version == nginx_version

    c = collector(tmp_path, Path("/"), ts("2026-11-27"), path_dirs=[], tomcat_globs=[])
    c.opts.search_paths = [str(tmp_path / "usr_local" / "*" / "sbin"), str(tmp_path / "usr_local" / "*" / "bin")]
    out = c.new_metric_set()
    c.collect(out)
    assert out.get("shaobing_software_info", {"software": "nginx", "version": nginx_version, "source": "binary"}) == 1
    assert out.get("shaobing_software_info", {"software": "redis", "version": redis_version, "source": "binary"}) == 1
    assert out.get("shaobing_software_outdated", {"software": "nginx"}) == 1  # 1.22 < 1.26.3 (CVE-2025-23419)
    cycle = sw.eol_cycle("nginx", nginx_version)
    assert out.get("shaobing_eol_timestamp_seconds", {"product": "nginx", "cycle": cycle, "kind": "server"}) == ts(
        "2023-04-11"
    )
    report = c.report()
    assert report is not None
    # Debian 12's nginx 1.22 built by hand: a branch nginx no longer maintains.
    assert any("nginx" in f.title and ("低于安全基线" in f.title or "已停止维护" in f.title) for f in report.findings)


_PYENV = Path("/root/.pyenv/versions")


@pytest.mark.skipif(not (_PYENV / "3.7.16" / "bin" / "python3.7").exists(), reason="needs pyenv's CPython 3.7.16")
def test_runtimes_under_pyenv_asdf_and_conda_trees_are_found(tmp_path: Path) -> None:
    """Interpreters in runtime managers' trees (pyenv, asdf, conda bases and environments, in /root, /home and
    /opt) are found by the default globs and judged: a hand-kept Python 3.7 is past its end of life."""
    layouts = [
        Path("/home/sbtest-user/.asdf/installs/python/3.7.16"),
        Path("/opt/miniconda3-sbtest/envs/legacy"),
        Path("/home/sbtest-user/.pyenv/versions/3.7.16-sbtest"),
    ]
    made = [Path("/home/sbtest-user"), Path("/opt/miniconda3-sbtest")]
    assert not any(p.exists() for p in made), "left over from an earlier run"
    try:
        for root in layouts:
            # A copied interpreter (not a symlink): its own real path, as a separate install has.
            subprocess.run([str(_PYENV / "3.7.16" / "bin" / "python3.7"), "-m", "venv", "--copies", "--without-pip",
                            str(root)], check=True, timeout=60)
        found = sw.discover(manager=None, packages={}, path_dirs=[], include_system_dirs=False, tomcat_globs=())
        pythons = {d.where: d.version for d in found if d.software == "python"}
        for root in layouts:
            hits = [v for where, v in pythons.items() if where.startswith(str(root) + "/bin/")]
            assert hits == ["3.7.16"], (root, pythons)
        # pyenv's own builds in /root/.pyenv are found as well
        assert any(w.startswith(str(_PYENV) + "/") for w in pythons), pythons

        c = collector(tmp_path, Path("/"), ts("2026-12-01"), path_dirs=[], tomcat_globs=[])
        out = c.new_metric_set()
        c.collect(out)
        assert out.get("shaobing_eol_timestamp_seconds", {"product": "python", "cycle": "3.7", "kind": "runtime"}) \
            == ts("2023-06-27")
        report = c.report()
        assert report is not None
        assert any("python" in f.title.lower() and "3.7" in f.title for f in report.findings)
    finally:
        for p in made:
            shutil.rmtree(p, ignore_errors=True)


def _catalina_jar(path: Path, version: str) -> None:
    """catalina.jar as Tomcat ships it: org/apache/catalina/util/ServerInfo.properties with server.number."""
    import zipfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as jar:
        jar.writestr("org/apache/catalina/util/ServerInfo.properties",
                     f"server.info=Apache Tomcat/{version}\nserver.number={version}.0\nserver.built=Jun 28 2021\n")


def _file_repository(tmp: Path, packages: str) -> list[str]:
    """An offline mirror (file: URI) brought in by a real ``apt-get update``; the apt options that use it."""
    (tmp / "repo").mkdir(parents=True)
    (tmp / "repo" / "Packages").write_text(packages)
    for d in ("lists/partial", "parts", "cache/archives/partial"):
        (tmp / d).mkdir(parents=True)
    (tmp / "sources.list").write_text(f"deb [trusted=yes] file:{tmp / 'repo'} ./\n")
    options = [f"Dir::Etc::sourcelist={tmp / 'sources.list'}", f"Dir::Etc::sourceparts={tmp / 'parts'}",
               f"Dir::State::Lists={tmp / 'lists'}", f"Dir::Cache={tmp / 'cache'}"]
    subprocess.run(["apt-get", *[x for o in options for x in ("-o", o)], "update"], check=True, capture_output=True,
                   timeout=120)
    return options


@pytest.mark.skipif(shutil.which("apt-cache") is None, reason="needs apt")
def test_tomcat_fix_suggests_a_distro_package_only_where_the_repositories_have_one(tmp_path: Path) -> None:
    """A hand-installed Tomcat 9.0.50 (CVE-2025-24813): on a Debian whose lists offer tomcatN the fix names
    that package; with a mirror that has no Tomcat (as RHEL 9 has none) it says so; with no lists, no claim."""
    jar = tmp_path / "opt" / "tomcat" / "lib" / "catalina.jar"
    _catalina_jar(jar, "9.0.50")

    def fix_text(apt_options: list[str]) -> str:
        c = collector(tmp_path, Path("/"), ts("2026-12-01"), path_dirs=[], tomcat_globs=[str(jar)])
        c.opts.search_paths = [str(tmp_path / "nothing")]
        c.opts.apt_options = apt_options
        out = c.new_metric_set()
        c.collect(out)
        assert out.get("shaobing_software_outdated", {"software": "tomcat"}) == 1
        report = c.report()
        assert report is not None
        fixes = [f.fix for f in report.findings if "tomcat 9.0.50" in f.title]
        assert len(fixes) == 1, [f.title for f in report.findings]
        return fixes[0]

    offered = subprocess.run(["apt-cache", "pkgnames", "tomcat"], capture_output=True, text=True, timeout=60)
    on_this_host = sorted(n for n in offered.stdout.split() if re.fullmatch(r"tomcat\d+", n))
    if on_this_host:
        text = fix_text([])
        assert re.search(r"apt-get install (tomcat\d+)", text), text
        assert re.search(r"apt-get install (tomcat\d+)", text).group(1) in on_this_host  # type: ignore[union-attr]

    no_tomcat = _file_repository(tmp_path / "mirror", "Package: hello\nVersion: 2.10-3\nArchitecture: amd64\n"
                                 "Filename: ./hello_2.10-3_amd64.deb\nSize: 56132\nDescription: hello\n\n")
    text = fix_text(no_tomcat)
    assert "没有 tomcat 软件包" in text and "apt-get install" not in text, text

    never_updated = tmp_path / "empty-lists"
    (never_updated / "partial").mkdir(parents=True)
    text = fix_text([f"Dir::State::Lists={never_updated}"])
    assert "apt-get install" not in text and "没有" not in text and "9.0.99" in text, text
