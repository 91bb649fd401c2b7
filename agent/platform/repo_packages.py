"""Whether the host's configured repositories offer a package for a piece of software, from the metadata already
on disk (never a refresh): the fix text for a hand-installed Tomcat says ``apt-get install tomcat10`` only where
the distro has one (Debian 12 does, RHEL 9 and its rebuilds do not).

``apt-cache pkgnames <prefix>`` reads apt's lists; ``dnf -C repoquery`` and EL7's ``yum -C list available`` read
the yum/dnf cache. None means "could not tell" (no metadata on the host, a command missing, failing or timing
out): the fix text then makes no package claim at all.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from agent.compat import Literal
from agent.platform import apt
from agent.process import CommandError, run

__all__ = ["literal_prefix", "available_packages", "install_command"]

_META = set("\\.[](){}*+?|^$")
_MAX_LINES = 10_000


def literal_prefix(pattern: str) -> str:
    """The literal start of a package-name regex: ``tomcat\\d+`` -> ``tomcat``."""
    out = []
    for ch in pattern:
        if ch in _META:
            break
        out.append(ch)
    return "".join(out)


def _matching(names: Sequence[str], patterns: Sequence[str]) -> list[str]:
    found = {n for n in names[:_MAX_LINES] if any(re.fullmatch(p, n) for p in patterns)}
    return sorted(found, key=lambda n: [int(t) if t.isdigit() else t for t in re.findall(r"\d+|\D+", n)])


def _apt(patterns: Sequence[str], timeout: float, apt_options: Sequence[str]) -> Optional[list[str]]:
    try:
        lists = apt.apt_paths(apt_options, timeout).lists
        if not any("_Packages" in p.name for p in lists.iterdir()):  # _Packages, _Packages.lz4
            return None  # apt-get update never ran here: the repositories' contents are unknown
    except (CommandError, OSError):
        return None
    options = [x for o in apt_options for x in ("-o", o)]
    names: list[str] = []
    for prefix in sorted({literal_prefix(p) for p in patterns}):
        if not prefix:
            return None
        try:
            result = run(["apt-cache", *options, "pkgnames", prefix], timeout)
        except CommandError:
            return None
        if result.returncode != 0:
            return None
        names += result.stdout.split()
    return _matching(names, patterns)


def _rpm(patterns: Sequence[str], timeout: float) -> Optional[list[str]]:
    names: list[str] = []
    for prefix in sorted({literal_prefix(p) for p in patterns}):
        if not prefix:
            return None
        if shutil.which("dnf"):
            argv = ["dnf", "-C", "-q", "repoquery", "--qf", "%{name}\\n", f"{prefix}*"]
        elif shutil.which("yum"):
            argv = ["yum", "-C", "-q", "list", "available", f"{prefix}*"]
        else:
            return None
        try:
            result = run(argv, timeout)
        except CommandError:
            return None
        if result.returncode != 0:
            return None
        for line in result.stdout.splitlines():
            first = line.split()[0] if line.split() else ""
            if argv[0] == "yum":
                # "tomcat.noarch   7.0.76-16.el7_9   updates"; the header "Available Packages" is skipped
                first = first.rsplit(".", 1)[0] if "." in first else ""
            if first:
                names.append(first)
    return _matching(names, patterns)


def available_packages(
    manager: Literal["dpkg", "rpm"],
    patterns: Sequence[str],
    timeout: float,
    apt_options: Sequence[str] = (),
    root: Path = Path("/"),
) -> Optional[list[str]]:
    """Package names the repositories offer that match ``patterns`` (newest-looking last); [] when none does;
    None when that cannot be told. A foreign root is never asked (its metadata is not this host's)."""
    if not patterns or root != Path("/"):
        return None
    if manager == "dpkg":
        return _apt(patterns, timeout, apt_options)
    return _rpm(patterns, timeout)


def install_command(manager: Literal["dpkg", "rpm"], package: str) -> str:
    if manager == "dpkg":
        return f"apt-get install {package}"
    return f"{'dnf' if shutil.which('dnf') else 'yum'} install {package}"
