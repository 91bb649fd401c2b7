"""Compiled dependencies that a host may lack, and what stands in for them.

The bundle has wheels of psutil and bcrypt for x86_64 and aarch64 only. On another CPU (loongarch64: Loongson
servers with Kylin or UOS) install.sh installs the pure-Python parts, with the distribution's own packages
(python3-psutil, python3-bcrypt) used where they are installed. A missing module is replaced by a stand-in: the
first use raises ``MissingDependency``, a ``NotApplicable`` whose message names the module and the package to
install, so the collector that needs it is reported as not applicable with that reason (scan report,
``shaobing_collector_applicable 0``) and the rest of the agent runs. Import the modules from here::

    from agent.optional import psutil
"""

from __future__ import annotations

import importlib
import platform
from typing import TYPE_CHECKING, Any, NoReturn

from agent.collector import MissingDependency

__all__ = ["MissingDependency", "available", "psutil", "bcrypt"]

# Module -> the distribution package that provides it (Debian, Kylin, UOS, openEuler all use these names).
_PACKAGES = {"psutil": "python3-psutil", "bcrypt": "python3-bcrypt"}


class _Missing:
    """Stands in for a module that could not be imported; any use says which and why."""

    def __init__(self, name: str, error: str) -> None:
        self._name = name
        self._error = error

    def __getattr__(self, attr: str) -> NoReturn:
        if attr.startswith("__"):
            raise AttributeError(attr)  # copy, pickle, inspect probing for protocols: not a use of the module
        raise MissingDependency(
            f"needs the Python module {self._name}, which is not installed for this CPU ({platform.machine()}): "
            f"the bundle has no wheel for it here; install the distribution's {_PACKAGES.get(self._name, self._name)}"
            f" and restart the agent ({self._error})"
        )


def _load(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        return _Missing(name, f"{type(exc).__name__}: {exc}"[:160])


def available(module: object) -> bool:
    """Whether ``module`` (from this file) is the real module."""
    return not isinstance(module, _Missing)


if TYPE_CHECKING:
    import bcrypt
    import psutil
else:
    psutil = _load("psutil")
    bcrypt = _load("bcrypt")
