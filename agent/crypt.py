"""The host's own libcrypt (libxcrypt) through ctypes: hashing, salt checks, the preferred method.

Python's ``crypt`` module is deprecated and gone in 3.13, and passlib cannot read yescrypt, which is the
default on current Debian, Ubuntu and Fedora. The host's libcrypt is by definition able to verify every
hash the host accepts at login, so the audit uses exactly that library.

Thread safety: ``crypt_rn`` works on a caller-supplied ``struct crypt_data``; each thread gets its own
(32 KiB, zero-filled on creation as the API requires). A method the library lacks is reported as
unsupported (``None`` from :meth:`Libcrypt.crypt`), never a crash.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from typing import Optional

from agent.compat import Literal
from agent.digest import compare_digest

__all__ = ["Libcrypt", "LibcryptUnavailable", "SaltStatus", "method_of", "LEGACY_METHODS", "load"]

SaltStatus = Literal["ok", "invalid", "disabled", "legacy", "too_cheap", "unknown"]

# sizeof(struct crypt_data) in libxcrypt (crypt.h: "chosen to make sizeof (struct crypt_data) add up to
# exactly 32768 bytes"); glibc's older libcrypt used a smaller struct, so this size fits both.
_CRYPT_DATA_SIZE = 32768
_CRYPT_OUTPUT_SIZE = 384
_CRYPT_GENSALT_OUTPUT_SIZE = 192
_CHECKSALT: dict[int, SaltStatus] = {0: "ok", 1: "invalid", 2: "disabled", 3: "legacy", 4: "too_cheap"}

# Used only when the library has no crypt_checksalt (glibc's libcrypt before libxcrypt): the methods
# libxcrypt itself classes as legacy.
LEGACY_METHODS = frozenset({"descrypt", "bigcrypt", "bsdicrypt", "md5crypt", "sunmd5", "nthash", "sha1crypt"})

# Prefix -> method name, longest prefixes first (``$gy$`` before ``$y$`` does not matter, but ``$2b$``
# style prefixes are checked by their full text).
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("$gy$", "gost-yescrypt"),
    ("$y$", "yescrypt"),
    ("$7$", "scrypt"),
    ("$6$", "sha512crypt"),
    ("$5$", "sha256crypt"),
    ("$2b$", "bcrypt"),
    ("$2y$", "bcrypt"),
    ("$2a$", "bcrypt"),
    ("$2x$", "bcrypt"),
    ("$1$", "md5crypt"),
    ("$md5", "sunmd5"),
    ("$sha1$", "sha1crypt"),
    ("$3$", "nthash"),
    ("_", "bsdicrypt"),
)


def method_of(setting: str) -> str:
    """The hashing method a stored hash uses, by its prefix ("unknown" when none matches)."""
    for prefix, name in _PREFIXES:
        if setting.startswith(prefix):
            return name
    if len(setting) == 13 and not setting.startswith("$"):
        return "descrypt"
    if len(setting) > 13 and not setting.startswith("$") and (len(setting) - 2) % 11 == 0:
        return "bigcrypt"
    return "unknown"


class LibcryptUnavailable(Exception):
    """No usable libcrypt on this host."""


class Libcrypt:
    """A loaded libcrypt. Create it with :func:`load`; safe to share between threads."""

    def __init__(self, path: str) -> None:
        try:
            lib = ctypes.CDLL(path, use_errno=True)
        except OSError as exc:
            raise LibcryptUnavailable(f"cannot load libcrypt {path}: {exc}") from exc
        self.path = path
        self._local = threading.local()
        self._rn = getattr(lib, "crypt_rn", None)
        self._r = getattr(lib, "crypt_r", None)
        if self._rn is not None:
            self._rn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
            self._rn.restype = ctypes.c_char_p
        elif self._r is not None:
            self._r.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
            self._r.restype = ctypes.c_char_p
        else:
            raise LibcryptUnavailable(f"{path} has neither crypt_rn nor crypt_r")
        self._gensalt = getattr(lib, "crypt_gensalt_rn", None)
        if self._gensalt is not None:
            self._gensalt.argtypes = [
                ctypes.c_char_p,
                ctypes.c_ulong,
                ctypes.c_char_p,
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_int,
            ]
            self._gensalt.restype = ctypes.c_char_p
        self._checksalt = getattr(lib, "crypt_checksalt", None)
        if self._checksalt is not None:
            self._checksalt.argtypes = [ctypes.c_char_p]
            self._checksalt.restype = ctypes.c_int
        self._preferred = getattr(lib, "crypt_preferred_method", None)
        if self._preferred is not None:
            self._preferred.argtypes = []
            self._preferred.restype = ctypes.c_char_p

    def _data(self) -> ctypes.Array[ctypes.c_char]:
        buf: Optional[ctypes.Array[ctypes.c_char]] = getattr(self._local, "data", None)
        if buf is None:
            # Zero-filled, which sets crypt_data.initialized = 0 as the API requires on first use.
            buf = ctypes.create_string_buffer(_CRYPT_DATA_SIZE)
            self._local.data = buf
        return buf

    def crypt(self, phrase: str, setting: str) -> Optional[str]:
        """Hash ``phrase`` with ``setting`` (a stored hash or a salt); None when the method is unsupported.

        libxcrypt signals failure with NULL (crypt_rn) or a "*0"/"*1" failure token (crypt_r); both mean
        the library cannot compute this method, which the audit reports as an unsupported hash.
        """
        data = self._data()
        p = phrase.encode("utf-8")
        s = setting.encode("utf-8", "surrogateescape")
        if b"\x00" in p or b"\x00" in s:
            return None
        out: Optional[bytes]
        if self._rn is not None:
            out = self._rn(p, s, ctypes.addressof(data), _CRYPT_DATA_SIZE)
        else:
            assert self._r is not None
            out = self._r(p, s, ctypes.addressof(data))
        # crypt_data starts with output[] and setting[]: do not leave the hash behind in this thread's buffer.
        ctypes.memset(ctypes.addressof(data), 0, 2 * _CRYPT_OUTPUT_SIZE)
        if not out or out.startswith(b"*"):
            return None
        return out.decode("ascii", "replace")

    def verify(self, phrase: str, stored: str) -> Optional[bool]:
        """Whether ``phrase`` hashes to ``stored``; None when the method is unsupported."""
        computed = self.crypt(phrase, stored)
        if computed is None:
            return None
        return compare_digest(computed.encode(), stored.encode("utf-8", "surrogateescape"))

    def supports(self, stored: str) -> bool:
        """Whether this library can compute the method of ``stored`` (one hash with an empty phrase)."""
        return self.crypt("", stored) is not None

    def gensalt(self, prefix: Optional[str], count: int = 0) -> str:
        """A fresh setting for ``prefix`` ("$y$", "$6$", "" for DES; None: the preferred method)."""
        if self._gensalt is None:
            raise LibcryptUnavailable(f"{self.path} has no crypt_gensalt_rn")
        out = ctypes.create_string_buffer(_CRYPT_GENSALT_OUTPUT_SIZE)
        res: Optional[bytes] = self._gensalt(None if prefix is None else prefix.encode(), count, None, 0, out, len(out))
        if not res or res.startswith(b"*"):
            raise ValueError(f"libcrypt cannot make a salt for method prefix {prefix!r}")
        return res.decode("ascii")

    def check_salt(self, setting: str) -> SaltStatus:
        """libxcrypt's verdict on a stored hash's method: ok, legacy (weak, still accepted), invalid …"""
        if self._checksalt is None:
            method = method_of(setting)
            if method == "unknown":
                return "unknown"
            return "legacy" if method in LEGACY_METHODS else "ok"
        code = self._checksalt(setting.encode("utf-8", "surrogateescape"))
        return _CHECKSALT.get(code, "unknown")

    def preferred_method(self) -> Optional[str]:
        """The prefix libcrypt uses for new hashes ("$y$" on Debian 12), or None when unknown."""
        if self._preferred is None:
            return None
        res = self._preferred()
        return res.decode("ascii") if res else None


_loaded: Optional[Libcrypt] = None
_load_lock = threading.Lock()


def load(path: Optional[str] = None) -> Libcrypt:
    """The host's libcrypt (cached), or the library at ``path``. Raises LibcryptUnavailable."""
    global _loaded
    if path is not None:
        return Libcrypt(path)
    with _load_lock:
        if _loaded is None:
            found = ctypes.util.find_library("crypt")
            candidates = [c for c in (found, "libcrypt.so.1", "libcrypt.so.2") if c]
            last: Optional[LibcryptUnavailable] = None
            for cand in candidates:
                try:
                    _loaded = Libcrypt(cand)
                    break
                except LibcryptUnavailable as exc:
                    last = exc
            if _loaded is None:
                raise last or LibcryptUnavailable("no libcrypt found on this host")
        return _loaded
