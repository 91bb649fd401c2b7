"""Keep the agent's resident memory where a township host expects it (issue target: <= 40 MB).

A new thread per collector run allocates from its own glibc malloc arena, and memory freed in an arena is
rarely given back, so a long-running multi-threaded Python grows well past what it uses. Two glibc calls fix
that, both through ctypes and both harmless no-ops elsewhere (musl, Windows, macOS):

- ``limit_arenas()``: ``mallopt(M_ARENA_MAX, 2)`` before any thread starts (the same as MALLOC_ARENA_MAX=2);
- ``release_memory()``: a garbage collection and ``malloc_trim(0)`` after a rare, heavy run (package lists,
  the password audit's candidate lists, the permission walk) hand its freed pages back to the kernel, so the
  resident size stays at the steady state instead of the peak.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from typing import Any, Optional

__all__ = ["limit_arenas", "release_memory"]

_M_ARENA_MAX = -8
_libc: Optional[Any] = None
_loaded = False


def _glibc() -> Optional[Any]:
    global _libc, _loaded
    if not _loaded:
        _loaded = True
        if sys.platform.startswith("linux"):
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or None)
                if hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim"):
                    _libc = lib
            except OSError:
                _libc = None
    return _libc


def limit_arenas(arenas: int = 2) -> bool:
    lib = _glibc()
    return bool(lib is not None and lib.mallopt(_M_ARENA_MAX, arenas) == 1)


def release_memory() -> None:
    gc.collect()
    lib = _glibc()
    if lib is not None:
        lib.malloc_trim(0)
