"""Effective sshd settings that matter for password guessing, including those set in Match blocks.

``sshd -T`` is the truth (it applies defaults, Includes and, with ``-C``, Match blocks). For each Match
block the connection spec ``-C user=…,host=…,addr=…`` is built from the block's own criteria, so the
settings that block changes are evaluated too. When sshd cannot be run, a fallback reader parses
sshd_config with its Include globs (first value wins, as in sshd) and applies OpenSSH's defaults.
"""

from __future__ import annotations

import glob
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from agent.process import CommandError, run

__all__ = ["SSH_SETTINGS", "SshSettings", "SshRisk", "effective_settings", "parse_config", "assess",
    "match_specs", "config_lines"]

# Exported setting label -> sshd keyword (lower case, as `sshd -T` prints it).
SSH_SETTINGS: dict[str, str] = {
    "permit_root_login": "permitrootlogin",
    "password_authentication": "passwordauthentication",
    "permit_empty_passwords": "permitemptypasswords",
    "max_auth_tries": "maxauthtries",
}
_DEFAULTS = {
    "permitrootlogin": "prohibit-password",
    "passwordauthentication": "yes",
    "permitemptypasswords": "no",
    "maxauthtries": "6",
}
_MAX_INCLUDE_DEPTH = 16


@dataclass
class SshSettings:
    """The four settings for one context ("global" or a Match block's spec)."""

    context: str
    values: dict[str, str]


@dataclass
class SshRisk:
    setting: str  # exported label
    value: str
    context: str  # where: "global" or "Match User alice"


@dataclass
class SshResult:
    source: str  # "sshd -T" or the fallback parser
    contexts: list[SshSettings] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def config_lines(
    path: Path, depth: int = 0, base: Optional[Path] = None, root: Optional[Path] = None
) -> list[tuple[str, str, str]]:
    """(keyword lower, value, "file:line") with Includes expanded in place.

    sshd resolves a relative Include against /etc/ssh; for a configuration elsewhere (tests, chroots) the
    main file's directory plays that role. With ``root``, absolute Include patterns are taken under it.
    """
    base = base or path.parent
    if depth > _MAX_INCLUDE_DEPTH:
        return []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out: list[tuple[str, str, str]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^(\S+?)(?:\s*=\s*|\s+)(.*)$", line)
        if not m:
            continue
        key, value = m.group(1).lower(), m.group(2).strip()
        if key == "include":
            for pattern in value.split():
                if not pattern.startswith("/"):
                    pattern = str(base / pattern)
                elif root is not None:
                    pattern = str(root / pattern.lstrip("/"))
                for inc in sorted(glob.glob(pattern)):
                    out.extend(config_lines(Path(inc), depth + 1, base, root))
            continue
        out.append((key, value, f"{path}:{lineno}"))
    return out


def parse_config(path: Path) -> list[SshSettings]:
    """The fallback: global settings (first value wins, defaults filled in) and each Match block's own."""
    glob_vals: dict[str, str] = {}
    blocks: list[SshSettings] = []
    current: Optional[SshSettings] = None
    for key, value, _ in config_lines(path):
        if key == "match":
            current = SshSettings(f"Match {value}", {})
            blocks.append(current)
            continue
        if key not in _DEFAULTS:
            continue
        target = glob_vals if current is None else current.values
        target.setdefault(key, value.split()[0].lower())
    base = dict(_DEFAULTS)
    base.update(glob_vals)
    out = [SshSettings("global", base)]
    for b in blocks:
        merged = dict(base)
        merged.update(b.values)
        out.append(SshSettings(b.context, merged))
    return out


def _addr_from_pattern(pattern: str) -> Optional[str]:
    pattern = pattern.split(",")[0].strip()
    if pattern.startswith("!"):
        return None
    try:
        net = ipaddress.ip_network(pattern, strict=False)
        return str(net.network_address if net.num_addresses == 1 else next(iter(net.hosts())))
    except ValueError:
        pass
    cand = pattern.replace("*", "1").replace("?", "1")
    try:
        return str(ipaddress.ip_address(cand))
    except ValueError:
        return None


def match_specs(path: Path, groups: Optional[dict[str, list[str]]] = None) -> list[tuple[str, str]]:
    """(context, ``-C`` spec) for each Match block whose criteria can be satisfied by a made-up connection."""
    specs: list[tuple[str, str]] = []
    for key, value, _ in config_lines(path):
        if key != "match":
            continue
        words = value.split()
        spec = {"user": "root", "host": "localhost", "addr": "127.0.0.1"}
        ok = True
        for crit, arg in zip(words[0::2], words[1::2]):
            crit = crit.lower()
            first = next((p for p in arg.split(",") if not p.startswith("!")), "")
            if crit == "user" and first and "*" not in first and "?" not in first:
                spec["user"] = first
            elif crit == "host" and first:
                spec["host"] = first.replace("*", "x").replace("?", "x")
            elif crit == "address":
                addr = _addr_from_pattern(arg)
                if addr is None:
                    ok = False
                else:
                    spec["addr"] = addr
            elif crit == "group":
                members = [m for g in arg.split(",") for m in (groups or {}).get(g, [])]
                if not members:
                    ok = False
                else:
                    spec["user"] = members[0]
            elif crit == "localaddress":
                laddr = _addr_from_pattern(arg)
                if laddr:
                    spec["laddr"] = laddr
            elif crit == "localport" and arg.isdigit():
                spec["lport"] = arg
        if words and words[0].lower() == "all":
            ok = True
        if ok:
            specs.append((f"Match {value}", ",".join(f"{k}={v}" for k, v in spec.items())))
    return specs


def _sshd_t(sshd: str, config: Path, host_keys: Sequence[str], spec: Optional[str], timeout: float) -> dict[str, str]:
    argv = [sshd, "-T", "-f", str(config)]
    for key in host_keys:
        argv += ["-h", key]
    if spec:
        argv += ["-C", spec]
    res = run(argv, timeout=timeout)
    if res.returncode != 0:
        msg = (res.stderr.strip().splitlines() or [f"exit status {res.returncode}"])[-1]
        raise CommandError(f"{' '.join(argv[:4])} failed: {msg}")
    values: dict[str, str] = {}
    for line in res.stdout.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0] in _DEFAULTS:
            values[parts[0]] = parts[1].strip().lower()
    return values


def effective_settings(
    config: Path,
    sshd: Optional[str],
    host_keys: Sequence[str] = (),
    groups: Optional[dict[str, list[str]]] = None,
    timeout: float = 10.0,
) -> SshResult:
    if sshd:
        try:
            result = SshResult("sshd -T")
            result.contexts.append(SshSettings("global", _sshd_t(sshd, config, host_keys, None, timeout)))
        except CommandError as exc:
            fallback = SshResult(f"{config} (解析配置文件 parsed)", parse_config(config))
            fallback.notes.append(f"sshd -T 不可用, 改为解析配置文件 (sshd -T unavailable: {exc})")
            return fallback
        for context, spec in match_specs(config, groups):
            try:
                values = _sshd_t(sshd, config, host_keys, spec, timeout)
            except CommandError as exc:
                # One Match block sshd cannot evaluate for a made-up connection does not hide the others.
                result.notes.append(f"{context}: 无法用 -C {spec} 评估 ({exc})")
                continue
            result.contexts.append(SshSettings(f"{context} (-C {spec})", values))
        return result
    return SshResult(f"{config} (解析配置文件 parsed)", parse_config(config))


def assess(result: SshResult, max_auth_tries_limit: int) -> tuple[dict[str, int], list[SshRisk]]:
    """Per exported setting 1 (risky in any context) or 0, and every risky (setting, value, context)."""
    flags = dict.fromkeys(SSH_SETTINGS, 0)
    risks: list[SshRisk] = []
    for ctx in result.contexts:
        for label, keyword in SSH_SETTINGS.items():
            value = ctx.values.get(keyword, _DEFAULTS[keyword])
            if label == "permit_root_login":
                risky = value == "yes"
            elif label == "max_auth_tries":
                risky = value.isdigit() and int(value) > max_auth_tries_limit
            else:
                risky = value == "yes"
            if risky:
                flags[label] = 1
                risks.append(SshRisk(label, value, ctx.context))
    return flags, risks
