"""Keyed digests, SHA-256 and constant-time comparison without loading OpenSSL into the agent.

``import hashlib`` or ``hmac`` loads ``_hashlib`` and with it libcrypto: 3.5 MiB of the agent's resident memory
(``ssl`` adds libssl, 5.2 MiB together), for a few digests of short strings a minute. CPython's own builtin
modules do the same work without it: ``_blake2`` (keyed BLAKE2b is a MAC by design, RFC 7693 §2.5, so it
replaces HMAC-SHA256 for the state files' keys), ``_sha256`` (``_sha2`` from 3.12) and ``_operator``'s
constant-time comparison. A Python built without them (some distributions route every hash to OpenSSL) falls
back to hashlib/hmac: the same answers, only the memory differs.

    keyed(key, b"data").hex()      # 64 hex digits, BLAKE2b-256 keyed with key (at most 64 bytes)
    sha256(b"data").hexdigest()
    compare_digest(a, b)
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["compare_digest", "keyed", "sha256"]

try:
    from _blake2 import blake2b as _blake2b
except ImportError:  # pragma: no cover - a Python built without its builtin hashes
    from hashlib import blake2b as _blake2b

try:
    from _sha2 import sha256 as _sha256  # 3.12+
except ImportError:
    try:
        from _sha256 import sha256 as _sha256  # 3.6-3.11
    except ImportError:  # pragma: no cover
        from hashlib import sha256 as _sha256

try:
    from _operator import _compare_digest as compare_digest
except ImportError:  # pragma: no cover
    from hmac import compare_digest  # type: ignore[no-redef]

sha256: Callable[..., Any] = _sha256


def keyed(key: bytes, data: bytes, size: int = 32) -> bytes:
    """BLAKE2b of ``data`` keyed with ``key`` (a MAC: without the key, nobody can compute or test a value)."""
    if not 0 < len(key) <= 64:
        raise ValueError("a BLAKE2b key is 1 to 64 bytes")
    return bytes(_blake2b(data, key=key, digest_size=size).digest())
