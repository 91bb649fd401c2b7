"""``python -m dashboards [--output DIR] [--check]``: (re)generate the committed dashboard JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dashboards.render import OUTPUT_DIR, build_all, write_all
from dashboards.thresholds import ThresholdsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards", description="生成哨兵 Grafana 仪表盘 JSON")
    parser.add_argument("--output", type=Path, default=OUTPUT_DIR, help=f"output directory (default {OUTPUT_DIR})")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file in --output is missing or out of date"
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = [
                name
                for name, text in build_all().items()
                if not (args.output / name).is_file() or (args.output / name).read_text(encoding="utf-8") != text
            ]
            for name in stale:
                print(f"out of date: {args.output / name} (run: python -m dashboards)", file=sys.stderr)
            return 1 if stale else 0
        for path in write_all(args.output):
            print(path)
    except ThresholdsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
