"""agent.crypt against the host's real libcrypt (libxcrypt on Debian 12)."""

from __future__ import annotations

import threading

import pytest

from agent.crypt import Libcrypt, LibcryptUnavailable, load, method_of

METHODS = [
    ("$y$", "yescrypt", "ok"),
    ("$gy$", "gost-yescrypt", "ok"),
    ("$6$", "sha512crypt", "ok"),
    ("$5$", "sha256crypt", "legacy"),
    ("$2b$", "bcrypt", "ok"),
    ("$1$", "md5crypt", "legacy"),
    ("", "descrypt", "legacy"),
]


@pytest.fixture(scope="module")
def lib() -> Libcrypt:
    return load()


@pytest.mark.parametrize(("prefix", "method", "salt_status"), METHODS)
def test_hash_verify_and_classify_every_method(lib: Libcrypt, prefix: str, method: str, salt_status: str) -> None:
    setting = lib.gensalt(prefix, 4 if prefix == "$2b$" else 0)
    stored = lib.crypt("Tr0ub4dor&3", setting)
    assert stored is not None and stored != setting
    assert method_of(stored) == method
    assert lib.check_salt(stored) == salt_status
    assert lib.verify("Tr0ub4dor&3" if method != "descrypt" else "Tr0ub4do", stored) is True
    assert lib.verify("tr0ub4dor&3", stored) is False


def test_unknown_method_is_unsupported_not_a_crash(lib: Libcrypt) -> None:
    assert lib.crypt("x", "$9$abcdefgh$") is None
    assert lib.verify("x", "$9$abcdefgh$") is None
    assert lib.supports("$9$abcdefgh$") is False
    assert lib.check_salt("$9$abcdefgh$") == "invalid"
    assert lib.crypt("x", "") is None
    assert lib.crypt("a\x00b", "$6$salt$") is None
    with pytest.raises(ValueError, match="cannot make a salt"):
        lib.gensalt("$9$")


def test_preferred_method_is_a_known_prefix(lib: Libcrypt) -> None:
    pref = lib.preferred_method()
    assert pref is not None and method_of(pref + "x") != "unknown"


def test_missing_library_is_a_clear_error() -> None:
    with pytest.raises(LibcryptUnavailable, match="cannot load libcrypt"):
        Libcrypt("/nonexistent/libcrypt.so.9")


def test_threads_each_use_their_own_crypt_data(lib: Libcrypt) -> None:
    stored = {pw: lib.crypt(pw, lib.gensalt("$5$", 1000)) for pw in ("alpha", "bravo", "charlie", "delta")}
    errors: list[str] = []

    def work(pw: str) -> None:
        for _ in range(50):
            s = stored[pw]
            assert s is not None
            if lib.crypt(pw, s) != s:
                errors.append(pw)

    threads = [threading.Thread(target=work, args=(pw,)) for pw in stored]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
