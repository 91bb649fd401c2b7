"""Message rendering: Chinese defaults, custom Jinja2 templates validated when the config loads.

Contexts are plain dicts built from stored alerts; the same context feeds the IM markdown template,
the SMS text template (generic gateway) and the SMS template parameters (Aliyun, Tencent Cloud).
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import jinja2.meta
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["TemplateProblem", "Renderer", "TEMPLATE_NAMES", "alert_context", "sanitize_sms", "parse_time"]

TEMPLATE_NAMES = ("im_markdown", "sms_text")
_DEFAULT_FILES = {"im_markdown": "im_markdown.md.j2", "sms_text": "sms_text.txt.j2"}

STATUS_ZH = {"firing": "告警", "resolved": "恢复"}
SEVERITY_ZH = {"critical": "严重", "warning": "警告", "info": "提示"}
ICONS = {"firing": "🔴", "resolved": "✅"}

_ALERT_KEYS = (
    "township",
    "place",
    "reminder",
    "duration",
    "status",
    "status_zh",
    "severity",
    "severity_zh",
    "icon",
    "alertname",
    "title",
    "target",
    "description",
    "labels",
    "annotations",
    "starts_at",
    "ends_at",
    "time",
    "generator_url",
    "fingerprint",
)
_TOP_KEYS = (
    "alerts",
    "digest",
    "count",
    "firing_count",
    "resolved_count",
    "channel",
    "route",
    "note",
    "groups",
    "shown_count",
    "omitted",
    "more_url",
    "grafana_url",
    "ack_url",
) + _ALERT_KEYS
GATEWAY_SAMPLE = {"phone": "13800001234", "delivery_id": "sample", "text": "sample", "params": {}}
_URL = re.compile(r"(?i)\b(?:https?://|www\.)\S+")
_GO_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


class TemplateProblem(Exception):
    def __init__(self, where: str, line: int | None, message: str) -> None:
        super().__init__(f"{where}{f':{line}' if line else ''}: {message}")
        self.where = where
        self.line = line


def parse_time(raw: str) -> dt.datetime | None:
    """Alertmanager's RFC 3339 times (Go prints up to 9 fraction digits; 0001-01-01 means unset)."""
    match = _GO_TIME.match(raw or "")
    if not match or raw.startswith("0001-"):
        return None
    frac = (match.group(2) or ".0")[:7].ljust(7, "0")
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    try:
        return dt.datetime.fromisoformat(f"{match.group(1)}{frac}{zone}")
    except ValueError:
        return None


def sanitize_sms(text: str, limit: int) -> str:
    """SMS variables: no URLs (carriers reject them), single line, within the provider's length limit."""
    cleaned = " ".join(_URL.sub("", text).split())
    return cleaned if len(cleaned) <= limit else cleaned[: max(limit - 1, 0)] + "…"


def duration_zh(seconds: float) -> str:
    """A duration the way a Chinese message says it: 2 天 3 小时, 3 小时 20 分钟, 12 分钟."""
    minutes = max(int(seconds // 60), 0)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} 天 {hours} 小时" if hours else f"{days} 天"
    if hours:
        return f"{hours} 小时 {mins} 分钟" if mins else f"{hours} 小时"
    return f"{mins} 分钟"


def _fmt(when: dt.datetime | None, zone: ZoneInfo, short: bool) -> str:
    if when is None:
        return ""
    local = when.astimezone(zone)
    return local.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S")


def alert_context(alert: Mapping[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    labels = {str(k): str(v) for k, v in dict(alert.get("labels") or {}).items()}
    annotations = {str(k): str(v) for k, v in dict(alert.get("annotations") or {}).items()}
    status = str(alert.get("status", "firing"))
    severity = labels.get("severity", "")
    starts = parse_time(str(alert.get("startsAt", "")))
    ends = parse_time(str(alert.get("endsAt", "")))
    shown = ends if status == "resolved" and ends else starts
    alertname = labels.get("alertname", "")
    target = labels.get("instance") or labels.get("host") or labels.get("job") or "-"
    township = labels.get("township", "")
    reminder = int(alert.get("reminder") or 0)
    notified = float(alert.get("notifiedAt") or 0.0)
    duration = duration_zh(notified - starts.timestamp()) if starts and notified else ""
    status_zh = STATUS_ZH.get(status, status)
    if reminder and status == "firing":
        status_zh = f"仍在告警(第{reminder}次提醒)"
    return {
        "township": township,
        "place": f"{township} {target}" if township else target,
        "reminder": reminder,
        "duration": duration,
        "status": status,
        "status_zh": status_zh,
        "severity": severity,
        "severity_zh": SEVERITY_ZH.get(severity, severity or "未知"),
        "icon": ICONS.get(status, ""),
        "alertname": alertname,
        "title": annotations.get("summary") or alertname or "未命名告警",
        "target": target,
        "description": annotations.get("description", ""),
        "labels": labels,
        "annotations": annotations,
        "starts_at": _fmt(starts, zone, short=False),
        "ends_at": _fmt(ends, zone, short=False),
        "time": _fmt(shown, zone, short=True),
        "generator_url": str(alert.get("generatorURL", "")),
        "fingerprint": str(alert.get("fingerprint", "")),
    }


def _groups(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Digest items by township, then alert name (first appearance order), each with its alerts."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for a in items:
        key = (str(a["township"]), str(a["alertname"]))
        group = out.setdefault(
            key, {"township": key[0] or "未标注乡镇", "alertname": key[1], "title": a["title"], "alerts": []}
        )
        group["alerts"].append(a)
    return list(out.values())


def _ordered(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order: dict[tuple[str, str], int] = {}
    for a in items:
        order.setdefault((a["township"], a["alertname"]), len(order))
    return sorted(items, key=lambda a: order[(a["township"], a["alertname"])])


def message_context(
    alerts: Sequence[Mapping[str, Any]], zone: ZoneInfo, channel: str = "", route: str = "", note: str = ""
) -> dict[str, Any]:
    items = _ordered([alert_context(a, zone) for a in alerts])
    digest = len(items) != 1
    firing = sum(1 for a in items if a["status"] == "firing")
    ctx: dict[str, Any] = dict(items[0]) if items else {k: "" for k in _ALERT_KEYS}
    external = next((str(a.get("externalURL") or "") for a in alerts if a.get("externalURL")), "")
    ctx.update(
        alerts=items,
        digest=digest,
        count=len(items),
        firing_count=firing,
        resolved_count=len(items) - firing,
        channel=channel,
        route=route,
        note=note,
        groups=_groups(items),
        shown_count=len(items),
        omitted=0,
        more_url=f"{external.rstrip('/')}/#/alerts" if external else "",
        grafana_url="",
        ack_url="",
    )
    if digest:
        titles: list[str] = []
        for a in items:
            if a["title"] not in titles:
                titles.append(a["title"])
        townships = sorted({a["township"] for a in items if a["township"]})
        ctx.update(
            status="firing" if firing else "resolved",
            status_zh="告警汇总",
            title=f"共{len(items)}条：" + "、".join(titles),
            target="多个对象" if len({a["target"] for a in items}) > 1 else (items[0]["target"] if items else "-"),
            township="、".join(townships),
            place="、".join(townships) if townships else "多个对象",
            time=max((a["time"] for a in items), default=""),
        )
    return ctx


def sample_contexts(zone: ZoneInfo) -> list[dict[str, Any]]:
    firing = {
        "status": "firing",
        "labels": {"alertname": "HostDown", "severity": "critical", "instance": "10.0.0.1:9100"},
        "annotations": {"summary": "主机失联", "description": "10 分钟无数据"},
        "startsAt": "2026-01-01T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": "0123456789abcdef",
        "externalURL": "http://alertmanager:9093",
    }
    resolved = dict(firing, status="resolved", endsAt="2026-01-01T00:10:00Z")
    township = dict(firing, labels={"alertname": "HostDown", "severity": "critical", "township": "城关镇"})
    reminder = dict(township, reminder=2, notifiedAt=1767232800.0)
    return [
        message_context([firing], zone, "sample", "sample"),
        message_context([resolved], zone, "sample", "sample"),
        message_context([reminder], zone, "sample", "sample", "短信结果未知，请人工核实"),
        message_context([firing, resolved, township], zone, "sample", "sample"),
    ]


@dataclass
class _Source:
    where: str
    text: str


def _default_source(name: str) -> _Source:
    res = importlib.resources.files("relay.templates").joinpath(_DEFAULT_FILES[name])
    return _Source(f"<built-in {_DEFAULT_FILES[name]}>", res.read_text(encoding="utf-8"))


def _template_line(exc: BaseException, where: str) -> int | None:
    tb = exc.__traceback__
    line: int | None = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == where:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class Renderer:
    """Compiled templates for one config; `validate()` runs at config load and at `check-config`."""

    def __init__(self, overrides: Mapping[str, Path], timezone: str = "Asia/Shanghai") -> None:
        self.zone = ZoneInfo(timezone)
        self._sources: dict[str, _Source] = {}
        for name in TEMPLATE_NAMES:
            path = overrides.get(name)
            if path is None:
                self._sources[name] = _default_source(name)
                continue
            try:
                self._sources[name] = _Source(str(path), path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as exc:
                raise TemplateProblem(str(path), None, f"cannot read template: {exc}") from None
        self.env = SandboxedEnvironment(
            loader=jinja2.FunctionLoader(self._load), autoescape=False, keep_trailing_newline=False
        )
        self._compiled: dict[str, jinja2.Template] = {}
        self._inline: dict[str, jinja2.Template] = {}

    def _load(self, name: str) -> tuple[str, str, Any]:
        source = self._sources[name]
        return source.text, source.where, lambda: True

    def validate(self, extra: Sequence[tuple[str, str]] = (), bodies: Sequence[tuple[str, str]] = ()) -> None:
        """Compile every template, refuse unknown variables, and render against sample alerts.

        `extra` holds inline templates (SMS parameters) and `bodies` gateway body templates, which also
        see phone, delivery_id, text and params; both as (where, source) pairs.
        """
        for name in TEMPLATE_NAMES:
            source = self._sources[name]
            self._compiled[name] = self._check(
                source.where, source.text, lambda name=name: self.env.get_template(name), {}
            )
        for where, text in extra:
            self._inline[text] = self._check(where, text, lambda text=text: self.env.from_string(text), {})
        for where, text in bodies:
            self._inline[text] = self._check(where, text, lambda text=text: self.env.from_string(text), GATEWAY_SAMPLE)

    def _check(self, where: str, text: str, compile_: Any, extra: Mapping[str, Any]) -> jinja2.Template:
        try:
            ast = self.env.parse(text)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateProblem(where, exc.lineno, f"template syntax error: {exc.message}") from None
        known = set(_TOP_KEYS) | set(extra) | set(self.env.globals)
        unknown = sorted(jinja2.meta.find_undeclared_variables(ast) - known)
        if unknown:
            line = next((i + 1 for i, row in enumerate(text.splitlines()) if unknown[0] in row), None)
            names = ", ".join((*_TOP_KEYS, *extra))
            raise TemplateProblem(where, line, f"unknown variable '{unknown[0]}' (available: {names})")
        template: jinja2.Template = compile_()
        for ctx in sample_contexts(self.zone):
            try:
                template.render({**ctx, **extra})
            except Exception as exc:  # any render error is a config error, reported with its line
                line = _template_line(exc, where)
                raise TemplateProblem(where, line, f"template fails to render: {exc}") from None
        return template

    def render(self, name: str, ctx: Mapping[str, Any]) -> str:
        template = self._compiled.get(name) or self.env.get_template(name)
        return template.render(ctx).strip()

    def render_fitted(self, name: str, ctx: Mapping[str, Any], limit: int, size: Callable[[str], int]) -> str:
        """Render a digest listing as many of its alerts as fit in `limit` (measured by `size`); the
        template is told how many it left out (`omitted`) and where to see them (`more_url`)."""
        text = self.render(name, ctx)
        items: list[dict[str, Any]] = list(ctx.get("alerts") or [])
        if not ctx.get("digest") or size(text) <= limit or not items:
            return text

        def attempt(shown: int) -> str:
            part = items[:shown]
            return self.render(
                name, {**ctx, "groups": _groups(part), "shown_count": shown, "omitted": len(items) - shown}
            )

        lo, hi = 0, len(items)  # invariant: attempt(lo) fits or lo == 0
        best = attempt(0)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            candidate = attempt(mid)
            if size(candidate) <= limit:
                lo, best = mid, candidate
            else:
                hi = mid - 1
        return best

    def render_inline(self, text: str, ctx: Mapping[str, Any]) -> str:
        template = self._inline.get(text)
        if template is None:
            template = self._inline[text] = self.env.from_string(text)
        return template.render(ctx)

    def context(
        self, alerts: Sequence[Mapping[str, Any]], channel: str = "", route: str = "", note: str = ""
    ) -> dict[str, Any]:
        return message_context(alerts, self.zone, channel, route, note)
