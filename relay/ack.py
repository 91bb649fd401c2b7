"""The acknowledgement page: GET /ack/<token> shows the incident and a form (a GET never acknowledges —
chat apps fetch links to preview them); POST records who acknowledged, stops escalation (relay/oncall.py)
and creates an Alertmanager silence for the group's labels, with the acknowledger as its author.

No login: the token is the credential — signed by the relay, for one incident, and it expires.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from relay import oncall
from relay.config.model import AcknowledgeConfig, Config
from relay.metrics import Metrics
from relay.store import Store

__all__ = ["ack_routes", "create_silences"]

log = logging.getLogger("relay.ack")
MAX_FORM = 4096


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    doc = (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;max-width:36em;margin:1em auto;"
        "padding:0 1em;line-height:1.5}button{font-size:1.1em;padding:.4em 1.2em}input,select{font-size:1em}"
        f"</style></head><body><h2>{html.escape(title)}</h2>{body}</body></html>"
    )
    return HTMLResponse(
        doc, status_code=status, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )


def _alerts_html(incident: oncall.Incident, zone: str) -> str:
    items = []
    for alert in incident.alerts[:20]:
        labels = alert.get("labels") or {}
        summary = (alert.get("annotations") or {}).get("summary") or labels.get("alertname", "")
        where = " ".join(str(labels[k]) for k in ("township", "instance") if labels.get(k))
        items.append(f"<li>{html.escape(str(summary))}<br><small>{html.escape(where)}</small></li>")
    more = f"<li>另有 {len(incident.alerts) - 20} 条</li>" if len(incident.alerts) > 20 else ""
    return f"<ul>{''.join(items)}{more}</ul>"


def _when(t: float | None, zone: str) -> str:
    from zoneinfo import ZoneInfo

    return dt.datetime.fromtimestamp(t or 0, ZoneInfo(zone)).strftime("%m-%d %H:%M")


def create_silences(ack: AcknowledgeConfig, incident: oncall.Incident, who: str, hours: int, now: float) -> str:
    """One silence per Alertmanager (they are not clustered in every county); returns "" or what failed."""
    matchers = [
        {"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in sorted(incident.group_labels.items())
    ]
    if not matchers:
        return "the group has no labels to silence (Alertmanager group_by is empty)"
    body = {
        "matchers": matchers,
        "startsAt": dt.datetime.fromtimestamp(now, dt.timezone.utc).isoformat(),
        "endsAt": dt.datetime.fromtimestamp(now + hours * 3600, dt.timezone.utc).isoformat(),
        "createdBy": who,
        "comment": f"哨兵：{who} 已确认并处理（{hours} 小时）acknowledged via the Shaobing relay",
    }
    problems = []
    ids = []
    with httpx.Client(timeout=ack.timeout_seconds, trust_env=False, follow_redirects=False) as client:
        for url in ack.alertmanagers:
            try:
                response = client.post(f"{url}/api/v2/silences", json=body)
                if response.status_code != 200:
                    problems.append(f"{url}: HTTP {response.status_code}")
                    continue
                ids.append(str(response.json().get("silenceID", "")))
            except (httpx.HTTPError, ValueError) as exc:
                problems.append(f"{url}: {type(exc).__name__}")
    return "; ".join(problems) if problems else "silence " + ",".join(ids)


def ack_routes(config: Config, store: Store, metrics: Metrics, clock: Callable[[], float] = time.time) -> list[Route]:
    ack = config.acknowledge
    assert ack is not None
    secret = ack.secret.value.encode()
    zone = config.timezone

    def load(token: str) -> tuple[oncall.Incident | None, str]:
        incident_id, why = oncall.read_token(secret, token, clock())
        if incident_id is None:
            return None, why
        found = store.transaction(lambda c: oncall.get(c, incident_id))
        return (found, "") if found is not None else (None, "链接无效 invalid link")

    async def show(request: Request) -> Response:
        incident, why = await run_in_threadpool(load, str(request.path_params["token"]))
        if incident is None:
            return _page("无法确认 Cannot acknowledge", f"<p>{html.escape(why)}</p>", 404)
        alerts = _alerts_html(incident, zone)
        if incident.state == "acked":
            return _page(
                "已确认 Acknowledged",
                f"{alerts}<p>已由 <b>{html.escape(incident.acked_by)}</b> 于 "
                f"{_when(incident.acked_at, zone)} 确认。{html.escape(incident.silence)}</p>",
            )
        if incident.state == "resolved":
            return _page("已恢复 Resolved", f"{alerts}<p>告警已恢复，无需确认。</p>")
        options = "".join(f'<option value="{h}">{h} 小时</option>' for h in ack.silence_hours)
        form = (
            f'{alerts}<form method="post"><p>确认人 Who：<input name="who" required maxlength="32" '
            f'placeholder="姓名"></p><p>静默 Silence：<select name="hours">{options}</select></p>'
            "<p><button type=submit>我来处理 Acknowledge</button></p></form>"
            "<p><small>确认后停止升级通知，并在 Alertmanager 中静默该告警组。"
            f"已升级到第 {incident.level} 级。</small></p>"
        )
        return _page("确认告警 Acknowledge", form)

    async def confirm(request: Request) -> Response:
        token = str(request.path_params["token"])
        raw = await request.body()
        if len(raw) > MAX_FORM:
            return _page("无法确认 Cannot acknowledge", "<p>请求过大</p>", 413)
        form = urllib.parse.parse_qs(raw.decode("utf-8", errors="replace"))
        who = " ".join((form.get("who") or [""])[0].split())[:32]
        try:
            hours = int((form.get("hours") or [""])[0])
        except ValueError:
            hours = 0
        if not who or hours not in ack.silence_hours:
            return _page("无法确认 Cannot acknowledge", "<p>请填写确认人并选择静默时长。</p>", 400)
        incident, why = await run_in_threadpool(load, token)
        if incident is None:
            return _page("无法确认 Cannot acknowledge", f"<p>{html.escape(why)}</p>", 404)
        now = clock()
        marked: list[Any] = await run_in_threadpool(
            store.transaction, lambda c: oncall.acknowledge(c, incident.id, who, now)
        )
        if not marked:
            return await show(request)
        for inc in marked:
            metrics.inc("shaobing_relay_acknowledgements_total", route=inc.route)
        result = await run_in_threadpool(create_silences, ack, incident, who, hours, now)
        failed = not result.startswith("silence ")
        if failed:
            metrics.inc("shaobing_relay_silence_failures_total")
            log.warning("incident %d acknowledged by %s, but the silence failed: %s", incident.id, who, result)
        await run_in_threadpool(store.transaction, lambda c: oncall.set_silence(c, incident.id, result))
        log.info("incident %d acknowledged by %s for %d h (%s)", incident.id, who, hours, result)
        note = (
            f"<p>⚠️ 静默未能创建（{html.escape(result)}），告警仍会继续通知。</p>"
            if failed
            else f"<p>已在 Alertmanager 静默 {hours} 小时。</p>"
        )
        return _page(
            "已确认 Acknowledged",
            f"{_alerts_html(incident, zone)}<p>确认人：<b>{html.escape(who)}</b>，已停止升级通知。</p>{note}",
        )

    return [Route("/ack/{token}", show, methods=["GET"]), Route("/ack/{token}", confirm, methods=["POST"])]


def _national(phone: str) -> str:
    digits = "".join(c for c in phone if c.isdigit())
    return digits[2:] if digits.startswith("86") and len(digits) == 13 else digits


def acknowledge_by_reply(
    config: Config, store: Store, metrics: Metrics, channel: str, phone: str, text: str, now: float
) -> str:
    """A reply such as "1" from a person's phone acknowledges the newest open incident that person was sent on
    this channel (the same as the link: who, escalation stopped, the group silenced). Returns what happened."""
    from relay.ingest import group_key
    from relay.providers.gsm_modem import ACK_WORDS

    if text.strip().lower() not in ACK_WORDS:
        return "not an acknowledgement"
    sender = _national(phone)
    person = next((p for p in config.channels[channel].everyone() if _national(p.phone) == sender), None)
    if person is None:
        return "from a number that is not a recipient: ignored"

    def newest(conn: Any) -> oncall.Incident | None:
        rows = conn.execute(
            "SELECT m.route, a.body FROM messages m JOIN alerts a ON a.id = m.alert_id "
            "WHERE m.channel=? AND m.recipient=? ORDER BY m.id DESC LIMIT 50",
            (channel, person.key),
        ).fetchall()
        for route, body in rows:
            alert = json.loads(body)
            if "groupKey" not in alert:
                continue
            found = oncall.id_for_key(conn, group_key(str(route), alert))
            if found is not None:
                return oncall.get(conn, found)
        return None

    incident = store.transaction(newest)
    if incident is None:
        return "no open incident for this person"
    who = f"{person.name}（短信回复）"
    marked = store.transaction(lambda c: oncall.acknowledge(c, incident.id, who, now))
    for inc in marked:
        metrics.inc("shaobing_relay_acknowledgements_total", route=inc.route)
    result = "no Alertmanager configured"
    if config.acknowledge is not None:
        result = create_silences(config.acknowledge, incident, who, config.acknowledge.silence_hours[0], now)
        if not result.startswith("silence "):
            metrics.inc("shaobing_relay_silence_failures_total")
        store.transaction(lambda c: oncall.set_silence(c, incident.id, result))
    return f"incident {incident.id} acknowledged by {person.key} ({result})"
