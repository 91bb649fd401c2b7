"""Passwordless sudo: which accounts a ``NOPASSWD`` rule (or ``Defaults !authenticate``) covers.

A small reader, not a full sudoers grammar: it follows ``@includedir``/``#includedir`` and
``@include``/``#include``, joins continuation lines, expands ``User_Alias``, ``%group`` and ``ALL``. A rule it
cannot read is skipped, never fatal: this feeds a count of risky accounts, not an access decision.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

__all__ = ["NopasswdRule", "read_sudoers", "nopasswd_accounts"]

_SPEC_RE = re.compile(r"^(?P<users>.+?)\s+(?P<hosts>[^\s=,]+(?:\s*,\s*[^\s=,]+)*)\s*=")
_ALIAS_RE = re.compile(r"^User_Alias\s+(.*)$")
_MAX_DEPTH = 8


@dataclass
class NopasswdRule:
    source: str  # "file:line", for the console report
    users: list[str] = field(default_factory=list)  # raw user list entries: name, %group, ALIAS, ALL


@dataclass
class _Parsed:
    rules: list[NopasswdRule] = field(default_factory=list)
    aliases: dict[str, list[str]] = field(default_factory=dict)


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    buf = ""
    start = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not buf:
            start = lineno
        if raw.endswith("\\"):
            buf += raw[:-1] + " "
            continue
        yield start, buf + raw
        buf = ""
    if buf:
        yield start, buf


def _strip_comment(line: str) -> str:
    # "#include" directives were handled before; "#123" is a UID in a user list, not a comment.
    return re.sub(r"(?:^|\s)#(?!\d).*$", "", line).strip()


def _include_dir(path: Path) -> list[Path]:
    if not path.is_dir():
        return []
    # sudo skips names ending in "~" or containing "." (editor backups, package leftovers).
    return sorted(p for p in path.iterdir() if p.is_file() and "." not in p.name and not p.name.endswith("~"))


def _parse(path: Path, out: _Parsed, depth: int, root: Optional[Path] = None) -> None:
    if depth > _MAX_DEPTH:
        return
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    for lineno, raw in _logical_lines(text):
        line = raw.strip()
        m = re.match(r"^[@#](includedir|include)\s+(\S+)", line)
        if m:
            target = Path(m.group(2))
            if not target.is_absolute():
                target = path.parent / target
            elif root is not None:  # a tree under a root (a chroot, a test): its /etc/sudoers.d, not ours
                target = root / str(target).lstrip("/")
            files = _include_dir(target) if m.group(1) == "includedir" else [target]
            for f in files:
                _parse(f, out, depth + 1, root)
            continue
        line = _strip_comment(line)
        if not line:
            continue
        alias = _ALIAS_RE.match(line)
        if alias:
            for part in alias.group(1).split(":"):
                if "=" in part:
                    name, members = part.split("=", 1)
                    out.aliases[name.strip()] = [u.strip() for u in members.split(",") if u.strip()]
            continue
        if re.match(r"^Defaults(\s|$)", line) and re.search(r"(^|[\s,])!authenticate\b", line):
            out.rules.append(NopasswdRule(f"{path}:{lineno}", ["ALL"]))
            continue
        m2 = re.match(r"^Defaults:(\S+)\s+(.*)$", line)
        if m2:
            if re.search(r"(^|[\s,])!authenticate\b", m2.group(2)):
                out.rules.append(NopasswdRule(f"{path}:{lineno}", m2.group(1).split(",")))
            continue
        if line.startswith(("Defaults", "Host_Alias", "Runas_Alias", "Cmnd_Alias", "Cmd_Alias")):
            continue
        if "NOPASSWD" not in line:
            continue
        spec = _SPEC_RE.match(line)
        if spec:
            users = [u.strip() for u in spec.group("users").split(",") if u.strip()]
            out.rules.append(NopasswdRule(f"{path}:{lineno}", users))


def read_sudoers(path: Path, root: Optional[Path] = None) -> tuple[list[NopasswdRule], dict[str, list[str]]]:
    """The NOPASSWD rules and user aliases; with ``root``, absolute include paths are taken under it."""
    parsed = _Parsed()
    _parse(path, parsed, 0, root)
    return parsed.rules, parsed.aliases


def nopasswd_accounts(
    path: Path,
    accounts: Iterable[tuple[str, int, int]],
    groups: dict[str, tuple[int, list[str]]],
    root: Optional[Path] = None,
) -> dict[str, str]:
    """Account name -> the rule ("file:line") that lets it sudo without a password.

    ``accounts`` are (name, uid, primary gid); ``groups`` is /etc/group as name -> (gid, members).
    """
    rules, aliases = read_sudoers(path, root)
    accs = list(accounts)
    by_uid = {uid: name for name, uid, _ in accs}
    found: dict[str, str] = {}

    def expand(entry: str, depth: int = 0) -> set[str]:
        entry = entry.strip()
        if entry.startswith("!") or depth > _MAX_DEPTH:
            return set()  # negations only narrow a list; ignoring them can only over-report
        if entry == "ALL":
            return {name for name, _, _ in accs}
        if entry.startswith("%"):
            gname = entry[1:]
            if gname.startswith(":"):  # non-Unix group (sssd/AD): unknown locally
                return set()
            if gname.startswith("#"):
                try:
                    gid = int(gname[1:])
                except ValueError:
                    return set()
                members = {m for g in groups.values() if g[0] == gid for m in g[1]}
            else:
                gid = groups[gname][0] if gname in groups else -1
                members = set(groups[gname][1]) if gname in groups else set()
            members |= {name for name, _, pgid in accs if pgid == gid}
            return members
        if entry.startswith("#"):
            try:
                return {by_uid[int(entry[1:])]} if int(entry[1:]) in by_uid else set()
            except ValueError:
                return set()
        if entry in aliases:
            out: set[str] = set()
            for member in aliases[entry]:
                out |= expand(member, depth + 1)
            return out
        return {entry}

    known = {name for name, _, _ in accs}
    for rule in rules:
        for entry in rule.users:
            for name in sorted(expand(entry)):
                if name in known:
                    found.setdefault(name, rule.source)
    return found
