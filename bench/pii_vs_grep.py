"""Benchmark: the personal-data scan beside `grep -rP` on the same generated tree, in one run.

The tree (``--size-mb``, default 2048) mixes what a township web root holds: HTML pages, CSV and JSON exports,
SQL dumps, logs and a few .xlsx files, ~1 MB each, with valid resident IDs, mobiles and card numbers planted in
some of them. Measured: the scan's first run (every file read) and an unchanged rerun (nothing read), wall time,
CPU, MB/s and files/s; and GNU grep with one Perl regex for the same three shapes (no validation: grep cannot
check a digit or a date), counting matching lines. Nothing leaves the machine; the tree is deleted afterwards.

    .venv/bin/python bench/pii_vs_grep.py [--size-mb 2048]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.pii.locations import Location  # noqa: E402
from agent.pii.scan import Limits, PiiState, scan_locations  # noqa: E402

GREP_PATTERN = r"(?<![0-9])([1-9][0-9]{16}[0-9Xx]|1[3-9][0-9]{9}|62[0-9]{14,17})(?![0-9])"
RNG = random.Random(7)
WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]


def resident_id() -> str:
    born = dt.date(1950, 1, 1) + dt.timedelta(days=RNG.randrange(25000))
    body = f"{RNG.choice(['110105', '320102', '440305'])}{born:%Y%m%d}{RNG.randrange(1000):03d}"
    check = (12 - sum(int(d) * w for d, w in zip(body, WEIGHTS)) % 11) % 11
    return body + ("X" if check == 10 else str(check))


def filler(n: int) -> str:
    words = ["乡镇", "政务", "公开", "通知", "会议", "工作", "项目", "report", "status", "2026", "办理", "服务"]
    return " ".join(RNG.choice(words) for _ in range(n))


def make_tree(root: Path, size_mb: int) -> tuple[int, int]:
    total = files = 0
    target = size_mb << 20
    kinds = ["html", "csv", "json", "sql", "log", "txt"]
    while total < target:
        kind = kinds[files % len(kinds)]
        folder = root / f"d{files % 40:02d}"
        folder.mkdir(exist_ok=True)
        lines = []
        planted = files % 10 == 0
        size = 0
        while size < (1 << 20):
            line = filler(40)
            if planted and RNG.random() < 0.05:
                line += f",{resident_id()},1{RNG.choice('3589')}{RNG.randrange(10**9):09d}"
            lines.append(line)
            size += len(line.encode()) + 1
        text = "\n".join(lines)
        if kind == "html":
            text = f"<html><body><p>{text}</p></body></html>"
        path = folder / f"f{files:05d}.{kind}"
        path.write_text(text, encoding="utf-8")
        total += path.stat().st_size
        files += 1
        if files % 200 == 0:
            x = folder / f"sheet{files:05d}.xlsx"
            with zipfile.ZipFile(x, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr("xl/sharedStrings.xml", "<sst>" + "".join(f"<si><t>{resident_id()}</t></si>"
                                                                     for _ in range(200)) + "</sst>")
            total += x.stat().st_size
            files += 1
    return total, files


def run_scan(root: Path, state_dir: Path) -> dict[str, float]:
    state = PiiState(state_dir)
    limits = Limits(min_records=5, max_file_bytes=64 << 20, max_files=10_000_000, cpu_budget=36000.0)
    cpu0, wall0 = time.process_time(), time.monotonic()
    result = scan_locations([Location("web", str(root), "bench")], state, limits)
    return {"wall": time.monotonic() - wall0, "cpu": time.process_time() - cpu0, "read": result.read,
            "cached": result.cached, "bytes": result.bytes_read,
            "flagged": sum(result.files.values())}


def run_grep(root: Path) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = time.monotonic()
    out = subprocess.run(["grep", "-rPc", GREP_PATTERN, str(root)], capture_output=True, text=True, timeout=3600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    files_with = sum(1 for line in out.stdout.splitlines() if not line.endswith(":0"))
    return {"wall": time.monotonic() - wall0,
            "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "files_with": files_with}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=2048)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-pii-"))
    try:
        tree = work / "www"
        tree.mkdir()
        t0 = time.monotonic()
        size, files = make_tree(tree, args.size_mb)
        made = time.monotonic() - t0
        subprocess.run(["sync"], check=False)
        grep = run_grep(tree)  # also warms the page cache for both
        first = run_scan(tree, work / "state")
        rerun = run_scan(tree, work / "state")
        grep2 = run_grep(tree)
        mb = size / (1 << 20)
        print(f"\ntree: {mb:.0f} MB in {files} files (made in {made:.0f} s); {os.cpu_count()} cores; page cache warm\n")
        print("| run | wall s | CPU s | MB/s | files/s | files flagged |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, r, flagged in (("shaobing pii, first run", first, first["flagged"]),
                                 ("shaobing pii, unchanged rerun", rerun, rerun["flagged"])):
            print(f"| {name} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['bytes'] / (1 << 20) / r['wall']:.1f} "
                  f"(read {r['bytes'] / (1 << 20):.0f} MB) | {files / r['wall']:.0f} | {flagged:.0f} |")
        for name, g in (("grep -rPc (no validation)", grep), ("grep -rPc, second run", grep2)):
            print(f"| {name} | {g['wall']:.1f} | {g['cpu']:.1f} | {mb / g['wall']:.1f} | {files / g['wall']:.0f} | "
                  f"{g['files_with']:.0f} with a match |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
