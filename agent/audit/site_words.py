"""The site's own names as password stems: 城关镇 -> ``chengguanzhen``, ``chengguan``, ``cgz``, ``cg``.

Township staff build passwords from where they work (``chengguan@123``, ``Cgz2024``). The names come from the
agent's ``labels`` (township, site, county ...) and the password check's ``site_names``; Chinese ones are
turned into Pinyin with pypinyin (phrase-aware, so 重庆 is ``chongqing`` and 长安 ``changan``), ASCII ones are
used as they are.

pypinyin's phrase tables cost ~55 MiB of memory, which the long-running agent must not carry: the conversion
runs in a short-lived child (``python -m agent.audit.site_words``, names on stdin as JSON, stems on stdout,
20 s timeout), and its result is kept in the state directory keyed by the names (stems of public place names,
no secret). When pypinyin is missing or the child fails, ASCII names are still used and the reason is returned
for the scan report.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from agent.compat import isascii
from agent.digest import sha256
from agent.state import write_private_json

__all__ = ["site_stems", "stems_for"]

MAX_NAMES = 16
MAX_NAME_CHARS = 32
_TIMEOUT = 20.0
_CACHE = "site-words.json"
_CJK = re.compile(r"[\u3400-\u9fff]")
# Administrative suffixes people leave out: 城关镇 -> 城关, 南湖街道办事处 -> 南湖. Longest first.
_SUFFIXES = ("街道办事处", "人民政府", "办事处", "管委会", "街道", "社区", "政府", "乡", "镇", "村", "县", "区", "市")


def _ascii_stems(name: str) -> list[str]:
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", name.lower()) if p]
    joined = "".join(parts)
    return [s for s in dict.fromkeys([joined, *parts]) if len(s) >= 2 and not s.isdigit()]


def stems_for(names: Sequence[str]) -> list[str]:
    """In the child: every name's stems (needs pypinyin for Chinese names)."""
    from pypinyin import Style, lazy_pinyin

    out: list[str] = []
    for name in names:
        name = name.strip()[:MAX_NAME_CHARS]
        if not _CJK.search(name):
            out += _ascii_stems(name)
            continue
        cores = [name]
        for suffix in _SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix) + 1:
                cores.append(name[: -len(suffix)])
                break
        for core in cores:
            hanzi = "".join(_CJK.findall(core))
            syllables = [s for s in lazy_pinyin(hanzi, errors="ignore") if isascii(s) and s.isalpha()]
            initials = [s for s in lazy_pinyin(hanzi, style=Style.FIRST_LETTER, errors="ignore") if s.isalpha()]
            out += ["".join(syllables).lower(), "".join(initials).lower()]
    return [s for s in dict.fromkeys(out) if len(s) >= 2]


def _clean(names: Sequence[str]) -> list[str]:
    return [n.strip()[:MAX_NAME_CHARS] for n in list(dict.fromkeys(n for n in names if n and n.strip()))[:MAX_NAMES]]


def site_stems(names: Sequence[str], state_dir: Optional[Path]) -> tuple[list[str], Optional[str]]:
    """(stems, why some names could not be converted or None)."""
    wanted = _clean(names)
    if not wanted:
        return [], None
    ascii_only = [n for n in wanted if not _CJK.search(n)]
    if len(ascii_only) == len(wanted):
        return [s for n in wanted for s in _ascii_stems(n)], None
    digest = sha256(json.dumps(wanted, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]
    cache = state_dir / _CACHE if state_dir is not None else None
    if cache is not None:
        try:
            saved = json.loads(cache.read_text(encoding="utf-8"))
            if saved.get("names") == digest and isinstance(saved.get("stems"), list):
                return [str(s) for s in saved["stems"]][:256], None
        except (OSError, ValueError, AttributeError):
            pass
    fallback = list(dict.fromkeys(s for n in ascii_only for s in _ascii_stems(n)))
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "PYTHONPATH")}
    try:
        proc = subprocess.run([sys.executable, "-m", "agent.audit.site_words"], input=json.dumps(wanted),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                              timeout=_TIMEOUT, env=env,
                              cwd=str(Path(__file__).resolve().parents[2]))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return fallback, f"站点中文名称未能转换为拼音 (Pinyin conversion failed: {type(exc).__name__})"
    if proc.returncode != 0:
        missing = "No module named 'pypinyin'" in proc.stderr
        why = "未安装 pypinyin (not installed)" if missing else f"exit {proc.returncode}"
        return fallback, f"站点中文名称未能转换为拼音, 仅使用 ASCII 名称 (Pinyin conversion unavailable: {why})"
    try:
        stems = [str(s) for s in json.loads(proc.stdout)][:256]
    except ValueError:
        return fallback, "站点中文名称未能转换为拼音 (the converter's answer was not JSON)"
    if cache is not None:
        try:
            write_private_json(cache, {"names": digest, "stems": stems})
        except OSError:
            pass
    return stems, None


def _main() -> int:
    names = json.loads(sys.stdin.read(64 * 1024))
    if not isinstance(names, list):
        return 2
    print(json.dumps(stems_for(_clean([str(n) for n in names]))))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
