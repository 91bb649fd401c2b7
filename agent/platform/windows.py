"""Windows and Windows Server identity from the platform API, as endoflife.date (product, cycle).

On Windows the values come from ``HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion`` (ProductName,
CurrentBuildNumber, DisplayVersion, InstallationType, EditionID); elsewhere tests pass them in. Server
releases are told apart by build number, because ProductName on Server 2022 and 2025 is not reliable.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Optional

from agent.platform.os_release import OsIdentity

__all__ = ["identity_from_windows", "read_windows_version"]

_SERVER_BY_BUILD = {7601: "2008-r2-sp1", 9600: "2012-r2", 14393: "2016", 17763: "2019", 20348: "2022", 26100: "2025"}
# LTSC client editions have their own, longer lifecycle (endoflife.date "-e-lts" cycles).
_LTSC_BY_BUILD = {17763: "10-1809-e-lts", 19044: "10-21h2-e-lts"}


def identity_from_windows(values: Mapping[str, str]) -> Optional[OsIdentity]:
    product_name = values.get("ProductName", "")
    try:
        build = int(values.get("CurrentBuildNumber", "0"))
    except ValueError:
        build = 0
    if not product_name or not build:
        return None
    display = values.get("DisplayVersion") or values.get("ReleaseId", "")
    is_server = values.get("InstallationType", "").lower().startswith("server") or "server" in product_name.lower()
    pretty = f"{product_name} (build {build})"
    if is_server:
        return OsIdentity("windows-server", _SERVER_BY_BUILD.get(build, f"build-{build}"), pretty, "registry")
    if build == 7601:
        return OsIdentity("windows", "7-sp1", pretty, "registry")
    if "ltsc" in values.get("EditionID", "").lower() or "ltsc" in product_name.lower():
        return OsIdentity("windows", _LTSC_BY_BUILD.get(build, f"build-{build}"), pretty, "registry")
    # Windows 11 reports ProductName "Windows 10" on many builds; build >= 22000 is 11.
    major = "11" if build >= 22000 else "10"
    cycle = f"{major}-{display.lower()}" if display else f"{major}-build-{build}"
    return OsIdentity("windows", cycle, pretty, "registry")


def read_windows_version() -> Optional[dict[str, str]]:  # pragma: no cover - runs on Windows only
    if sys.platform != "win32":
        return None
    import winreg

    values: dict[str, str] = {}
    key_path = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion"
    with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key_path) as key:
        for name in ("ProductName", "CurrentBuildNumber", "DisplayVersion", "ReleaseId", "InstallationType",
                     "EditionID"):
            try:
                values[name] = str(winreg.QueryValueEx(key, name)[0])
            except OSError:
                continue
    return values
