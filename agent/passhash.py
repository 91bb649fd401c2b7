"""bcrypt for the endpoint's basic auth: the bcrypt module, or the system's libcrypt where it is missing.

The bundle has bcrypt wheels for x86_64 and aarch64; on another CPU (agent/optional.py) the same $2b$ hashes come
from libxcrypt's crypt_r (every supported distribution's libcrypt computes bcrypt). Both give and accept the
same strings, so a web.yml written on one host verifies on any other.

``python -m agent.passhash`` reads a password on stdin and prints its bcrypt hash (install.sh uses it: the
password never appears on a command line).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from agent.optional import available, bcrypt

if TYPE_CHECKING:
    from agent.crypt import Libcrypt

__all__ = ["hashpw", "checkpw", "backend", "BcryptUnavailable"]

_PREFIXES = (b"$2a$", b"$2b$", b"$2y$")


class BcryptUnavailable(RuntimeError):
    """Neither the bcrypt module nor the system's libcrypt computes bcrypt."""


def backend() -> str:
    return "bcrypt" if available(bcrypt) else "libcrypt"


def _libcrypt() -> Libcrypt:
    from agent.crypt import LibcryptUnavailable, load

    try:
        return load()
    except LibcryptUnavailable as exc:
        raise BcryptUnavailable(f"no bcrypt module and no usable libcrypt: {exc}") from None


def _libcrypt_hash(password: bytes, setting: str) -> bytes:
    try:
        out = _libcrypt().crypt(password.decode("utf-8"), setting)
    except UnicodeError:
        raise BcryptUnavailable("libcrypt's bcrypt takes UTF-8 passwords only") from None
    if out is None:
        raise BcryptUnavailable("no bcrypt module, and this system's libcrypt does not compute bcrypt ($2b$)")
    return out.encode("ascii")


def hashpw(password: bytes, rounds: int = 10) -> bytes:
    """A new $2b$ hash of ``password`` (bcrypt reads at most 72 bytes)."""
    if available(bcrypt):
        return bcrypt.hashpw(password, bcrypt.gensalt(rounds=rounds))
    try:
        setting = _libcrypt().gensalt("$2b$", rounds)
    except ValueError as exc:
        raise BcryptUnavailable(f"no bcrypt module, and libcrypt cannot make a bcrypt salt: {exc}") from None
    return _libcrypt_hash(password, setting)


def checkpw(password: bytes, hashed: bytes) -> bool:
    """Whether ``password`` matches the bcrypt ``hashed``; ValueError for a string that is not a bcrypt hash."""
    if not hashed.startswith(_PREFIXES):
        raise ValueError("not a bcrypt hash")
    if available(bcrypt):
        return bool(bcrypt.checkpw(password, hashed))
    import hmac

    return hmac.compare_digest(_libcrypt_hash(password, hashed.decode("ascii", "replace")), hashed)


def main() -> int:
    password = sys.stdin.buffer.read().strip()
    if not password:
        print("passhash: empty password on stdin", file=sys.stderr)
        return 2
    try:
        print(hashpw(password).decode("ascii"))
    except BcryptUnavailable as exc:
        print(f"passhash: {exc}; install the distribution's python3-bcrypt", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
