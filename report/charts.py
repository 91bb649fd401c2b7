"""Charts as SVG (matplotlib, glyphs drawn as paths so no font is needed to view them), embedded in the report.

matplotlib because it is the long-maintained standard, runs headless (Agg) without a browser or network, and
writes self-contained SVG; Chinese labels use Noto Sans CJK SC from Debian's fonts-noto-cjk.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from report.model import Alerts, Host, Township
from report.period import TZ
from report.prom import ReportError

__all__ = ["Charts", "FONT_FAMILY", "font_file"]

FONT_FAMILY = "Noto Sans CJK SC"
FONT_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
)
GREEN, YELLOW, RED, GREY, BLUE = "#2e7d32", "#f9a825", "#c62828", "#9e9e9e", "#1565c0"
SEVERITY_COLOURS = {"critical": RED, "warning": YELLOW, "info": BLUE}
SEVERITY_NAMES = {"critical": "严重", "warning": "警告", "info": "提示"}


def font_file() -> Path:
    for candidate in FONT_FILES:
        if Path(candidate).is_file():
            return Path(candidate)
    raise ReportError("no Chinese font: install Debian's fonts-noto-cjk (Noto Sans CJK SC)")


@lru_cache(maxsize=1)
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    font_manager.fontManager.addfont(str(font_file()))
    plt.rcParams.update(
        {
            "font.family": [FONT_FAMILY],
            "svg.fonttype": "path",
            "svg.hashsalt": "shaobing-report",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "font.size": 9,
        }
    )
    return plt


def _times(points: Sequence[tuple[float, float]]) -> list[dt.datetime]:
    return [dt.datetime.fromtimestamp(t, TZ) for t, _ in points]


class Charts:
    """Each method returns a data: URI of an SVG image (or '' when there is nothing to draw)."""

    def __init__(self) -> None:
        self.plt = _pyplot()
        self.count = 0

    def _finish(self, fig: Any) -> str:
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
        self.plt.close(fig)
        self.count += 1
        return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()

    def _date_axis(self, ax: Any, narrow: bool = False) -> None:
        from matplotlib import dates as mdates

        locator = mdates.AutoDateLocator(tz=TZ, minticks=3, maxticks=5 if narrow else 9)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d", tz=TZ))  # type: ignore[no-untyped-call]

    def availability(self, hosts: Sequence[Host], period_seconds: float, limit: int = 15) -> str:
        """Stacked bars per host (least available first): online, offline, no data, as shares of the period."""
        ranked = sorted(
            hosts, key=lambda h: (h.availability.covered_seconds - h.availability.down_seconds) / period_seconds
        )[:limit]
        if not ranked:
            return ""
        fig, ax = self.plt.subplots(figsize=(7.0, 0.32 * len(ranked) + 0.9))
        names = [h.instance for h in ranked][::-1]
        up = [(h.availability.covered_seconds - h.availability.down_seconds) / period_seconds * 100 for h in ranked][
            ::-1
        ]
        down = [h.availability.down_seconds / period_seconds * 100 for h in ranked][::-1]
        missing = [h.availability.missing_seconds / period_seconds * 100 for h in ranked][::-1]
        ax.barh(names, up, color=GREEN, label="在线")
        ax.barh(names, down, left=up, color=RED, label="离线")
        ax.barh(names, missing, left=[a + b for a, b in zip(up, down)], color=GREY, hatch="//", label="无数据")
        ax.set_xlim(0, 100)
        ax.set_xlabel("占本期时间 %")
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=3, fontsize=8, frameon=False)
        ax.grid(axis="y", visible=False)
        return self._finish(fig)

    def resources(self, township: Township) -> str:
        """CPU and memory: the township's hourly average, and its busiest host."""
        hosts = [h for h in township.hosts if h.cpu or h.memory]
        if not hosts:
            return ""
        fig, axes = self.plt.subplots(1, 2, figsize=(7.2, 2.3), sharey=True)
        for ax, attr, title in ((axes[0], "cpu", "CPU 使用率 %"), (axes[1], "memory", "内存使用率 %")):
            series = [getattr(h, attr) for h in hosts if getattr(h, attr)]
            if not series:
                ax.set_title(f"{title}（无数据）")
                continue
            by_time: dict[float, list[float]] = {}
            for points in series:
                for t, v in points:
                    by_time.setdefault(t, []).append(v)
            avg = sorted((t, sum(vs) / len(vs)) for t, vs in by_time.items())
            _gapped(ax, avg, color=BLUE, label="平均")
            busiest = max(hosts, key=lambda h: max((v for _, v in getattr(h, attr)), default=-1.0))
            if len(hosts) > 1 and getattr(busiest, attr):
                _gapped(
                    ax,
                    getattr(busiest, attr),
                    color=RED,
                    linestyle="--",
                    linewidth=0.9,
                    label=f"最高：{busiest.instance}",
                )
            ax.set_title(title)
            ax.set_ylim(0, 100)
            self._date_axis(ax, narrow=True)
            ax.legend(fontsize=7, loc="upper left")
        return self._finish(fig)

    def disks(self, hosts: Sequence[Host], limit: int = 8) -> str:
        """Filesystem fill over the period for the fullest or fastest-filling filesystems."""
        ranked = sorted(
            ((h, fs) for h in hosts for fs in h.filesystems if fs.points),
            key=lambda hf: (hf[1].days_to_full if hf[1].days_to_full is not None else math.inf, -hf[1].used_ratio),
        )[:limit]
        if not ranked:
            return ""
        fig, ax = self.plt.subplots(figsize=(7.2, 2.6))
        for host, fs in ranked:
            _gapped(ax, fs.points, linewidth=1.1, label=f"{host.instance} {fs.mountpoint}")
        ax.axhline(100, color=RED, linewidth=0.8)
        ax.set_ylim(0, 105)
        ax.set_title("磁盘已用 %")
        self._date_axis(ax)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        return self._finish(fig)

    def alerts(self, alerts: Alerts) -> str:
        if not alerts.by_day:
            return ""
        days = sorted(alerts.by_day)
        fig, ax = self.plt.subplots(figsize=(7.0, 2.2))
        bottom = [0] * len(days)
        for severity in ("critical", "warning", "info"):
            counts = [alerts.by_day[d].get(severity, 0) for d in days]
            if any(counts):
                ax.bar(days, counts, bottom=bottom, color=SEVERITY_COLOURS[severity], label=SEVERITY_NAMES[severity])
                bottom = [b + c for b, c in zip(bottom, counts)]
        ax.set_title("每日新告警数")
        ax.legend(fontsize=7)
        ax.grid(axis="x", visible=False)
        return self._finish(fig)


def _gapped(ax: Any, points: Sequence[tuple[float, float]], **kwargs: Any) -> None:
    """Plot a percentage series with gaps where points are missing (no data is not drawn as a line)."""
    if not points:
        return
    steps = sorted(b[0] - a[0] for a, b in zip(points, points[1:]))
    step = steps[len(steps) // 2] if steps else 0.0
    xs: list[Any] = []
    ys: list[float] = []
    previous = None
    for t, v in points:
        if previous is not None and step and t - previous > 1.5 * step:
            xs.append(dt.datetime.fromtimestamp(previous + step, TZ))
            ys.append(math.nan)
        xs.append(dt.datetime.fromtimestamp(t, TZ))
        ys.append(v * 100)
        previous = t
    ax.plot(xs, ys, **kwargs)
