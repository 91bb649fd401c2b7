"""Rendering edge cases without Prometheus: a county of 40 townships still has a one-page summary, and a host
that sent nothing but `up` (no CPU, memory or disk series, no audits) renders as 无数据/未知, never as 0."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from report.model import Alerts, Availability, Host, Report, Township
from report.render import render_html, write_pdf
from report.verdict import judge

WEEK = 7 * 86400.0


def _report(townships: list[Township]) -> Report:
    report = Report(
        "测试县巡检报告", "全县", 1_700_000_000.0, 1_700_000_000.0 + WEEK, time.time(), townships, Alerts("relay")
    )
    judge(report)
    return report


def test_forty_townships_fit_the_summary_page(tmp_path: Path) -> None:
    townships = []
    for t in range(40):
        hosts = [Host(f"h-{t:02d}-{i:02d}", f"乡镇{t + 1:02d}", Availability(WEEK, 0.0)) for i in range(25)]
        if t % 4 == 0:
            hosts[0].now.weak = {("dictionary", "human"): 1}
        townships.append(Township(f"乡镇{t + 1:02d}", hosts))
    pdf = tmp_path / "r.pdf"
    write_pdf(render_html(_report(townships)), pdf)
    first = subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(pdf), "-"], capture_output=True, text=True).stdout
    assert all(f"乡镇{t + 1:02d}" in first for t in range(40))
    assert "本周最要紧的事" in first and "1. 乡镇01 h-00-00" in first.replace("\n", " ")


def test_a_host_with_only_up_renders_as_unknown(tmp_path: Path) -> None:
    bare = Host("bare-01", "城关镇", Availability(WEEK, 0.0))
    html = render_html(_report([Township("城关镇", [bare])]))
    row = html[html.index("<td>bare-01</td>", html.index('id="hosts"')) :].split("</tr>")[0]
    cells = [c.split(">", 1)[1].split("<")[0] for c in row.split("<td")[1:]]
    # host, OS, availability, CPU, memory, fullest disk, risky accounts
    assert cells == ["bare-01", "未知", "100.00%", "无数据", "无数据", "无数据", "未知"]
