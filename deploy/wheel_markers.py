"""Requirements that the wheels in a directory need on a *target* Python but that are not there yet.

    python wheel_markers.py WHEEL_DIR 3.9 x86_64   -> prints missing requirements, space separated
    python wheel_markers.py --for 3.6 x86_64 REQ... -> the requirements that apply there, markers dropped, one a line

``pip download --python-version`` resolves dependency markers against the Python running pip, so a
``exceptiongroup; python_version < "3.11"`` dependency is missed when the bundle is built on 3.11. This reads
each wheel's METADATA and evaluates the markers for the target instead. Used by build-bundle.sh.
"""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path

try:
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name
except ImportError:  # pip always carries a copy
    from pip._vendor.packaging.markers import default_environment  # type: ignore[no-redef]
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.specifiers import SpecifierSet  # type: ignore[no-redef]
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]


def target_env(pyver: str, arch: str) -> dict[str, str]:
    env = dict(default_environment())
    env.update(python_version=pyver, python_full_version=f"{pyver}.0", platform_machine=arch,
               sys_platform="linux", platform_system="Linux", os_name="posix",
               implementation_name="cpython", platform_python_implementation="CPython", extra="")
    return env


def applicable(pyver: str, arch: str, requirements: list[str]) -> list[str]:
    """The project's own dependencies for the target (pip would judge their markers by the builder's Python)."""
    env = target_env(pyver, arch)
    out = []
    for text in requirements:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate(env):
            out.append(f"{req.name}{req.specifier}")
    return out


def main(directory: str, pyver: str, arch: str) -> int:
    env = target_env(pyver, arch)
    have: dict[str, str] = {}
    requires: list[Requirement] = []
    for whl in sorted(Path(directory).glob("*.whl")):
        dist, version = whl.name.split("-")[:2]
        have[canonicalize_name(dist)] = version
        with zipfile.ZipFile(whl) as zf:
            meta = next(n for n in zf.namelist() if re.match(r"^[^/]+\.dist-info/METADATA$", n))
            for line in zf.read(meta).decode("utf-8").splitlines():
                if line.startswith("Requires-Dist:"):
                    requires.append(Requirement(line.split(":", 1)[1].strip()))
    # One requirement per missing project, its specifiers combined (two wheels may ask for it differently).
    missing: dict[str, SpecifierSet] = {}
    for req in requires:
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        if name not in have:
            missing[name] = missing.get(name, SpecifierSet()) & req.specifier
    print(" ".join(f"{name}{spec}" for name, spec in sorted(missing.items())))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--for"]:
        print("\n".join(applicable(sys.argv[2], sys.argv[3], sys.argv[4:])))
        sys.exit(0)
    sys.exit(main(*sys.argv[1:4]))
