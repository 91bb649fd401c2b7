"""The few names the agent needs that older Pythons on township hosts lack.

The agent runs on every Python a township host ships: 3.6 (CentOS 7), 3.7 (Kylin V10, openEuler 20.03, UOS 20,
Debian 10), 3.8 (Ubuntu 20.04) and up to 3.13. Its source is written for 3.7+ (``from __future__ import
annotations`` everywhere); the bundle builder turns a copy into 3.6 source (deploy/py36_source.py). What the
standard library only gained later comes from here, so every module imports it one way:

- ``Literal``, ``Protocol`` (3.8) from ``typing_extensions`` (a dependency only below 3.8);
- ``cached_property`` (3.8), ``get_origin``/``get_args`` (3.8; own version for 3.6, whose typing differs);
- ``type_hints(cls)``: ``typing.get_type_hints`` that also resolves ``list[str]``/``dict[str, X]`` written as
  strings (PEP 585 needs 3.9) — the config schema reads its dataclasses' hints at run time;
- ``thread_time()``, ``isascii()``, ``SimpleQueue`` (3.7), ``native_thread_id()`` (3.8) and
  ``shutdown_now(pool)`` (``cancel_futures=`` is 3.9), ``unlink_missing(path)`` (``missing_ok=`` is 3.8).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import threading
import time
import typing
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Generic, Optional, TypeVar

__all__ = [
    "Literal",
    "Protocol",
    "SimpleQueue",
    "cached_property",
    "get_args",
    "get_origin",
    "isascii",
    "native_thread_id",
    "shutdown_now",
    "unlink_missing",
    "thread_time",
    "type_hints",
]

T = TypeVar("T")

if sys.version_info >= (3, 8):
    from functools import cached_property
    from typing import Literal, Protocol, get_args, get_origin
else:  # pragma: no cover - exercised by the 3.6/3.7 tests in their own interpreters
    from typing_extensions import Literal, Protocol

    class cached_property(Generic[T]):  # noqa: N801 - the standard library's name
        """A non-data descriptor that computes once per instance (as functools.cached_property)."""

        def __init__(self, func: Callable[[Any], T]) -> None:
            self.func = func
            self.attrname = func.__name__
            self.__doc__ = func.__doc__

        def __get__(self, obj: Any, owner: Optional[type] = None) -> Any:
            if obj is None:
                return self
            value = obj.__dict__[self.attrname] = self.func(obj)
            return value

    if sys.version_info >= (3, 7):
        from typing_extensions import get_args, get_origin
    else:
        _LITERAL_TYPE = type(Literal["x"])

        def get_origin(tp: Any) -> Any:
            """3.6: typing.List[int].__origin__ is typing.List (its __extra__ is list); Literal has __values__."""
            if isinstance(tp, _LITERAL_TYPE):
                return Literal
            origin = getattr(tp, "__origin__", None)
            if origin is None:
                return None
            return getattr(origin, "__extra__", None) or origin

        def get_args(tp: Any) -> tuple[Any, ...]:
            if isinstance(tp, _LITERAL_TYPE):
                return tuple(tp.__values__)
            return tuple(getattr(tp, "__args__", None) or ())

# PEP 585 names as typing's generics, for annotations evaluated on Pythons before 3.9.
_PEP585 = {"list": typing.List, "dict": typing.Dict, "set": typing.Set, "tuple": typing.Tuple,
           "frozenset": typing.FrozenSet, "type": typing.Type}


def type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints(cls)``, also where ``list[str]`` cannot be evaluated (Python < 3.9)."""
    if sys.version_info >= (3, 9):
        return typing.get_type_hints(cls)
    return typing.get_type_hints(cls, localns=_PEP585)  # pragma: no cover - older interpreters


if sys.version_info >= (3, 7):
    thread_time = time.thread_time

    def isascii(text: str) -> bool:
        return text.isascii()
else:  # pragma: no cover
    def thread_time() -> float:
        return time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID)

    def isascii(text: str) -> bool:
        return all(ord(ch) < 128 for ch in text)


if sys.version_info >= (3, 7):
    from queue import SimpleQueue
else:  # pragma: no cover
    from queue import Queue as SimpleQueue

# gettid(2) by number where threading.get_native_id (3.8) is missing: glibc < 2.30 (CentOS 7) has no wrapper.
_GETTID = {"x86_64": 186, "aarch64": 178, "loongarch64": 178}


def native_thread_id() -> Optional[int]:
    """The kernel's id of the calling thread (for setpriority on this thread only), None if unknown."""
    if sys.version_info >= (3, 8):
        return threading.get_native_id()
    number = _GETTID.get(platform.machine())  # pragma: no cover
    if number is None:  # pragma: no cover
        return None
    try:  # pragma: no cover
        return int(ctypes.CDLL(None, use_errno=True).syscall(number))
    except (OSError, AttributeError):  # pragma: no cover
        return None


def shutdown_now(pool: ThreadPoolExecutor) -> None:
    """``pool.shutdown(wait=False, cancel_futures=True)``: queued work is cancelled, running work finishes."""
    if sys.version_info >= (3, 9):
        pool.shutdown(wait=False, cancel_futures=True)
        return
    pool.shutdown(wait=False)  # pragma: no cover - what 3.9 does, by hand (the pool's queue is internal)
    queue_ = getattr(pool, "_work_queue", None)  # pragma: no cover
    while queue_ is not None:  # pragma: no cover
        try:
            item = queue_.get_nowait()
        except Exception:  # queue.Empty
            break
        if item is not None:
            item.future.cancel()
    if queue_ is not None:  # pragma: no cover - wake the idle workers again, as 3.9 does after draining
        queue_.put(None)


def unlink_missing(path: os.PathLike[str] | str) -> None:
    """``Path(path).unlink(missing_ok=True)``."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
