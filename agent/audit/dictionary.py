"""Candidate passwords for one account, likeliest first, and the dictionary's version.

Order (the audit stops early under its CPU budget, so it matters): the empty password, the ten top
shipped candidates, the account's own variants, the operator's extra wordlist, hostname variants, the site's
own names (Pinyin of the township labels, agent.audit.site_words), then the rest of the shipped list. The
version covers everything that changes the candidate list, so a changed
list re-checks every account once, and an unchanged one never does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from agent.digest import sha256

__all__ = [
    "Dictionary",
    "DictionaryError",
    "Policy",
    "load_dictionary",
    "read_policy",
    "shipped_candidates",
    "user_variants",
    "host_variants",
    "site_variants",
]

# Beside the code, as eol.csv and the baseline are read (importlib.resources.files is Python 3.9+).
_DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "weak_passwords.txt"
_TOP = 10
# A name part of the host name is a common password stem ("zhenfu-web01" -> "zhenfu").
_HOST_PART_RE = re.compile(r"[a-zA-Z]{3,}")


class DictionaryError(Exception):
    """The extra wordlist named in the configuration could not be read."""


def _parse(text: str) -> list[str]:
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip("\r\n")
        if not line or line.startswith("# ") or line == "#":
            continue
        out.append(line)
    return out


def user_variants(user: str, year: int) -> list[str]:
    out = [user, f"{user}123", f"{user}@123", f"{user}1", f"{user}111", f"{user}_123", f"{user}#123"]
    out += [f"{user}@{y}" for y in (year, year - 1, year - 2)]
    out += [f"{user}{y}" for y in (year, year - 1, year - 2)]
    # Passwords set once and never changed: the scanner lists still carry {user}@2019.
    out += [f"{user}@{y}" for y in range(year - 3, year - 8, -1)]
    out += [f"{user}@123#4", f"{user}123456", f"{user}@111"]
    cap = user[:1].upper() + user[1:]
    if cap != user:
        out += [cap, f"{cap}@123", f"{cap}123", f"{cap}@{year}"]
    return out


def host_variants(hostname: str, year: int) -> list[str]:
    short = hostname.split(".", 1)[0]
    stems: list[str] = []
    for stem in [short, *_HOST_PART_RE.findall(short)]:
        if stem and stem not in stems:
            stems.append(stem)
    out: list[str] = []
    for stem in stems:
        out += [stem, f"{stem}123", f"{stem}@123", f"{stem}@{year}", f"{stem}{year}"]
    return out


def site_variants(stems: Sequence[str], year: int) -> list[str]:
    """``chengguan`` -> chengguan, chengguan123, chengguan@123, Chengguan@123, chengguan@2026, Cgz2026 ..."""
    out: list[str] = []
    for stem in stems:
        cap = stem[:1].upper() + stem[1:]
        out += [stem, f"{stem}123", f"{stem}@123", f"{cap}@123", f"{stem}123456", f"{stem}@{year}", f"{cap}@{year}",
                f"{stem}{year}", f"{cap}{year}", f"{stem}@{year - 1}", f"{stem}888", f"{cap}123!", f"{stem}@123456"]
    return out


def _dedupe(items: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


@dataclass(frozen=True)
class Policy:
    """The host's own password rules: a candidate the system would refuse to set is less likely, so it goes
    last (never away: an old password set before the rule still exists)."""

    min_length: int = 0
    min_classes: int = 0  # of lower, upper, digit, other

    def allows(self, candidate: str) -> bool:
        if len(candidate) < self.min_length:
            return False
        classes = sum((any(c.islower() for c in candidate), any(c.isupper() for c in candidate),
                       any(c.isdigit() for c in candidate), any(not c.isalnum() for c in candidate)))
        return classes >= self.min_classes


def read_policy(pwquality: Path = Path("/etc/security/pwquality.conf"),
                login_defs: Path = Path("/etc/login.defs")) -> Policy:
    """minlen/minclass from pwquality.conf, else PASS_MIN_LEN from login.defs; unreadable files: no policy."""
    values: dict[str, int] = {}
    for path, keys in ((pwquality, ("minlen", "minclass")), (login_defs, ("PASS_MIN_LEN",))):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].replace("=", " ").split()
            if len(line) >= 2 and line[0] in keys and line[1].isdigit():
                values[line[0]] = int(line[1])
    return Policy(values.get("minlen", values.get("PASS_MIN_LEN", 0)), values.get("minclass", 0))


@dataclass(frozen=True)
class Dictionary:
    shipped: tuple[str, ...]
    extra: tuple[str, ...]
    hostname: str
    year: int
    policy: Policy = Policy()
    site: tuple[str, ...] = ()  # stems of the site's own names (agent.audit.site_words)

    @property
    def version(self) -> str:
        """A digest of every input of :meth:`candidates`; the cache is keyed by it."""
        h = sha256()
        policy = f"{self.policy.min_length}/{self.policy.min_classes}"
        site = ("\x00site", *self.site) if self.site else ()  # absent: the same version as before site names
        for part in ("v2", self.hostname, str(self.year), policy, *self.shipped, "\x00", *self.extra, *site):
            h.update(part.encode("utf-8", "surrogateescape") + b"\n")
        return str(h.hexdigest()[:16])

    def size(self, user: str) -> int:
        """How many candidates ``candidates(user)`` holds, at most (cheap: no list is built)."""
        return 1 + len(self.shipped) + len(self.extra) + len(user_variants(user, self.year)) + len(
            host_variants(self.hostname, self.year)) + len(site_variants(self.site, self.year))

    def candidates(self, user: str) -> list[str]:
        ranked = _dedupe(
            [
                "",
                *self.shipped[:_TOP],
                *user_variants(user, self.year),
                *self.extra,
                *host_variants(self.hostname, self.year),
                *site_variants(self.site, self.year),
                *self.shipped[_TOP:],
            ]
        )
        if not (self.policy.min_length or self.policy.min_classes):
            return ranked
        # Stable: within each part the likelihood order is kept. The empty password always goes first.
        allowed = [c for c in ranked if c == "" or self.policy.allows(c)]
        return allowed + [c for c in ranked if c != "" and not self.policy.allows(c)]


def shipped_candidates(year: Optional[int] = None) -> list[str]:
    """The corpus, likeliest first: agent/data/weak_passwords.txt (hand-ranked), then agent.audit.corpus's
    generated tiers for ``year`` (omitted: the hand-ranked list only)."""
    hand = _parse(_DATA_FILE.read_text(encoding="utf-8"))
    if year is None:
        return hand
    from agent.audit.corpus import generated_candidates

    return _dedupe([*hand, *generated_candidates(year)])


def load_dictionary(
    hostname: str,
    year: int,
    extra_wordlist: Optional[str] = None,
    policy: Optional[Policy] = None,
    site: Sequence[str] = (),
) -> Dictionary:
    shipped = shipped_candidates(year)
    extra: list[str] = []
    if extra_wordlist:
        try:
            extra = _parse(Path(extra_wordlist).read_text(encoding="utf-8", errors="surrogateescape"))
        except OSError as exc:
            raise DictionaryError(
                f"collectors.passwords.extra_wordlist: cannot read {extra_wordlist}: {exc.strerror or exc}"
            ) from exc
    return Dictionary(tuple(shipped), tuple(extra), hostname, year, policy or Policy(), tuple(site))
