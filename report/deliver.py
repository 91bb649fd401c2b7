"""Where finished reports go: the report directory (the last N kept), the relay's chat channels (a summary
with a link, and on WeCom the PDF itself as a file), and e-mail with the PDF attached.

Chat channels are the relay's own (same relay.yml, same secrets and base URLs). Delivery is bounded: three
tries per channel with back-off, every request with the relay's timeout; a channel that still fails is
reported (exit 4) and the report stays in the directory.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
import uuid
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

from report.config import EmailConfig, ReportConfig
from report.prom import ReportError

__all__ = ["prune", "check_channels", "send_chat", "send_email", "chat_markdown", "REPORT_PREFIX"]

log = logging.getLogger("shaobing.report")
REPORT_PREFIX = "shaobing-report-"
LIGHT_MARKS = {"green": "🟢", "yellow": "🟡", "red": "🔴", "grey": "⚪"}


def prune(directory: Path, keep: int) -> list[Path]:
    """Keep the newest `keep` reports (a report is its .html/.pdf/.json files of one stem)."""
    stems = sorted({p.name.split(".")[0] for p in directory.glob(f"{REPORT_PREFIX}*") if not p.name.startswith(".")})
    removed = []
    for stem in stems[:-keep] if keep > 0 else []:
        for path in directory.glob(f"{stem}.*"):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def chat_markdown(
    title: str,
    period: str,
    summary: dict[str, Any],
    townships: Sequence[tuple[str, str]],
    todos: Sequence[str],
    links: Sequence[tuple[str, str]],
) -> str:
    lines = [f"### {title}", f"巡检周期：{period}", ""]
    lines += [f"- {LIGHT_MARKS.get(v, '')} {name}" for name, v in townships]
    avail = summary["availability"]
    lines += [
        "",
        f"主机 {summary['hosts']} 台，总体可用率 {'无数据' if avail is None else f'{avail * 100:.2f}%'}，"
        f"离线 {summary['outages']} 次，目前离线 {summary['hosts_down_now']} 台；"
        f"告警 {summary['alerts']} 条（严重 {summary['alerts_critical']}）。",
    ]
    if todos:
        lines += ["", "**本周最要紧的事：**"] + [f"{i}. {t}" for i, t in enumerate(todos[:3], 1)]
    if links:
        lines += [""] + [f"[{label}]({url})" for label, url in links]
    return "\n".join(lines)


def check_channels(config: ReportConfig) -> Any:
    """The relay config with every named channel present and a chat channel (checked before any query, so a
    delivery mistake is found before the report is made). None when no chat channel is configured."""
    if not config.channels or config.relay_config is None:
        return None
    from relay.config import ConfigError, load_config

    try:
        relay = load_config(config.relay_config)
    except ConfigError as exc:
        raise ReportError(f"delivery.relay_config: {exc}") from None
    for name in config.channels:
        channel = relay.channels.get(name)
        if channel is None:
            raise ReportError(f"delivery.channels: {name!r} is not a channel in {config.relay_config}")
        if channel.is_sms:
            raise ReportError(f"delivery.channels: {name!r} is an SMS channel; reports go to chat channels or e-mail")
    return relay


def send_chat(config: ReportConfig, relay: Any, markdown: str, title: str, files: Sequence[Path]) -> list[str]:
    """Send to every configured relay channel; returns the problems (empty: all sent)."""
    if relay is None:
        return []
    from relay.providers import Outbound, Outcome, build_provider
    from relay.providers.wecom import WeCom
    from relay.templates import Renderer

    problems: list[str] = []

    async def run() -> None:
        timeout = relay.delivery.request_timeout_seconds
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            for name in config.channels:
                provider = build_provider(relay.channels[name], client, Renderer({}))
                msg = Outbound(delivery_id=str(uuid.uuid4()), title=title, markdown=markdown, text=markdown)
                attempts: list[Any] = [lambda p=provider, m=msg: p.send(m)]
                if isinstance(provider, WeCom):
                    for path in files:
                        if path.suffix == ".pdf":
                            attempts.append(lambda p=provider, f=path: p.send_file(f.name, f.read_bytes()))
                for attempt in attempts:
                    for tries in range(3):
                        result = await attempt()
                        if result.outcome is Outcome.SUCCESS:
                            break
                        if result.outcome is Outcome.PERMANENT or tries == 2:
                            problems.append(f"channel {name}: {result.detail}")
                            break
                        await asyncio.sleep(min(result.retry_after or 2.0 * 4**tries, 60.0))

    asyncio.run(run())
    return problems


def send_email(email: EmailConfig, subject: str, body: str, files: Sequence[Path]) -> None:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = email.sender
    msg["To"] = ", ".join(email.to)
    msg.set_content(body)
    for path in files:
        if path.suffix.lstrip(".") in email.attach:
            maintype, subtype = ("application", "pdf") if path.suffix == ".pdf" else ("text", "html")
            msg.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name)
    context = ssl.create_default_context(cafile=email.ca_file or None)
    try:
        if email.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                email.host, email.port, timeout=email.timeout_seconds, context=context
            )
        else:
            smtp = smtplib.SMTP(email.host, email.port, timeout=email.timeout_seconds)
        with smtp:
            if email.security == "starttls":
                smtp.starttls(context=context)
            if email.username and email.password is not None:
                smtp.login(email.username, email.password.value)
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise ReportError(f"e-mail via {email.host}:{email.port} failed: {exc}") from None
