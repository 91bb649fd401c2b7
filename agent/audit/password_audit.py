"""One run of the account audit: read the account files, consult the cache, hash what is new, classify.

The result names accounts (for the console report of ``shaobing scan`` only); the collector turns it into
counts, and into masked per-account series only when the operator opted in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from agent.audit.dictionary import Dictionary
from agent.audit.runner import FINAL_VERDICTS, ResultCache, Verdict, WorkItem, run_child
from agent.audit.shadow import Account, AccountClass, read_accounts, read_groups
from agent.audit.sudoers import nopasswd_accounts
from agent.compat import Literal
from agent.crypt import Libcrypt, method_of

__all__ = ["Reason", "REASONS", "CLASSES", "AccountFinding", "AuditResult", "AuditPaths", "run_password_audit"]

log = logging.getLogger(__name__)

Reason = Literal["empty", "dictionary", "legacy_hash", "uid0_extra", "nopasswd_sudo", "locked", "unsupported_hash"]
REASONS: tuple[Reason, ...] = (
    "empty",
    "dictionary",
    "legacy_hash",
    "uid0_extra",
    "nopasswd_sudo",
    "locked",
    "unsupported_hash",
)
CLASSES: tuple[AccountClass, ...] = ("root", "system", "human")
_CLASS_ORDER = {"root": 0, "human": 1, "system": 2}


@dataclass(frozen=True)
class AuditPaths:
    passwd: Path = Path("/etc/passwd")
    shadow: Path = Path("/etc/shadow")
    group: Path = Path("/etc/group")
    login_defs: Path = Path("/etc/login.defs")
    sudoers: Path = Path("/etc/sudoers")


@dataclass
class AccountFinding:
    name: str
    klass: AccountClass
    uid: int
    method: str  # hashing method name ("" when there is no hash)
    reasons: list[Reason] = field(default_factory=list)
    pending: bool = False
    sudo_rule: str = ""  # file:line of the NOPASSWD rule
    hash_in_passwd: bool = False  # a non-shadowed hash: readable by every local user


@dataclass
class AuditResult:
    accounts: list[AccountFinding]
    checked: int  # accounts with a hash whose verdict is final
    pending: int
    budget_exhausted: bool
    hashes_computed: int
    complete: bool
    duration: float
    error: Optional[str] = None
    skipped_lines: list[str] = field(default_factory=list)  # "file:line: what is wrong", never the content
    coverage: dict[str, float] = field(default_factory=dict)  # account class -> share of the corpus tried

    def count(self, reason: Reason, klass: AccountClass) -> int:
        return sum(1 for a in self.accounts if a.klass == klass and reason in a.reasons)


def run_password_audit(
    paths: AuditPaths,
    lib: Libcrypt,
    cache: ResultCache,
    dictionary: Dictionary,
    *,
    budget: float,
    wall: float,
    caps: Mapping[str, int],
    default_cap: int,
) -> AuditResult:
    started = time.monotonic()
    skipped: list[str] = []
    accounts = read_accounts(paths.passwd, paths.shadow, paths.login_defs, skipped)
    groups = read_groups(paths.group)
    sudo = nopasswd_accounts(paths.sudoers, ((a.name, a.uid, a.gid) for a in accounts), groups)
    version = dictionary.version
    known = cache.load()
    entries: dict[str, tuple[Verdict, int]] = {}
    findings: dict[str, AccountFinding] = {}
    keys: dict[str, str] = {}
    work: list[tuple[Account, WorkItem]] = []
    for acc in accounts:
        method = method_of(acc.stored) if acc.stored else ""
        f = findings[acc.name] = AccountFinding(acc.name, acc.klass, acc.uid, method)
        f.hash_in_passwd = acc.state == "hash" and acc.source == str(paths.passwd)
        if acc.uid == 0 and acc.name != "root":
            f.reasons.append("uid0_extra")
        if acc.name in sudo:
            f.reasons.append("nopasswd_sudo")
            f.sudo_rule = sudo[acc.name]
        if acc.state == "empty":
            f.reasons.append("empty")
            continue
        if acc.state == "locked":
            f.reasons.append("locked")
            continue
        salt = lib.check_salt(acc.stored)
        if salt in ("invalid", "disabled"):
            f.reasons.append("unsupported_hash")
            continue
        if salt == "legacy":
            f.reasons.append("legacy_hash")
        cap = caps.get(f.method, default_cap)
        key = cache.key(acc.name, acc.stored, version, cap)
        keys[acc.name] = key
        verdict, nxt = known.get(key, ("pending", 0))
        entries[key] = (verdict, nxt)
        if verdict == "pending":
            work.append((acc, WorkItem(key, acc.stored, dictionary.candidates(acc.name), nxt, cap)))
    work.sort(key=lambda w: (_CLASS_ORDER[w[0].klass], w[0].name))
    result = run_child([w for _, w in work], budget=budget, wall=wall)
    if result.error:
        # The error text comes from the child's own summary line or its exit status, never its input.
        log.warning("password audit: %s", result.error)
    entries.update(result.verdicts)
    # Only keys of current accounts are written back: a changed or deleted account leaves no trace.
    cache.save(entries)
    if result.error and not result.verdicts:
        # Nothing was checked: a failed run, not a budget question (the scheduler reports it as failed).
        raise RuntimeError(f"password audit: {result.error}")
    checked = pending = 0
    tried: dict[str, list[float]] = {}
    by_name = {a.name: a for a in accounts}
    for name, key in keys.items():
        verdict, position = entries[key]
        f = findings[name]
        if verdict != "unsupported":
            # How far down the corpus this account has been tried (a weak one is settled: 1).
            size = max(dictionary.size(name), 1)
            done = 1.0 if verdict in ("weak", "empty") else min(position, size) / size
            tried.setdefault(by_name[name].klass, []).append(done)
        if verdict in FINAL_VERDICTS:
            checked += 1
        else:
            pending += 1
            f.pending = True
        if verdict == "weak":
            f.reasons.append("dictionary")
        elif verdict == "empty":
            f.reasons.append("empty")
        elif verdict == "unsupported":
            f.reasons.append("unsupported_hash")
    log.debug(
        "password audit: %d accounts, %d checked, %d pending, %d hashes computed",
        len(accounts),
        checked,
        pending,
        result.hashes,
    )
    return AuditResult(
        accounts=list(findings.values()),
        checked=checked,
        pending=pending,
        budget_exhausted=result.budget_exhausted and pending > 0,
        hashes_computed=result.hashes,
        complete=pending == 0 and result.error is None,
        duration=time.monotonic() - started,
        error=result.error,
        skipped_lines=skipped,
        coverage={klass: sum(v) / len(v) for klass, v in tried.items()},
    )
