"""Local accounts and their password fields: /etc/passwd, /etc/shadow, /etc/login.defs.

The stored hash is kept in memory only, on the :class:`Account` object, for the length of one audit; it
is never logged (``repr`` hides it) nor written anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from agent.compat import Literal

__all__ = [
    "Account",
    "AccountClass",
    "PasswordState",
    "AccountFileError",
    "LoginDefs",
    "parse_login_defs",
    "read_accounts",
    "mask_name",
]

AccountClass = Literal["root", "system", "human"]
PasswordState = Literal["hash", "empty", "locked"]

# Shells that refuse an interactive login: an account with one of these is not a person's account.
_NO_LOGIN_SHELLS = ("nologin", "false", "sync", "shutdown", "halt", "true")


class AccountFileError(Exception):
    """An account file could not be read or has a line that is not in its format."""


@dataclass(frozen=True)
class LoginDefs:
    uid_min: int = 1000
    uid_max: int = 60000


@dataclass
class Account:
    name: str
    uid: int
    gid: int
    shell: str
    klass: AccountClass
    state: PasswordState
    source: str  # the file the password field came from
    # The stored hash; never logged or exported (excluded from repr).
    stored: str = field(default="", repr=False)


def mask_name(name: str, key: bytes = b"") -> str:
    """``root`` -> ``r***t``: enough for an operator who knows the host, little for anyone else. With ``key``
    (the host's audit secret) a 4-hex keyed suffix keeps two accounts apart that mask alike (``sbt_a`` and
    ``sectest_alpha`` are both ``s***a``): ``s***a~3f2c``. Keyed, so the suffix cannot be looked up offline."""
    masked = name[:1] + "***" if len(name) <= 2 else f"{name[0]}***{name[-1]}"
    if not key:
        return masked
    import hmac

    return f"{masked}~{hmac.new(key, name.encode('utf-8', 'surrogateescape'), 'sha256').hexdigest()[:4]}"


def parse_login_defs(text: str) -> LoginDefs:
    values: dict[str, int] = {}
    for raw in text.splitlines():
        parts = raw.split("#", 1)[0].split()
        if len(parts) >= 2 and parts[0] in ("UID_MIN", "UID_MAX"):
            try:
                values[parts[0]] = int(parts[1], 0)
            except ValueError:
                continue  # a malformed value keeps the default, as login(1) itself does
    return LoginDefs(values.get("UID_MIN", 1000), values.get("UID_MAX", 60000))


def _login_shell(shell: str) -> bool:
    return bool(shell) and not any(shell.rstrip("/").endswith(s) for s in _NO_LOGIN_SHELLS)


def classify(name: str, uid: int, shell: str, defs: LoginDefs) -> AccountClass:
    if uid == 0:
        return "root"
    if defs.uid_min <= uid <= defs.uid_max and _login_shell(shell):
        return "human"
    return "system"


def _state_of(password_field: str) -> PasswordState:
    if password_field == "":
        return "empty"
    # "!" / "!!" (usermod -L, or no password set yet on RHEL) and "*" (no password ever) disable password
    # login; "!<hash>" keeps the hash for unlocking, which counts as locked, not as a hash to audit.
    if password_field[0] in "!*" or password_field in ("x", "LK", "NP"):
        return "locked"
    return "hash"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise AccountFileError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _split(
    path: Path, text: str, min_fields: int, skipped: Optional[list[str]] = None
) -> Iterable[tuple[int, list[str]]]:
    """Fields of each entry. A malformed line is skipped and noted in ``skipped`` (file, line number and what is
    wrong -- never the line itself, which may hold a hash), so one bad line does not stop the audit of the
    rest; without ``skipped`` it is an error."""
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not line or line.startswith("#"):
            continue
        if line[0] in "+-":  # NIS compat entries: not local accounts
            continue
        fields = line.split(":")
        if len(fields) < min_fields or not fields[0]:
            problem = f"{path}:{lineno}: expected at least {min_fields} ':'-separated fields and a name"
            if skipped is None:
                raise AccountFileError(problem)
            skipped.append(problem)
            continue
        yield lineno, fields


def read_accounts(
    passwd: Path, shadow: Optional[Path], login_defs: Optional[Path] = None, skipped: Optional[list[str]] = None
) -> list[Account]:
    """Every local account with its password state; hashes from shadow, or from passwd when not shadowed.
    Malformed lines are skipped and described in ``skipped`` when given (else they are an error)."""
    defs = LoginDefs()
    if login_defs is not None and login_defs.exists():
        defs = parse_login_defs(_read(login_defs))
    shadow_fields: dict[str, str] = {}
    if shadow is not None and shadow.exists():
        for _, fields in _split(shadow, _read(shadow), 2, skipped):
            shadow_fields.setdefault(fields[0], fields[1])
    accounts: list[Account] = []
    seen: set[str] = set()
    for lineno, fields in _split(passwd, _read(passwd), 7, skipped):
        name, pw = fields[0], fields[1]
        if name in seen:
            continue
        try:
            uid, gid = int(fields[2]), int(fields[3])
        except ValueError:
            problem = f"{passwd}:{lineno}: UID/GID is not a number"
            if skipped is None:
                raise AccountFileError(problem) from None
            skipped.append(problem)
            continue
        seen.add(name)
        shell = fields[6]
        if pw == "x":
            source = str(shadow)
            # A shadowed account without a shadow line cannot log in with a password.
            pw = shadow_fields.get(name, "*")
        else:
            source = str(passwd)
        state = _state_of(pw)
        accounts.append(
            Account(
                name=name,
                uid=uid,
                gid=gid,
                shell=shell,
                klass=classify(name, uid, shell, defs),
                state=state,
                source=source,
                stored=pw if state == "hash" else "",
            )
        )
    return accounts


def read_groups(group: Path) -> dict[str, tuple[int, list[str]]]:
    """/etc/group as name -> (gid, members); missing file -> empty."""
    out: dict[str, tuple[int, list[str]]] = {}
    if not group.exists():
        return out
    for lineno, fields in _split(group, _read(group), 4):
        try:
            gid = int(fields[2])
        except ValueError:
            raise AccountFileError(f"{group}:{lineno}: GID of {fields[0]!r} is not a number") from None
        out[fields[0]] = (gid, [m for m in fields[3].split(",") if m])
    return out
