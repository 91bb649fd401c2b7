"""The dictionary check: a low-priority child process under a CPU budget, with a keyed result cache.

Cost control. Hashing is done in a child process (``python -m agent.audit.runner``) that lowers itself to
nice 19 and the idle I/O class before its first hash, counts its own CPU time and stops at the per-run
budget; the accounts it did not finish are "pending" and resume from the same candidate next run. Each
method has a cap on candidates (a yescrypt hash costs ~10x a sha512crypt one).

Privacy. The cache maps keyed BLAKE2b(host secret, account name + stored hash + dictionary version + cap)
to a verdict ("weak", "empty", "ok", "unsupported", or "pending" with the next candidate index). The state
file holds no account name, hash, salt or candidate, is 0600, and an unchanged hash is never hashed again.
A position in the list is kept only while an account is *not* found weak (where to resume, or how far "ok"
got): for "weak" and "empty" it is dropped, so the file and /etc/passwd together cannot say which dictionary
entry an account's password is (files written before this rule are rewritten without it when loaded). The
child reports only verdicts and counts; what matched is never written anywhere.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from agent.compat import Literal
from agent.digest import keyed
from agent.state import host_key, write_private_json

__all__ = ["Verdict", "WorkItem", "ChildResult", "ResultCache", "run_child", "lower_priority", "DEFAULT_CAPS"]

Verdict = Literal["weak", "empty", "ok", "unsupported", "pending"]
FINAL_VERDICTS = frozenset({"weak", "empty", "ok", "unsupported"})

# Candidates tried per account, by method: slow methods get fewer (yescrypt ~40-50/s per core here, so 500 is
# ~11 CPU seconds an account; sha512crypt ~500/s, 5,000 ~10 s). Sized so a township host's daily run finishes
# within the default 60 s budget (the stale-audit alert expects that); max_candidates goes deeper into the
# ranked corpus, and shaobing_password_audit_coverage_ratio says how deep it went.
DEFAULT_CAPS: dict[str, int] = {
    "yescrypt": 500,
    "gost-yescrypt": 500,
    "scrypt": 500,
    "bcrypt": 500,
    "sha512crypt": 5000,
    "sha256crypt": 5000,
}
_STATE_FORMAT = 1
PAD_BLOCK = 512
# Verdicts whose candidate position would reveal the password: it is never stored or passed on for them.
_POSITION_SECRET = frozenset({"weak", "empty", "unsupported"})
_IOPRIO_SET = {"x86_64": 251, "aarch64": 30, "i686": 289, "armv7l": 314, "ppc64le": 273, "s390x": 282}
_IOPRIO_CLASS_IDLE = 3


@dataclass
class WorkItem:
    key: str
    stored: str = field(repr=False)
    candidates: list[str] = field(repr=False)
    start: int
    cap: int


@dataclass
class ChildResult:
    verdicts: dict[str, tuple[Verdict, int]]  # key -> (verdict, next candidate index)
    hashes: int
    budget_exhausted: bool
    error: Optional[str] = None


class ResultCache:
    """The 0600 state file of verdicts under keyed-digest keys, and the host secret that keys them."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.path = state_dir / "password_audit.json"
        self.key_path = state_dir / "password_audit.key"
        self._secret: Optional[bytes] = None

    def _ensure_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def secret(self) -> bytes:
        if self._secret is None:
            self._ensure_dir()
            self._secret = host_key(self.key_path)
        return self._secret

    def key(self, user: str, stored: str, version: str, cap: int) -> str:
        msg = "\x00".join(("v2", user, stored, version, str(cap))).encode("utf-8", "surrogateescape")
        return keyed(self.secret()[:64], msg).hex()

    def load(self) -> dict[str, tuple[Verdict, int]]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # missing or damaged: recomputing is safe, only slower
        if not isinstance(raw, dict) or raw.get("format") != _STATE_FORMAT:
            return {}
        out: dict[str, tuple[Verdict, int]] = {}
        leaked = False
        for key, val in (raw.get("entries") or {}).items():
            if isinstance(val, dict) and val.get("v") in FINAL_VERDICTS | {"pending"}:
                position = int(val.get("n", 0))
                if val["v"] in _POSITION_SECRET and position:
                    position, leaked = 0, True
                out[str(key)] = (val["v"], position)
        if leaked:
            self.save(out)  # an older file recorded where a weak password sits in the list: forget it now
        return out

    def save(self, entries: Mapping[str, tuple[Verdict, int]]) -> None:
        self._ensure_dir()
        doc = {
            "format": _STATE_FORMAT,
            "entries": {
                k: ({"v": v} if v in _POSITION_SECRET else {"v": v, "n": n}) for k, (v, n) in sorted(entries.items())
            },
        }
        write_private_json(self.path, doc, separators=(",", ":"))


def no_core_dumps(undumpable: bool = False) -> None:
    """No core file for this process (RLIMIT_CORE 0); with ``undumpable``, also PR_SET_DUMPABLE 0, which keeps
    other processes of the same user from ptrace or /proc/<pid>/mem. The hashing child holds hashes and
    candidates in memory: neither may end up on disk or in another process. Best effort off Linux."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
    if undumpable and sys.platform.startswith("linux"):
        import ctypes

        pr_set_dumpable = 4
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_dumpable, 0, 0, 0, 0)


def lower_priority() -> None:
    """Nice 19 and the idle I/O class for the calling process (best effort: a failure only costs speed)."""
    try:
        os.nice(19 - os.nice(0))
    except OSError:
        pass
    nr = _IOPRIO_SET.get(platform.machine())
    if nr is not None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        # ioprio_set(IOPRIO_WHO_PROCESS, 0 = this process, IOPRIO_PRIO_VALUE(IDLE, 0))
        if libc.syscall(nr, 1, 0, _IOPRIO_CLASS_IDLE << 13) == 0:
            return
    try:
        subprocess.run(
            ["ionice", "-c3", "-p", str(os.getpid())],
            timeout=5,
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        pass


def _child_main() -> int:
    """The child: read the job on stdin, write one JSON line per verdict, then a summary line."""
    try:
        no_core_dumps(undumpable=True)  # before the job (hashes, candidates) is read
        lower_priority()
        from agent.crypt import load

        job = json.loads(sys.stdin.read())
        lib = load()
        budget = float(job["budget"])
        deadline = time.monotonic() + float(job["wall"])
        cpu0 = time.process_time()
        hashes = 0
        exhausted = False
        for raw in job["items"]:
            item = WorkItem(raw["key"], raw["stored"], raw["candidates"], int(raw["start"]), int(raw["cap"]))
            raw.clear()
            verdict: Verdict = "pending"
            idx = item.start
            limit = min(item.cap, len(item.candidates))
            if exhausted:
                break
            while True:
                if idx >= limit:
                    verdict = "ok"
                    break
                if time.process_time() - cpu0 >= budget or time.monotonic() >= deadline:
                    exhausted = True
                    break
                match = lib.verify(item.candidates[idx], item.stored)
                hashes += 1
                if match is None:
                    verdict = "unsupported"
                    break
                if match:
                    verdict = "empty" if item.candidates[idx] == "" else "weak"
                    # Equal work within a block: hash on to the end of this block of PAD_BLOCK candidates (or the
                    # cap), so the count of hashes a run reports (a metric) says at most which block matched. The
                    # CPU budget does not cut the padding short: a cut would make the hashes summed over the runs
                    # say how far past the match it got, and a padding resumed later would need the match's
                    # position kept. A run that finds a weak password may so pass its budget by one block; only
                    # the wall deadline (the hard limit) stops it.
                    block_end = min(limit, (idx // PAD_BLOCK + 1) * PAD_BLOCK)
                    for pad in item.candidates[idx + 1 : block_end]:
                        if time.monotonic() >= deadline:
                            exhausted = True
                            break
                        lib.verify(pad, item.stored)
                        hashes += 1
                    break
                idx += 1
            position = 0 if verdict in _POSITION_SECRET else idx
            sys.stdout.write(json.dumps({"key": item.key, "v": verdict, "n": position}) + "\n")
            sys.stdout.flush()
        sys.stdout.write(json.dumps({"done": True, "hashes": hashes, "exhausted": exhausted}) + "\n")
        sys.stdout.flush()
        return 0
    except Exception as exc:  # noqa: BLE001 - the message could quote input; print only the type
        sys.stderr.write(f"password audit child failed: {type(exc).__name__}\n")
        return 1


def run_child(items: Sequence[WorkItem], budget: float, wall: float) -> ChildResult:
    """Run the hashing child over ``items``; verdicts it finished are kept even if it has to be killed."""
    starts = {i.key: i.start for i in items}
    if not items:
        return ChildResult({}, 0, False)
    job: dict[str, Any] = {
        "budget": budget,
        "wall": wall,
        "items": [
            # Only what this item may still try: the job stays small however large the corpus.
            {"key": i.key, "stored": i.stored, "candidates": i.candidates[i.start : i.cap], "start": 0,
             "cap": max(i.cap - i.start, 0)}
            for i in items
        ],
    }
    env = dict(os.environ)
    pkg_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.audit.runner"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
        universal_newlines=True,
    )
    error: Optional[str] = None
    try:
        out, err = proc.communicate(json.dumps(job), timeout=wall + 10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        error = f"the password audit child did not stop within {wall + 10:g}s and was killed"
    verdicts: dict[str, tuple[Verdict, int]] = {}
    hashes = 0
    exhausted = error is not None
    done = False
    for line in out.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("done"):
            done = True
            hashes = int(rec.get("hashes", 0))
            exhausted = exhausted or bool(rec.get("exhausted"))
        elif isinstance(rec.get("key"), str):
            offset = starts.get(rec["key"], 0)
            position = int(rec["n"])
            verdicts[rec["key"]] = (rec["v"], position + offset if position or rec["v"] == "pending" else 0)
    if error is None and not done:
        if proc.returncode == -signal.SIGSYS:
            # A seccomp filter (systemd SystemCallFilter=~@resources) kills the child when it lowers its own
            # priority. Running the audit at normal priority instead would break its promise to the host.
            error = (
                "the password audit child was killed by SIGSYS: the service's system call filter forbids "
                "setpriority/ioprio_set; allow them (systemd: SystemCallFilter=setpriority ioprio_set)"
            )
        else:
            error = (err.strip().splitlines() or [f"exit status {proc.returncode}"])[-1][:200]
    return ChildResult(verdicts, hashes, exhausted, error)


if __name__ == "__main__":
    sys.exit(_child_main())
