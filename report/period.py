"""The report's period (--last 7d, or --from/--to) and how times are shown: Asia/Shanghai, always."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from report.prom import ReportError

__all__ = ["Period", "TZ", "parse_duration", "parse_period", "local", "fmt_date", "fmt_time", "fmt_duration"]

TZ = ZoneInfo("Asia/Shanghai")
_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class Period:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def label(self) -> str:
        end = local(self.end)
        # A period ending at midnight is shown as ending the day before (7 days: Mon-Sun, not Mon-Mon).
        shown_end = end - dt.timedelta(seconds=1) if (end.hour, end.minute, end.second) == (0, 0, 0) else end
        fmt = "%Y-%m-%d" if shown_end.date() != end.date() else "%Y-%m-%d %H:%M"
        return f"{local(self.start).strftime('%Y-%m-%d %H:%M')} 至 {shown_end.strftime(fmt)}"


def parse_duration(text: str) -> int:
    match = _DURATION.match(text.strip())
    if not match:
        raise ReportError(f"bad duration {text!r}: use a number and m, h, d or w (e.g. 7d)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _parse_time(text: str, what: str) -> float:
    raw = text.strip()
    try:
        parsed = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise ReportError(
            f"bad {what} time {text!r}: use ISO 8601, e.g. 2026-11-23 or 2026-11-23T08:00+08:00"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=TZ)
    return parsed.timestamp()


def parse_period(last: str | None, start: str | None, end: str | None, now: float) -> Period:
    """--from/--to (local dates mean Asia/Shanghai midnight), or --last D ending at the last local midnight
    (a weekly report covers whole days), or at --to when given."""
    if last and start:
        raise ReportError("give either --last or --from/--to, not both")
    if start:
        begin = _parse_time(start, "--from")
        finish = _parse_time(end, "--to") if end else now
    else:
        length = parse_duration(last or "7d")
        if end:
            finish = _parse_time(end, "--to")
        else:
            today = dt.datetime.fromtimestamp(now, TZ).replace(hour=0, minute=0, second=0, microsecond=0)
            finish = today.timestamp()
        begin = finish - length
    if finish <= begin:
        raise ReportError("the period is empty: --to must be after --from")
    if finish > now + 60:
        raise ReportError("the period ends in the future")
    return Period(begin, finish)


def local(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, TZ)


def fmt_time(t: float) -> str:
    return local(t).strftime("%m-%d %H:%M")


def fmt_date(t: float) -> str:
    return local(t).strftime("%Y-%m-%d")


def fmt_duration(seconds: float) -> str:
    minutes = int(round(seconds / 60))
    if minutes < 60:
        return f"{minutes} 分钟"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} 小时 {minutes} 分" if minutes else f"{hours} 小时"
    days, hours = divmod(hours, 24)
    return f"{days} 天 {hours} 小时" if hours else f"{days} 天"
