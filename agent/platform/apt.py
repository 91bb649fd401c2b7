"""Pending apt upgrades from the metadata already on disk: never ``apt-get update`` here.

``apt-get -s dist-upgrade`` (a simulation; ``Debug::NoLocking`` so it neither takes nor waits for the dpkg
lock) prints one ``Inst`` line per package it would change, with the origins of the candidate version:

    Inst libssl3 [3.0.11-1~deb12u1] (3.0.11-1~deb12u2 Debian:12.4/stable, Debian-Security:12/stable-security [amd64])

``apt_upgrades_pending{origin,arch}`` counts them the way node-exporter-textfile-collector-scripts' apt.sh
does (origins joined without spaces). An upgrade is a security upgrade when one of its origins is a security
archive (``Debian-Security:…``, ``Ubuntu:22.04/jammy-security``).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from agent.process import run

__all__ = ["AptUpgrade", "parse_simulation", "simulate_upgrades", "AptPaths", "apt_paths", "security_sources",
           "newest_mtime"]

_INST = re.compile(r"^Inst (?P<pkg>\S+)(?: \[(?P<old>[^\]]*)\])? \((?P<body>.*)\)")


@dataclass(frozen=True)
class AptUpgrade:
    package: str
    version: str
    origin: str  # "Debian:12.4/stable,Debian-Security:12/stable-security", as apt.sh labels it
    arch: str
    security: bool


def parse_simulation(text: str) -> list[AptUpgrade]:
    upgrades: list[AptUpgrade] = []
    for line in text.splitlines():
        match = _INST.match(line)
        if not match:
            continue
        body = match.group("body")
        arch_match = re.search(r"\s*\[([^\]]*)\]\s*$", body)
        arch = arch_match.group(1) if arch_match else ""
        if arch_match:
            body = body[: arch_match.start()]
        version, _, origins = body.strip().partition(" ")
        origin = re.sub(r"\s+", "", origins)
        upgrades.append(AptUpgrade(match.group("pkg"), version, origin, arch, "security" in origin.lower()))
    return upgrades


def _options(apt_options: Sequence[str]) -> list[str]:
    argv: list[str] = []
    for option in apt_options:
        argv += ["-o", option]
    return argv


def simulate_upgrades(apt_options: Sequence[str], timeout: float, apt_get: str = "apt-get") -> list[AptUpgrade]:
    """Raises CommandError when apt-get hangs past ``timeout`` or cannot start; RuntimeError when it fails."""
    argv = [apt_get, "-s", "-q", "-o", "Debug::NoLocking=1", *_options(apt_options), "dist-upgrade"]
    result = run(argv, timeout, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"})
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{apt_get} -s dist-upgrade exited {result.returncode}: {last}")
    return parse_simulation(result.stdout)


def count_by_origin(upgrades: Sequence[AptUpgrade]) -> Counter[tuple[str, str]]:
    return Counter((u.origin, u.arch) for u in upgrades)


@dataclass(frozen=True)
class AptPaths:
    lists: Path
    pkgcache: Optional[Path]  # None when the binary cache is switched off (Dir::Cache::pkgcache "")


def _join(base: str, value: str) -> str:
    return value if value.startswith("/") else os.path.join(base, value)


def apt_paths(apt_options: Sequence[str], timeout: float, apt_config: str = "apt-config") -> AptPaths:
    """Where this apt configuration keeps its lists and cache (``apt-config dump`` honours ``-o``)."""
    result = run([apt_config, *_options(apt_options), "dump"], timeout)
    values: dict[str, str] = {}
    for line in result.stdout.splitlines():
        match = re.match(r'^(\S+) "(.*)";$', line.strip())
        if match:
            values[match.group(1)] = match.group(2)
    root = values.get("Dir", "/")
    state = _join(root, values.get("Dir::State", "var/lib/apt/"))
    lists = _join(state, values.get("Dir::State::lists", values.get("Dir::State::Lists", "lists/")))
    cache = _join(root, values.get("Dir::Cache", "var/cache/apt/"))
    pkgcache_name = values.get("Dir::Cache::pkgcache", "pkgcache.bin")
    pkgcache = Path(_join(cache, pkgcache_name)) if pkgcache_name else None
    return AptPaths(Path(lists), pkgcache)


def _release_files(lists: Path) -> list[Path]:
    try:
        return sorted(p for p in lists.iterdir() if p.name.endswith(("_Release", "_InRelease")))
    except OSError:
        return []


def newest_mtime(lists: Path) -> Optional[float]:
    """When ``apt-get update`` last brought in metadata: the newest Release file in the lists directory."""
    times = []
    for path in _release_files(lists):
        try:
            times.append(path.stat().st_mtime)
        except OSError:
            continue
    return max(times) if times else None


def security_sources(lists: Path) -> list[str]:
    """Configured archives whose Release says security (Origin/Label/Suite): without one, apt has no
    security data and a count of 0 would mean nothing."""
    found: list[str] = []
    for path in _release_files(lists):
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                head = [handle.readline() for _ in range(40)]
        except OSError:
            continue
        for line in head:
            key, _, value = line.partition(":")
            if key.strip() in ("Origin", "Label", "Suite", "Codename") and "security" in value.lower():
                found.append(path.name)
                break
    return found
