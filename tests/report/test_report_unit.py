"""The shipped report unit and timer: the whole report run (charts, PDF, fonts) stays inside the unit's
system-call filter (traced with strace), and the timer's calendar is valid and weekly."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.test_configs import _unit_allowed_syscalls
from tests.report.conftest import Week

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "deploy" / "systemd"


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or shutil.which("strace") is None, reason="needs systemd-analyze and strace"
)
def test_a_report_run_calls_only_what_the_unit_allows(week: Week, tmp_path: Path) -> None:
    traced = subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-o",
            str(tmp_path / "trace"),
            sys.executable,
            "-m",
            "report",
            "generate",
            "--prometheus",
            week.url,
            *week.args,
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MPLCONFIGDIR": str(tmp_path / "mpl")},
    )
    assert traced.returncode == 0, traced.stderr[-2000:]
    used = {m.group(1) for m in re.finditer(r"^\d+\s+(\w+)\(", (tmp_path / "trace").read_text(), re.M)}
    assert {"openat", "write"} <= used  # the trace is real
    allowed = _unit_allowed_syscalls(SYSTEMD / "shaobing-report.service")
    assert used <= allowed, f"the unit's SystemCallFilter forbids {sorted(used - allowed)}"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_timer_runs_weekly_on_monday_morning() -> None:
    timer = configparser.ConfigParser(strict=False, interpolation=None)
    timer.read(SYSTEMD / "shaobing-report.timer", encoding="utf-8")
    calendar = timer["Timer"]["OnCalendar"]
    out = subprocess.run(
        ["systemd-analyze", "calendar", "--iterations=2", calendar],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    runs = re.findall(r"(?:Next elapse|Iter\. #2):\s+(\w{3}) (\d{4}-\d\d-\d\d) 07:00:00", out)
    assert [day for day, _ in runs] == ["Mon", "Mon"], out
    assert timer["Timer"]["Persistent"] == "true"  # a centre that was off on Monday catches up
