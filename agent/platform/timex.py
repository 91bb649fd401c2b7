"""Kernel clock discipline state from adjtimex(2), read-only (``modes = 0`` needs no privilege).

node_exporter's timex collector semantics: the clock is synchronised unless adjtimex returns TIME_ERROR;
``offset`` is in nanoseconds when STA_NANO is set, else microseconds; ``maxerror`` is in microseconds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["TimexReading", "read_timex"]

TIME_ERROR = 5
STA_NANO = 0x2000


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h> (glibc and musl agree); ctypes applies the C alignment rules.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


@dataclass(frozen=True)
class TimexReading:
    offset_seconds: float
    sync_status: float  # 1 synchronised, 0 not (TIME_ERROR)
    maxerror_seconds: float


_adjtimex: Callable[[Any], int] | None = None
_loaded = False


def _function() -> Callable[[Any], int] | None:
    global _adjtimex, _loaded
    if not _loaded:
        _loaded = True
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
                fn = libc.adjtimex
                fn.argtypes = [ctypes.POINTER(_Timex)]
                fn.restype = ctypes.c_int
                _adjtimex = fn
            except (OSError, AttributeError):
                _adjtimex = None
    return _adjtimex


def read_timex() -> TimexReading | None:
    """The current reading, or None where adjtimex is missing or refused (non-Linux, seccomp)."""
    fn = _function()
    if fn is None:
        return None
    tx = _Timex()
    state = int(fn(ctypes.byref(tx)))
    if state < 0:
        return None
    divisor = 1e9 if tx.status & STA_NANO else 1e6
    return TimexReading(
        offset_seconds=tx.offset / divisor,
        sync_status=0.0 if state == TIME_ERROR else 1.0,
        maxerror_seconds=tx.maxerror / 1e6,
    )
