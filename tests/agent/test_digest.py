"""agent.digest gives hashlib's answers without loading OpenSSL (RFC 7693's BLAKE2b test vector, FIPS 180 SHA-256)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from agent.digest import compare_digest, keyed, sha256


def test_keyed_blake2b_matches_hashlib_and_rfc7693() -> None:
    # RFC 7693 Appendix A: BLAKE2b-512("abc"), unkeyed; the keyed form is checked against hashlib's.
    from agent import digest

    assert digest._blake2b(b"abc").hexdigest().startswith("ba80a53f981c4d0d6a2797b69f12f6e9")
    key = bytes(range(64))
    for size in (16, 32, 64):
        assert keyed(key, b"data", size) == hashlib.blake2b(b"data", key=key, digest_size=size).digest()
    assert keyed(b"k" * 32, b"a") != keyed(b"l" + b"k" * 31, b"a")
    with pytest.raises(ValueError, match="1 to 64 bytes"):
        keyed(b"x" * 65, b"data")


def test_sha256_and_compare_digest_match_the_standard_library() -> None:
    assert sha256(b"abc").hexdigest() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    h = sha256()
    h.update(b"a")
    h.update(b"bc")
    assert h.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    assert compare_digest(b"same", b"same") and not compare_digest(b"same", b"diff")


def test_importing_it_loads_no_openssl() -> None:
    code = ("import sys, agent.digest; from agent.digest import keyed, sha256; keyed(b'k', b'd'); sha256(b'd'); "
            "print(sorted(m for m in ('_hashlib', '_ssl', 'hashlib', 'hmac') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
