"""Which operating system and release this is, as an endoflife.date-style (product, cycle) pair.

Sources, in order: ``/etc/os-release`` (``/usr/lib/os-release``), then the older release files some hosts
still rely on (``/etc/redhat-release``, ``/etc/kylin-release``). Windows comes from ``agent.platform.windows``.
The product names follow endoflife.date (``rocky-linux``, ``centos-stream``) so that a lookup in the vendored
EOL data is a plain key match; products it does not list (Kylin, openEuler) keep a stable name of their own
and read as "EOL unknown".
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

__all__ = ["OsIdentity", "parse_os_release", "identify_os", "identity_from_os_release", "identity_from_release_line"]


@dataclass(frozen=True)
class OsIdentity:
    product: str  # endoflife.date product name where one exists, e.g. "centos", "rocky-linux", "kylin"
    cycle: str  # release cycle as endoflife.date names it, e.g. "7", "9", "22.04", "V10"
    pretty: str  # for people: "CentOS Linux 7 (Core)"
    source: str  # the file (or API) it was read from


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` lines with shell quoting, as os-release(5) defines them; bad lines are skipped."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            continue
        try:
            parts = shlex.split(value, comments=False, posix=True)
        except ValueError:
            parts = [value.strip().strip("\"'")]
        values[key] = " ".join(parts)
    return values


def _major(version: str) -> str:
    return version.split(".", 1)[0]


def identity_from_os_release(values: dict[str, str], source: str) -> Optional[OsIdentity]:
    """Map os-release fields to (product, cycle); None when there is not even an ID."""
    os_id = values.get("ID", "").strip().lower()
    if not os_id:
        return None
    version_id = values.get("VERSION_ID", "").strip()
    name = values.get("NAME", "")
    pretty = values.get("PRETTY_NAME") or f"{name} {version_id}".strip()
    product, cycle = os_id, version_id
    if os_id == "centos":
        # CentOS Stream keeps ID=centos; only NAME tells it apart from CentOS Linux.
        product = "centos-stream" if "stream" in name.lower() else "centos"
        cycle = _major(version_id)
    elif os_id in ("rhel", "rocky", "almalinux", "ol"):
        product = {"rhel": "rhel", "rocky": "rocky-linux", "almalinux": "almalinux", "ol": "oracle-linux"}[os_id]
        cycle = _major(version_id)
    elif os_id == "debian":
        # testing/sid have no VERSION_ID and no end of life: keep the codename so they read as unknown.
        cycle = version_id or values.get("VERSION_CODENAME", "unknown")
    elif os_id == "ubuntu":
        cycle = version_id
    elif os_id == "uos":
        # UnionTech OS: ID=uos for server and desktop alike; endoflife-style names carry the "V20" form.
        product = "uos-desktop" if "desktop" in name.lower() else "uos-server"
        cycle = f"V{_major(version_id)}" if version_id and not version_id.upper().startswith("V") else version_id
    elif os_id == "kylin":
        product = "kylin"
        cycle = version_id.upper() if version_id else "unknown"
    elif os_id == "openeuler":
        product = "openeuler"
        # VERSION="22.03 (LTS-SP1)": the service pack is part of the cycle (each has its own support window).
        match = re.search(r"\(([^)]*)\)", values.get("VERSION", ""))
        cycle = f"{version_id}-{match.group(1)}" if match else version_id
    return OsIdentity(product, cycle or "unknown", pretty, source)


_RELEASE_LINE = re.compile(r"^(?P<name>.+?)\s+release\s+(?P<version>\S+)", re.IGNORECASE)


def identity_from_release_line(line: str, source: str) -> Optional[OsIdentity]:
    """``CentOS Linux release 7.9.2009 (Core)``, ``Kylin Linux Advanced Server release V10 (Sword)``."""
    match = _RELEASE_LINE.match(line.strip())
    if not match:
        return None
    name, version = match.group("name"), match.group("version")
    lowered = name.lower()
    if "kylin" in lowered:
        return OsIdentity("kylin", version.upper(), line.strip(), source)
    if "centos stream" in lowered:
        return OsIdentity("centos-stream", _major(version), line.strip(), source)
    if "centos" in lowered:
        return OsIdentity("centos", _major(version), line.strip(), source)
    if "red hat enterprise linux" in lowered:
        return OsIdentity("rhel", _major(version), line.strip(), source)
    if "rocky" in lowered:
        return OsIdentity("rocky-linux", _major(version), line.strip(), source)
    if "almalinux" in lowered:
        return OsIdentity("almalinux", _major(version), line.strip(), source)
    if "openeuler" in lowered:
        return OsIdentity("openeuler", version, line.strip(), source)
    return OsIdentity(re.sub(r"[^a-z0-9]+", "-", lowered).strip("-"), version, line.strip(), source)


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def identify_os(root: Path = Path("/")) -> Optional[OsIdentity]:
    """The identity of the Linux system under ``root`` (a chroot or fixture directory in tests)."""
    for rel in ("etc/os-release", "usr/lib/os-release"):
        text = _read(root / rel)
        if text is None:
            continue
        identity = identity_from_os_release(parse_os_release(text), "/" + rel)
        if identity is not None:
            return identity
    for rel in ("etc/kylin-release", "etc/redhat-release", "etc/system-release"):
        text = _read(root / rel)
        if text and text.strip():
            identity = identity_from_release_line(text.strip().splitlines()[0], "/" + rel)
            if identity is not None:
                return identity
    return None
