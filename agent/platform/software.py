"""Versions of the runtimes and servers on a host: from the package database first, then from binaries.

Distro packages are read in one ``dpkg-query -W`` / ``rpm -qa`` call. Then binaries are looked for on PATH and
in the places vendors and hand builds use (``/usr/local``, ``/opt``); those the package manager owns (one
``dpkg-query -S`` / ``rpm -qf`` call for all of them) are not probed again. The rest are asked for their
version (``nginx -v``, ``redis-server --version`` ...), each with a timeout: they are ``source="binary"``,
the software nobody's package manager patches.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from agent.compat import Literal
from agent.process import CommandError, run

__all__ = [
    "Detected",
    "SoftwareSpec",
    "SPECS",
    "DEFAULT_SEARCH_GLOBS",
    "version_key",
    "upstream_version",
    "eol_cycle",
    "parse_dpkg_query",
    "parse_rpm_qa",
    "detect_from_packages",
    "probe_binary",
    "discover",
]

Source = Literal["package", "binary"]


@dataclass(frozen=True)
class Detected:
    software: str  # stable short name: nginx, httpd, mysql, mariadb, postgresql, redis, tomcat, java, ...
    version: str  # package version as the package manager prints it, or the binary's own version
    source: Source
    where: str  # package name, or the binary's path
    eol_product: Optional[str] = None  # endoflife.date product for binaries (java depends on the vendor)


@dataclass(frozen=True)
class SoftwareSpec:
    software: str
    kind: Literal["runtime", "server"]
    eol_product: Optional[str]  # endoflife.date name; None when no project lifecycle exists (openssh)
    dpkg: tuple[str, ...]  # package name regexes, tried in order
    rpm: tuple[str, ...]
    multi: bool  # several versions can be installed side by side (postgresql-15 and -16)
    binaries: tuple[str, ...]  # file name globs
    probe_args: tuple[str, ...]
    pattern: str  # regex with one group: the version in the probe's output


SPECS: tuple[SoftwareSpec, ...] = (
    SoftwareSpec("openssl", "runtime", "openssl", ("openssl", "libssl3t64", "libssl3", "libssl1.1"),
                 ("openssl", "openssl-libs"), False, ("openssl",), ("version",), r"OpenSSL (\d+\.\d+\.\d+[a-z]*)"),
    SoftwareSpec("openssh", "server", None, ("openssh-server", "openssh-client"), ("openssh-server", "openssh"),
                 False, ("sshd",), ("-V",), r"OpenSSH_(\d+\.\d+(?:p\d+)?)"),
    SoftwareSpec("nginx", "server", "nginx", ("nginx-core", "nginx", "nginx-light", "nginx-full", "nginx-extras"),
                 ("nginx",), False, ("nginx",), ("-v",), r"nginx/(\d+\.\d+\.\d+)"),
    SoftwareSpec("httpd", "server", "apache-http-server", ("apache2-bin", "apache2"), ("httpd",), False,
                 ("httpd", "apache2"), ("-v",), r"Apache/(\d+\.\d+\.\d+)"),
    SoftwareSpec("mysql", "server", "mysql", (r"mysql-server-core-\d.*", "mysql-community-server-core",
                 "mysql-server"), ("mysql-community-server", "mysql-server"), False,
                 ("mysqld",), ("--version",), r"Ver (\d+\.\d+\.\d+)(?![\d.]*-MariaDB)"),
    SoftwareSpec("mariadb", "server", "mariadb", ("mariadb-server-core", r"mariadb-server-core-\d.*",
                 "mariadb-server"), ("mariadb-server", "MariaDB-server"), False,
                 ("mariadbd", "mysqld"), ("--version",), r"Ver (\d+\.\d+\.\d+)-MariaDB"),
    SoftwareSpec("postgresql", "server", "postgresql", (r"postgresql-\d+",), (r"postgresql\d*-server",), True,
                 ("postgres",), ("--version",), r"\(PostgreSQL\) (\d+(?:\.\d+)+)"),
    SoftwareSpec("redis", "server", "redis", ("redis-server",), ("redis",), False, ("redis-server",),
                 ("--version",), r"v=(\d+\.\d+\.\d+)"),
    SoftwareSpec("tomcat", "server", "tomcat", (r"tomcat\d+",), ("tomcat",), False, (), (), ""),
    SoftwareSpec("java", "runtime", None, (r"openjdk-\d+-jre-headless",), (r"java-[\d.]+-openjdk-headless",), True,
                 ("java",), ("-version",), r'version "([^"]+)"'),
    SoftwareSpec("python", "runtime", "python", (r"python3\.\d+", r"python2\.7"),
                 ("python", "python3", r"python3\d+", r"python3\.\d+"), True,
                 ("python", "python2", "python3", "python3.[0-9]", "python3.[0-9][0-9]"), ("--version",),
                 r"Python (\d+\.\d+\.\d+)"),
    SoftwareSpec("php", "runtime", "php", (r"php\d+\.\d+-cli",), ("php-cli",), True, ("php",), ("-v",),
                 r"PHP (\d+\.\d+\.\d+)"),
)

# Where binaries outside the package manager live; globs so hand builds (/usr/local/nginx/sbin) are found.
# Runtime managers keep whole interpreters nobody's package manager patches: pyenv and asdf installs, conda
# bases and environments, for root, for every home directory and under /opt.
_RUNTIME_MANAGER_GLOBS: tuple[str, ...] = tuple(
    f"{home}/{tree}"
    for home in ("/root", "/home/*", "/opt", "/usr/local")
    for tree in (".pyenv/versions/*/bin", "pyenv/versions/*/bin", ".asdf/installs/*/*/bin",
                 "*conda*/bin", "*conda*/envs/*/bin", ".conda/envs/*/bin")
)
DEFAULT_SEARCH_GLOBS: tuple[str, ...] = (
    "/usr/local/bin", "/usr/local/sbin", "/usr/local/*/bin", "/usr/local/*/sbin",
    "/opt/*/bin", "/opt/*/sbin", "/opt/*/*/bin", "/opt/*/*/sbin",
    "/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/lib/jvm/*/bin", "/usr/lib/jvm/*/jre/bin",
    *_RUNTIME_MANAGER_GLOBS,
)
# Directories looked into at most (a host with thousands of home directories or conda environments).
MAX_SEARCH_DIRS = 2000
_SYSTEM_DIRS = ("/usr/bin", "/usr/sbin", "/bin", "/sbin")
TOMCAT_JAR_GLOBS: tuple[str, ...] = (
    "/opt/*/lib/catalina.jar", "/opt/*/*/lib/catalina.jar", "/usr/local/*/lib/catalina.jar",
    "/usr/share/tomcat*/lib/catalina.jar",
)


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key for dotted versions with letters (``1.1.1w``, ``9.8p1``): numbers compare as numbers."""
    parts: list[tuple[int, int | str]] = []
    for token in re.findall(r"\d+|[a-zA-Z]+", version):
        parts.append((1, int(token)) if token.isdigit() else (0, token.lower()))
    return tuple(parts)


def upstream_version(package_version: str) -> str:
    """``1:9.2p1-2+deb12u3`` -> ``9.2p1``; ``3.0.7-27.el9`` -> ``3.0.7``."""
    version = package_version.split(":", 1)[1] if re.match(r"^\d+:", package_version) else package_version
    return version.rsplit("-", 1)[0] if "-" in version else version


def eol_cycle(software: str, version: str) -> Optional[str]:
    """The endoflife.date release cycle a version belongs to (``3.0.11`` of openssl -> ``3.0``)."""
    nums = [int(n) for n in re.findall(r"\d+", version)[:3]]
    if not nums:
        return None
    major = nums[0]
    minor = nums[1] if len(nums) > 1 else 0
    if software == "openssl":
        return f"{major}.{minor}" if major >= 3 else f"{major}.{minor}.{nums[2] if len(nums) > 2 else 0}"
    if software == "postgresql":
        return str(major) if major >= 10 else f"{major}.{minor}"
    if software == "tomcat":
        return str(major) if major <= 7 else f"{major}.{minor}"
    if software == "java":
        return str(minor) if major == 1 else str(major)  # 1.8.0_392 (old form) -> 8
    return f"{major}.{minor}"


def java_eol_product(output: str) -> Optional[str]:
    """The vendor decides a JDK's lifecycle; unknown vendors (distro OpenJDK builds) get None."""
    if "Temurin" in output:
        return "eclipse-temurin"
    if "Red_Hat" in output or "Red Hat" in output:
        return "red-hat-build-of-openjdk"
    if "Java(TM)" in output:
        return "oracle-jdk"
    return None


def parse_dpkg_query(text: str) -> dict[str, str]:
    """``dpkg-query -W -f '${Package}\\t${Version}\\t${Status}\\n'`` -> installed package -> version."""
    packages: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[2].endswith(" installed") and fields[1]:
            packages[fields[0].split(":", 1)[0]] = fields[1]
    return packages


def parse_rpm_qa(text: str) -> dict[str, str]:
    """``rpm -qa --qf '%{NAME}\\t%{EPOCH}:%{VERSION}-%{RELEASE}\\n'`` -> name -> [epoch:]version-release."""
    packages: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) == 2 and fields[1]:
            version = fields[1]
            if version.startswith("(none):"):
                version = version[len("(none):"):]
            # several arches of one name (x86_64 + i686): the newest wins
            old = packages.get(fields[0])
            if old is None or version_key(version) > version_key(old):
                packages[fields[0]] = version
    return packages


def detect_from_packages(packages: dict[str, str], manager: Literal["dpkg", "rpm"]) -> list[Detected]:
    found: list[Detected] = []
    for spec in SPECS:
        patterns = spec.dpkg if manager == "dpkg" else spec.rpm
        for pattern in patterns:
            names = sorted(name for name in packages if re.fullmatch(pattern, name))
            for name in names:
                found.append(Detected(spec.software, packages[name], "package", name))
            if names and not spec.multi:
                break
        # a single-version product stops at its first matching pattern; keep only one entry
        if not spec.multi:
            own = [d for d in found if d.software == spec.software]
            if len(own) > 1:
                found = [d for d in found if d.software != spec.software] + own[:1]
    return found


def _candidates(
    search_globs: Sequence[str], path_dirs: Sequence[str], include_system_dirs: bool
) -> dict[str, tuple[SoftwareSpec, str]]:
    """Existing executables by real path -> (spec, the path as found)."""
    dirs: list[str] = []
    for entry in list(path_dirs) + (list(_SYSTEM_DIRS) if include_system_dirs else []):
        if entry and entry not in dirs:
            dirs.append(entry)
    seen = set(dirs)
    for pattern in search_globs:
        for match in sorted(glob.glob(pattern)):
            if match not in seen:
                seen.add(match)
                dirs.append(match)
    found: dict[str, tuple[SoftwareSpec, str]] = {}
    for directory in dirs[:MAX_SEARCH_DIRS]:
        for spec in SPECS:
            for name in spec.binaries:
                for path in sorted(glob.glob(os.path.join(glob.escape(directory), name))):
                    if not os.path.isfile(path) or not os.access(path, os.X_OK):
                        continue
                    real = os.path.realpath(path)
                    # mysqld may be MariaDB: both specs list it; the probe's output decides later.
                    found.setdefault(real, (spec, path))
    return found


def _path_aliases(path: str) -> list[str]:
    """A file's names as a package database may record them (merged /usr: /bin/x is /usr/bin/x)."""
    names = {path, os.path.realpath(path)}
    for name in list(names):
        for top in ("/bin/", "/sbin/", "/lib/"):
            if name.startswith("/usr" + top):
                names.add(name[len("/usr"):])
            elif name.startswith(top):
                names.add("/usr" + name)
    return sorted(names)


def owned_paths(paths: Iterable[str], manager: Optional[str], timeout: float) -> dict[str, str]:
    """Path -> owning package, for the paths the package manager knows (one command for all)."""
    queries: dict[str, str] = {}
    for path in paths:
        for alias in _path_aliases(path):
            queries[alias] = path
    if not queries or manager is None:
        return {}
    owners: dict[str, str] = {}
    if manager == "dpkg":
        result = run(["dpkg-query", "-S", *sorted(queries)], timeout)
        for line in result.stdout.splitlines():
            pkgs, sep, name = line.partition(": ")
            if sep and name.strip() in queries and not line.startswith("diversion"):
                owners[queries[name.strip()]] = pkgs.split(",")[0].strip().split(":")[0]
    else:
        ordered = sorted(queries)
        result = run(["rpm", "-qf", "--qf", "%{NAME}\n", *ordered], timeout)
        lines = result.stdout.splitlines()
        if len(lines) == len(ordered):
            for name, line in zip(ordered, lines):
                if line and " " not in line:
                    owners[queries[name]] = line.strip()
    return owners


def probe_binary(spec: SoftwareSpec, path: str, timeout: float) -> Optional[Detected]:
    """Ask one binary for its version; None when it does not answer in the expected form."""
    try:
        result = run([path, *spec.probe_args], timeout)
    except CommandError:
        return None
    output = result.stdout + "\n" + result.stderr
    software, pattern = spec.software, spec.pattern
    if spec.software in ("mysql", "mariadb"):
        # one binary name, two products: the banner says which
        software = "mariadb" if "MariaDB" in output else "mysql"
        pattern = next(s.pattern for s in SPECS if s.software == software)
    match = re.search(pattern, output)
    if not match:
        return None
    version = match.group(1)
    product = next(s.eol_product for s in SPECS if s.software == software)
    if software == "java":
        # 1.8.0_392 -> 8.0.392, so that 8u392 compares with the "8" branch of the baseline
        version = version.replace("_", ".")
        version = version[2:] if version.startswith("1.") else version
        version = re.split(r"[+-]", version)[0]
        product = java_eol_product(output)
    return Detected(software, version, "binary", path, product)


def tomcat_version(jar: str) -> Optional[str]:
    """``server.number`` from catalina.jar (no JVM needed): ``9.0.83.0`` -> ``9.0.83``."""
    import zipfile  # only where a Tomcat is installed

    try:
        with zipfile.ZipFile(jar) as archive:
            text = archive.read("org/apache/catalina/util/ServerInfo.properties").decode("utf-8", "replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return None
    match = re.search(r"^server\.number=(\d+\.\d+\.\d+)", text, re.MULTILINE)
    return match.group(1) if match else None


def discover(
    *,
    manager: Optional[Literal["dpkg", "rpm"]],
    packages: dict[str, str],
    search_globs: Sequence[str] = DEFAULT_SEARCH_GLOBS,
    path_dirs: Optional[Sequence[str]] = None,
    tomcat_globs: Sequence[str] = TOMCAT_JAR_GLOBS,
    timeout: float = 5.0,
    probe: Callable[[SoftwareSpec, str, float], Optional[Detected]] = probe_binary,
    include_system_dirs: bool = True,
) -> list[Detected]:
    """Everything found, packages first; a binary the package manager owns is not reported twice."""
    found = detect_from_packages(packages, manager) if manager else []
    dirs = path_dirs if path_dirs is not None else os.environ.get("PATH", "").split(os.pathsep)
    candidates = _candidates(search_globs, dirs, include_system_dirs)
    jars: dict[str, str] = {}
    for pattern in tomcat_globs:
        for jar in sorted(glob.glob(pattern)):
            jars.setdefault(os.path.realpath(jar), jar)
    owners = owned_paths([p for _, p in candidates.values()] + list(jars.values()), manager, timeout)
    packaged = {d.software for d in found}
    probed: set[tuple[str, str, str]] = set()
    for spec, path in candidates.values():
        owner = owners.get(path)
        if owner is not None:
            # Owned but missed by the name patterns: still package software, with the package's version.
            claimed = {d.where for d in found if d.source == "package"}
            if spec.software not in packaged and owner in packages and owner not in claimed:
                found.append(Detected(spec.software, packages[owner], "package", owner))
                packaged.add(spec.software)
            continue
        detected = probe(spec, path, timeout)
        # python, python3 and python3.7 copied into one venv or conda env are one install
        if detected is not None and (detected.software, detected.version, os.path.dirname(path)) not in probed:
            probed.add((detected.software, detected.version, os.path.dirname(path)))
            found.append(detected)
    for jar in jars.values():
        if jar in owners:
            continue
        version = tomcat_version(jar)
        if version is not None:
            found.append(Detected("tomcat", version, "binary", jar, "tomcat"))
    return found


def spec_for(software: str) -> SoftwareSpec:
    return next(s for s in SPECS if s.software == software)




def packages_from(manager: Literal["dpkg", "rpm"], timeout: float, root: Path = Path("/")) -> dict[str, str]:
    """The installed package list (one command)."""
    if manager == "dpkg":
        argv = ["dpkg-query", "-W", "-f", "${Package}\\t${Version}\\t${Status}\\n"]
        if root != Path("/"):
            argv.insert(1, f"--admindir={root / 'var/lib/dpkg'}")
        return parse_dpkg_query(run(argv, timeout).stdout)
    argv = ["rpm", "-qa", "--qf", "%{NAME}\\t%{EPOCH}:%{VERSION}-%{RELEASE}\\n"]
    if root != Path("/"):
        argv[1:1] = ["--root", str(root)]
    return parse_rpm_qa(run(argv, timeout).stdout)
