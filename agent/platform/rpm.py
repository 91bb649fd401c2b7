"""Pending dnf/yum updates from the cached repository metadata (``-C``: never refresh it here).

``dnf -C check-update`` exits 100 with one ``name.arch  version  repo`` line per update (long names wrap
onto a second line), 0 when there is nothing, 1 on error. ``updateinfo list --security`` lists one
``ADVISORY  Severity/Sec.  name-[epoch:]version-release.arch`` line per (advisory, package). Security data
exists only where the repositories publish updateinfo: RHEL, Rocky, Alma, openEuler do; CentOS Linux 7/8 and
CentOS Stream do not, and there the security count is unknown, never 0.
"""

from __future__ import annotations

import glob
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from agent.compat import Literal
from agent.process import run

__all__ = ["RpmUpdate", "parse_check_update", "parse_updateinfo_security", "check_update", "security_updates",
           "repomd_files", "has_updateinfo", "NO_ADVISORY_PRODUCTS"]

Tool = Literal["dnf", "yum"]

# Distributions whose own repositories carry no updateinfo (advisory) metadata; an EPEL updateinfo on such a
# host covers EPEL only, so it must not make the host look "supported".
NO_ADVISORY_PRODUCTS = frozenset({"centos", "centos-stream"})

_ARCHES = r"(?:x86_64|aarch64|noarch|i686|i386|ppc64le|ppc64|s390x|armv7hl|loongarch64|mips64el|riscv64|src)"
_NAME_ARCH = re.compile(rf"^\S+\.{_ARCHES}$")


@dataclass(frozen=True)
class RpmUpdate:
    package: str  # name.arch
    version: str
    repo: str


def parse_check_update(text: str) -> list[RpmUpdate]:
    """The update table of ``check-update``; stops at "Obsoleting Packages" (those are listed twice)."""
    found: list[RpmUpdate] = []
    tokens: list[str] = []
    for line in text.splitlines():
        if line.strip().startswith("Obsoleting Packages"):
            break
        fields = line.split()
        if not fields:
            tokens.clear()  # a blank line ends any half-read wrapped entry
            continue
        if not tokens and not _NAME_ARCH.match(fields[0]):
            continue  # "Last metadata expiration check: ...", "Loaded plugins: ...", security banners
        tokens += fields  # a long name wraps: "name.arch" alone, then "version repo" on the next line
        if len(tokens) >= 3:
            found.append(RpmUpdate(tokens[0], tokens[1], tokens[2]))
            tokens = []
    return found


_ADVISORY_LINE = re.compile(r"^(?P<advisory>\S+)\s+(?P<severity>\S*/Sec\.|security)\s+(?P<nevra>\S+)\s*$")


def _name_of(nevra: str) -> str:
    """``openssl-libs-1:3.0.7-27.el9.x86_64`` -> ``openssl-libs``."""
    without_arch = re.sub(rf"\.{_ARCHES}$", "", nevra)
    parts = without_arch.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else without_arch


def parse_updateinfo_security(text: str) -> set[str]:
    """Package names with at least one pending security advisory (one package, several advisories: once)."""
    names: set[str] = set()
    for line in text.splitlines():
        match = _ADVISORY_LINE.match(line.strip())
        if match:
            names.add(_name_of(match.group("nevra")))
    return names


_NO_CACHE = re.compile(r"Cache-only enabled but no cache for '([^']+)'")
_REFRESH_HINT = "it is refreshed by the system's own timer or the metadata_refresh collector, never here"


def _uncached(stderr: str) -> list[str]:
    """Repositories dnf skipped for want of cached metadata. Under ``-C`` dnf still exits 0 or 100 then, and
    with ``-q`` it does not even say so: a missing cache would read as "no updates". So no ``-q`` here."""
    return _NO_CACHE.findall(stderr)


def check_update(tool: str, timeout: float, extra_args: Sequence[str] = ()) -> list[RpmUpdate]:
    result = run([tool, "-C", *extra_args, "check-update"], timeout)
    if result.returncode not in (0, 100):
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(
            f"{tool} -C check-update exited {result.returncode}: {last} (no cached metadata? {_REFRESH_HINT})"
        )
    missing = _uncached(result.stderr)
    if missing:
        raise RuntimeError(f"{tool} has no cached metadata for {', '.join(missing[:10])}: the pending updates are "
                           f"unknown ({_REFRESH_HINT})")
    return parse_check_update(result.stdout)


def security_updates(tool: str, kind: Tool, timeout: float, extra_args: Sequence[str] = ()) -> set[str]:
    # yum 3 (EL7) spells the filter as a word; dnf as an option
    filter_args = ["security"] if kind == "yum" else ["--security"]
    result = run([tool, "-C", *extra_args, "updateinfo", "list", *filter_args], timeout)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{tool} -C updateinfo list exited {result.returncode}: {last}")
    missing = _uncached(result.stderr)
    if missing:
        raise RuntimeError(f"{tool} has no cached metadata for {', '.join(missing[:10])}: the security updates are "
                           f"unknown ({_REFRESH_HINT})")
    return parse_updateinfo_security(result.stdout)


def count_by_repo(updates: Sequence[RpmUpdate]) -> Counter[str]:
    return Counter(u.repo for u in updates)


def repomd_files(cache_globs: Sequence[str]) -> list[str]:
    found: list[str] = []
    for pattern in cache_globs:
        found += glob.glob(pattern)
    return sorted(set(found))


def has_updateinfo(repomd_paths: Sequence[str]) -> bool:
    """True when some cached repository advertises updateinfo (advisory) data in its repomd.xml."""
    for path in repomd_paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                if 'type="updateinfo"' in handle.read(200_000):
                    return True
        except OSError:
            continue
    return False


def newest_mtime(paths: Sequence[str]) -> Optional[float]:
    times = []
    for path in paths:
        try:
            times.append(os.stat(path).st_mtime)
        except OSError:
            continue
    return max(times) if times else None
