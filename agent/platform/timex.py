"""Kernel clock discipline state from adjtimex(2), read-only (``modes = 0`` needs no privilege).

node_exporter's timex collector semantics: the clock is synchronised unless adjtimex returns TIME_ERROR;
``offset`` is in nanoseconds when STA_NANO is set, else microseconds; ``maxerror`` is in microseconds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
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


PPM16FRAC = 1e6 * 65536.0  # freq, ppsfreq and stabil are ppm with a 16-bit fraction


@dataclass(frozen=True)
class TimexReading:
    offset_seconds: float
    sync_status: float  # 1 synchronised, 0 not (TIME_ERROR)
    maxerror_seconds: float
    # The rest of struct timex in node_exporter's names and units ({} when only the three above are known).
    more: Mapping[str, float] = field(default_factory=dict)


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
    more = {
        "frequency_adjustment_ratio": 1 + tx.freq / PPM16FRAC,
        "estimated_error_seconds": tx.esterror / 1e6,
        "status": float(tx.status),
        "loop_time_constant": float(tx.constant),
        "tick_seconds": tx.tick / 1e6,
        "pps_frequency_hertz": tx.ppsfreq / PPM16FRAC,
        "pps_jitter_seconds": tx.jitter / divisor,
        "pps_shift_seconds": float(tx.shift),
        "pps_stability_hertz": tx.stabil / PPM16FRAC,
        "pps_jitter_total": float(tx.jitcnt),
        "pps_calibration_total": float(tx.calcnt),
        "pps_error_total": float(tx.errcnt),
        "pps_stability_exceeded_total": float(tx.stbcnt),
        "tai_offset_seconds": float(tx.tai),
    }
    return TimexReading(
        offset_seconds=tx.offset / divisor,
        sync_status=0.0 if state == TIME_ERROR else 1.0,
        maxerror_seconds=tx.maxerror / 1e6,
        more=more,
    )
