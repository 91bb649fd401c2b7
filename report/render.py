"""The report as HTML (self-contained: CSS inline, charts as SVG data URIs) and as PDF (WeasyPrint).

WeasyPrint for the PDF: a pure-Python renderer (on Debian's Pango) that implements CSS paged media — A4
pages, running headers and `counter(page)` page numbers — and embeds subsetted fonts, with no browser
process on the centre's server. The HTML is the same document, readable offline in any browser.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from report.charts import FONT_FAMILY, Charts
from report.model import Host, Report
from report.period import fmt_date, fmt_duration, fmt_time, local
from report.prom import ReportError
from report.verdict import CLASS_NAMES, REASON_NAMES, RED, YELLOW

__all__ = ["render_html", "write_pdf", "summary"]

TEMPLATES = Path(__file__).with_name("templates")
LIGHTS = {"green": ("绿", "正常"), "yellow": ("黄", "需关注"), "red": ("红", "需立即处理"), "grey": ("灰", "无数据")}


def _pct(value: float | None, digits: int = 2) -> str:
    return "无数据" if value is None or math.isnan(value) else f"{value * 100:.{digits}f}%"


def _change(now: int | None, before: int | None) -> str:
    if now is None:
        return "未知"
    if before is None:
        return "（上期无数据）"
    diff = now - before
    return "持平" if diff == 0 else f"{'+' if diff > 0 else '−'}{abs(diff)}"


# Longest tables in the body (leadership reads the worst first; the .json sidecar has everything).
LIMIT = 50
TODO_LIMIT = 40


def _more(items: Sequence[Any], limit: int, what: str) -> Markup:
    if len(items) <= limit:
        return Markup("")
    return Markup('<p class="note">另有 {} {}未列出。</p>').format(len(items) - limit, what)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters.update(pct=_pct, dur=fmt_duration, time=fmt_time, change=_change, date=fmt_date)
    env.globals.update(
        LIMIT=LIMIT,
        TODO_LIMIT=TODO_LIMIT,
        more=_more,
        LIGHTS=LIGHTS,
        REASON_NAMES=REASON_NAMES,
        CLASS_NAMES=CLASS_NAMES,
        RED=RED,
        YELLOW=YELLOW,
    )
    return env


def summary(report: Report) -> dict[str, Any]:
    """The headline numbers (the summary page, IM messages and the JSON sidecar use the same ones)."""
    hosts = report.hosts
    covered = [h for h in hosts if h.availability.uptime_ratio is not None]
    down_now = [h for h in hosts if h.availability.up_now is False]
    weak_now = [h.now.weak_total for h in hosts if h.now.weak_total is not None]
    weak_before = [h.before.weak_total for h in hosts if h.before.weak_total is not None]
    exposed_now = [len(h.now.exposed) for h in hosts if h.now.exposed is not None]
    exposed_before = [len(h.before.exposed) for h in hosts if h.before.exposed is not None]
    total_covered = sum(h.availability.covered_seconds for h in covered)
    total_down = sum(h.availability.down_seconds for h in covered)
    return {
        "hosts": len(hosts),
        "hosts_with_data": len(covered),
        "hosts_down_now": len(down_now),
        "availability": (1 - total_down / total_covered) if total_covered else None,
        "outages": sum(len(h.availability.outages) for h in hosts),
        "hosts_missing_data": sum(1 for h in hosts if h.availability.missing_seconds >= 3600),
        "weak_accounts": sum(weak_now) if weak_now else None,
        "weak_accounts_before": sum(weak_before) if weak_before else None,
        "weak_hosts_unknown": len(hosts) - len(weak_now),
        "exposed_services": sum(exposed_now) if exposed_now else None,
        "exposed_services_before": sum(exposed_before) if exposed_before else None,
        "os_eol_hosts": sum(1 for h in hosts if any(e.kind == "os" for e in h.eol_past(report.end))),
        "updates_hosts": sum(1 for h in hosts if h.now.security_updates),
        "alerts": report.alerts.total(),
        "alerts_critical": report.alerts.total("critical"),
        "todos": len(report.todos),
        "todos_high": sum(1 for t in report.todos if t.risk >= RED),
        "verdicts": dict(Counter(t.verdict for t in report.townships)),
    }


def _weak_table(hosts: list[Host]) -> list[dict[str, Any]]:
    rows: dict[tuple[str, str], list[int]] = {}
    for h in hosts:
        for attr, col in (("now", 0), ("before", 1)):
            for key, count in (getattr(h, attr).weak or {}).items():
                rows.setdefault(key, [0, 0])[col] += count
    return [
        {"reason": REASON_NAMES.get(r, r), "class": CLASS_NAMES.get(c, c), "now": n, "before": b}
        for (r, c), (n, b) in sorted(rows.items(), key=lambda kv: -kv[1][0])
    ]


def render_html(report: Report, charts: Charts | None = None) -> str:
    charts = charts or Charts()
    hosts = report.hosts
    period = report.end - report.start
    pictures = {
        "availability": charts.availability(hosts, period),
        "disks": charts.disks(hosts),
        "alerts": charts.alerts(report.alerts),
        "townships": {t.name: charts.resources(t) for t in report.townships},
    }
    exposed = Counter(f"{s}（{p}）" for h in hosts for s, p in (h.now.exposed or []))
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            r=report,
            s=summary(report),
            hosts=hosts,
            pictures=pictures,
            font=FONT_FAMILY,
            period_label=_period_label(report),
            generated=local(report.generated_at).strftime("%Y-%m-%d %H:%M"),
            weak_rows=_weak_table(hosts),
            exposed=sorted(exposed.items(), key=lambda kv: -kv[1]),
            troubled=[h for h in hosts if h.availability.down_seconds > 0 or h.availability.missing_seconds >= 3600],
            eol_hosts=[h for h in hosts if h.eol_past(report.end)],
            update_hosts=[h for h in hosts if h.now.security_updates or h.reboot_since is not None or h.outdated],
            busy=[h for h in hosts if _busy(h)],
            disks=sorted(
                (
                    (h, fs)
                    for h in hosts
                    for fs in h.filesystems
                    if fs.used_ratio >= 0.8 or (fs.days_to_full or 1e9) <= 30
                ),
                key=lambda hf: (hf[1].days_to_full if hf[1].days_to_full is not None else 1e9, -hf[1].used_ratio),
            ),
            baseline=[h for h in hosts if h.now.baseline_ratio is not None],
        )
    )


def _period_label(report: Report) -> str:
    from report.period import Period

    return Period(report.start, report.end).label


def _busy(h: Host) -> bool:
    cpu_max = h.cpu_stats[1]
    mem_max = h.memory_stats[1]
    return (cpu_max is not None and cpu_max >= 0.8) or (mem_max is not None and mem_max >= 0.9)


def write_pdf(html: str, path: Path) -> None:
    try:
        import weasyprint
    except ImportError:  # pragma: no cover - the report extra installs it
        raise ReportError("PDF needs WeasyPrint: pip install '.[report]'") from None
    weasyprint.HTML(string=html, base_url=str(TEMPLATES)).write_pdf(str(path))
