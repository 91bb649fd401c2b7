#!/usr/bin/env python3
"""The password audit against John the Ripper on the same shadow file and wordlist, one core each.

    sudo .venv/bin/python bench/audit_vs_john.py [--words N] [--accounts 2] [--core 0]

The wordlist is the shipped ranked corpus (agent.audit.dictionary.shipped_candidates: the hand-ranked list, then
the generated tiers, ~43,000 candidates), cut per method at the audit's default cap — the first 500 for yescrypt,
5,000 for sha512crypt, what one account gets per run — or at --words for both.
For yescrypt and sha512crypt: wall time, CPU time and guesses per CPU second of the audit's hashing child
(agent.audit.runner, libcrypt through ctypes, nice 19 / idle I/O) and of `john --format=crypt` in wordlist
mode, both pinned to the same core with sched_setaffinity/taskset, one after the other. Then the time of
a full audit run over the whole file, and of a second run over the unchanged file (served by the cache).
Every password is random and absent from the wordlist, so both tools try every candidate.
Targets: audit throughput within 10 % of john's; repeat run >= 100x faster than the first.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.audit.dictionary import Dictionary, shipped_candidates  # noqa: E402
from agent.audit.password_audit import AuditPaths, run_password_audit  # noqa: E402
from agent.audit.runner import DEFAULT_CAPS, ResultCache, WorkItem, run_child  # noqa: E402
from agent.crypt import load  # noqa: E402

METHODS = {"yescrypt": "$y$", "sha512crypt": "$6$"}


class FixedWordlist(Dictionary):
    """The bench's wordlist as every account's candidate list (no per-account variants), for a like-for-like run."""

    def candidates(self, user: str) -> list[str]:
        return list(self.shipped)


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_john(tmp: Path, passwd: Path, words: Path, users: list[str], core: int) -> tuple[float, float]:
    env = dict(os.environ, HOME=str(tmp / "johnhome"), OMP_NUM_THREADS="1")
    (tmp / "johnhome").mkdir(exist_ok=True)
    argv = ["taskset", "-c", str(core), "john", "--format=crypt", f"--wordlist={words}",
            f"--users={','.join(users)}", f"--session={tmp / 'johnhome' / users[0]}", str(passwd)]  # fmt: skip
    cpu0, t0 = children_cpu(), time.perf_counter()
    res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800)
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if res.returncode != 0 or "Session completed" not in res.stdout + res.stderr:
        raise SystemExit(f"john failed: {res.stdout}\n{res.stderr}")
    return wall, cpu


def run_audit_engine(items: list[WorkItem]) -> tuple[float, float, int]:
    cpu0, t0 = children_cpu(), time.perf_counter()
    res = run_child(items, budget=3600.0, wall=3600.0)
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if res.error:
        raise SystemExit(f"audit child failed: {res.error}")
    return wall, cpu, res.hashes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--words", type=int, default=0, help="wordlist size for both methods (default: the audit's caps)")
    ap.add_argument("--accounts", type=int, default=2, help="accounts per method (default 2)")
    ap.add_argument("--core", type=int, default=0, help="CPU core both tools are pinned to")
    args = ap.parse_args()
    if shutil.which("john") is None:
        raise SystemExit("john is not installed (apt-get install john)")
    lib = load()
    # Pinning this process pins the audit child it spawns (affinity is inherited).
    os.sched_setaffinity(0, {args.core})
    tmp = Path(tempfile.mkdtemp(prefix="shaobing-bench-"))
    try:
        corpus = shipped_candidates(time.localtime().tm_year)
        # john reads a wordlist line by line: candidates with a newline or NUL cannot be given to it alike.
        corpus = [w for w in corpus if w and "\n" not in w and "\r" not in w and "\x00" not in w]
        sizes = {m: args.words or DEFAULT_CAPS[m] for m in METHODS}
        for method, size in sizes.items():
            (tmp / f"words-{method}.txt").write_text("\n".join(corpus[:size]) + "\n", encoding="utf-8")
        lines, shadow, stored, users_by_method = [], [], {}, {}
        uid = 1000
        for method, prefix in METHODS.items():
            users_by_method[method] = []
            for i in range(args.accounts):
                name = f"{method[:3]}{i}"
                h = lib.crypt("Zq" + secrets.token_urlsafe(16), lib.gensalt(prefix))
                assert h is not None
                stored[name] = h
                users_by_method[method].append(name)
                lines.append(f"{name}:{h}:{uid}:100::/home/{name}:/bin/bash")
                shadow.append(f"{name}:{h}:20000:0:99999:7:::")
                uid += 1
        # john reads the unshadowed passwd format; the audit reads passwd + shadow. Same hashes.
        (tmp / "john.passwd").write_text("\n".join(lines) + "\n")
        (tmp / "passwd").write_text(
            "".join(f"{n}:x:{1000 + k}:100::/home/{n}:/bin/bash\n" for k, n in enumerate(stored))
        )
        (tmp / "shadow").write_text("\n".join(shadow) + "\n")
        print(
            f"libcrypt: {lib.path}; corpus {len(corpus)} candidates, first {sizes} tried; "
            f"{args.accounts} accounts per method; core {args.core}"
        )
        header = ("method", "tool", "guesses", "wall s", "cpu s", "guesses/cpu-s", "guesses/wall-s")
        print("{:<12} {:<6} {:>8} {:>8} {:>8} {:>14} {:>15}".format(*header))
        ratios = {}
        for method, names in users_by_method.items():
            words = corpus[: sizes[method]]
            guesses = len(words) * len(names)
            jw, jc = run_john(tmp, tmp / "john.passwd", tmp / f"words-{method}.txt", names, args.core)
            items = [WorkItem(f"bench-{n}", stored[n], list(words), 0, len(words)) for n in names]
            aw, ac, hashes = run_audit_engine(items)
            assert hashes == guesses, (hashes, guesses)
            for tool, wall, cpu in (("john", jw, jc), ("audit", aw, ac)):
                rates = f"{guesses / cpu:>14.1f} {guesses / wall:>15.1f}"
                print(f"{method:<12} {tool:<6} {guesses:>8} {wall:>8.2f} {cpu:>8.2f} {rates}")
            ratios[method] = (guesses / ac) / (guesses / jc)
        cache = ResultCache(tmp / "state")
        words = corpus[: min(sizes.values())]
        dictionary = FixedWordlist(tuple(words), (), "bench", 2026)
        paths = AuditPaths(tmp / "passwd", tmp / "shadow", tmp / "group", tmp / "login.defs", tmp / "sudoers")
        kw = {"budget": 3600.0, "wall": 3600.0, "caps": {}, "default_cap": len(words)}
        t0 = time.perf_counter()
        first = run_password_audit(paths, lib, cache, dictionary, **kw)  # type: ignore[arg-type]
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        second = run_password_audit(paths, lib, cache, dictionary, **kw)  # type: ignore[arg-type]
        t_second = time.perf_counter() - t0
        print(f"full audit, first run : {t_first:8.3f} s ({first.hashes_computed} hashes)")
        print(f"full audit, second run: {t_second:8.3f} s ({second.hashes_computed} hashes, unchanged file)")
        speedup = t_first / t_second
        print(f"repeat speed-up: {speedup:.0f}x (target >= 100x)")
        for method, r in ratios.items():
            print(f"{method}: audit/john throughput per CPU second = {r:.3f} (target >= 0.90)")
        ok = speedup >= 100 and all(r >= 0.9 for r in ratios.values()) and second.hashes_computed == 0
        print("RESULT:", "targets met" if ok else "targets NOT met")
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
