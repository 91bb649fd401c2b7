"""shaobing-report: generate (and optionally send) the inspection report.

    shaobing-report generate --prometheus http://127.0.0.1:9090 --last 7d --out /var/lib/shaobing/reports
    shaobing-report generate --config /etc/shaobing/report.yml --send

Exit codes: 0 written (and sent); 2 bad options or config; 3 no report (Prometheus or the relay history did
not answer, or nothing in scope) — nothing is written; 4 written, but a delivery failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from report import alerts as alert_history
from report.collect import Scope, collect_hosts
from report.config import ConfigError, ReportConfig, load
from report.deliver import REPORT_PREFIX, chat_markdown, check_channels, prune, send_chat, send_email
from report.model import Host, Report, Township
from report.period import Period, local, parse_period
from report.prom import Prometheus, ReportError
from report.render import render_html, summary, write_pdf
from report.verdict import judge

__all__ = ["main", "build_report"]

log = logging.getLogger("shaobing.report")


def build_report(config: ReportConfig, period: Period, now: float | None = None) -> Report:
    scope = Scope(job=config.job, townships=config.townships, instances=config.instances)
    basic = (config.basic_user, config.basic_password.value) if config.basic_password is not None else None
    token = config.bearer_token.value if config.bearer_token is not None else ""
    with Prometheus(
        config.prometheus_url,
        timeout=config.prometheus_timeout,
        bearer_token=token,
        basic_auth=basic,
        verify=config.ca_file or True,
    ) as prom:
        hosts = collect_hosts(prom, period, scope)
        if not hosts:
            raise ReportError(
                f"Prometheus {config.prometheus_url} has no {config.job} hosts in scope ({scope.describe()}) "
                f"for {period.label}: nothing to report"
            )
        if config.relay_db is not None:
            alerts = alert_history.from_relay(config.relay_db, period, scope)
        else:
            alerts = alert_history.from_prometheus(prom, period, scope)
        queries = prom.queries
    townships: dict[str, list[Host]] = {}
    for host in hosts:
        townships.setdefault(host.township, []).append(host)
    report = Report(
        title=config.title,
        scope=scope.describe(),
        start=period.start,
        end=period.end,
        generated_at=time.time() if now is None else now,
        townships=[Township(name, members) for name, members in sorted(townships.items())],
        alerts=alerts,
        queries=queries,
    )
    judge(report)
    return report


def _write(directory: Path, name: str, data: bytes) -> Path:
    target = directory / name
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o640)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def generate(config: ReportConfig, period: Period, send: bool, relay: Any = None) -> int:
    """Write the report; with `send`, deliver it (`relay`: the relay config from check_channels)."""
    began = time.monotonic()
    report = build_report(config, period)
    queried = time.monotonic()
    html = render_html(report)
    rendered = time.monotonic()
    directory = config.directory
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot create the report directory {directory}: {exc.strerror}") from None
    stem = f"{REPORT_PREFIX}{local(period.start).strftime('%Y%m%d')}-{local(period.end).strftime('%Y%m%d')}"
    stem += "" if not (config.townships or config.instances) else "-" + _slug(report.scope)
    # Render everything first, then write: a failure leaves no half report behind.
    pdf = b""
    if "pdf" in config.formats:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "r.pdf"
            write_pdf(html, out)
            pdf = out.read_bytes()
    log.info(
        "%d hosts, %d queries in %.1f s; HTML with charts %.1f s; PDF %.1f s",
        len(report.hosts),
        report.queries,
        queried - began,
        rendered - queried,
        time.monotonic() - rendered,
    )
    facts = summary(report)
    sidecar = {
        "title": report.title,
        "period": {"start": report.start, "end": report.end, "label": period.label},
        "scope": report.scope,
        "generated_at": report.generated_at,
        "summary": facts,
        "townships": {t.name: t.verdict for t in report.townships},
        "todos": [
            {"risk": t.risk, "township": t.township, "instance": t.instance, "what": t.what} for t in report.todos
        ],
    }
    files = [_write(directory, f"{stem}.json", json.dumps(sidecar, ensure_ascii=False, indent=1).encode())]
    if "html" in config.formats:
        files.append(_write(directory, f"{stem}.html", html.encode()))
    if pdf:
        files.append(_write(directory, f"{stem}.pdf", pdf))
    for path in files:
        print(path)
    prune(directory, config.keep)
    if not send:
        return 0
    problems = _deliver(config, relay, report, period, facts, files)
    for problem in problems:
        print(f"shaobing-report: delivery: {problem}", file=sys.stderr)
    return 4 if problems else 0


def _deliver(
    config: ReportConfig, relay: Any, report: Report, period: Period, facts: dict[str, Any], files: list[Path]
) -> list[str]:
    base = config.link_base.rstrip("/")
    links = [
        (f"查看报告（{p.suffix.lstrip('.').upper()}）", f"{base}/{p.name}")
        for p in files
        if base and p.suffix != ".json"
    ]
    todos = [f"{t.township} {t.instance}：{t.what}" for t in report.todos]
    markdown = chat_markdown(
        report.title, period.label, facts, [(t.name, t.verdict) for t in report.townships], todos, links
    )
    if not base:
        markdown += "\n\n报告文件（中心服务器）：" + "、".join(str(p) for p in files if p.suffix != ".json")
    problems = send_chat(config, relay, markdown, report.title, [p for p in files if p.suffix == ".pdf"])
    if config.email is not None:
        body = markdown.replace("### ", "").replace("**", "")
        try:
            send_email(config.email, f"{report.title}（{period.label}）", body, files)
        except ReportError as exc:
            problems.append(str(exc))
    return problems


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in text)
    return keep.strip("-")[:40] or "scope"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shaobing-report", description="巡检报告 — the weekly inspection report")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write the report (HTML and PDF) for a period and scope")
    gen.add_argument("--config", type=Path, help="report.yml (defaults for every option below)")
    gen.add_argument("--prometheus", help="Prometheus URL (default http://127.0.0.1:9090)")
    gen.add_argument("--last", help="period length ending at the last local midnight, e.g. 7d (default)")
    gen.add_argument("--from", dest="start", help="period start, ISO 8601 (a date is Asia/Shanghai midnight)")
    gen.add_argument("--to", dest="end", help="period end, ISO 8601")
    gen.add_argument("--township", action="append", default=[], help="only this township (repeatable)")
    gen.add_argument("--host", action="append", default=[], help="only this instance (repeatable)")
    gen.add_argument("--job", help="the agents' Prometheus job (default shaobing)")
    gen.add_argument("--relay-db", type=Path, help="the relay's SQLite store, for alert delivery history")
    gen.add_argument("--out", type=Path, help="report directory (default /var/lib/shaobing/reports)")
    gen.add_argument("--format", help="html,pdf (default both)")
    gen.add_argument("--keep", type=int, help="keep the newest N reports in the directory (default 12)")
    gen.add_argument("--title", help="report title")
    gen.add_argument("--send", action="store_true", help="send through the configured channels and e-mail")
    gen.add_argument("-v", "--verbose", action="store_true", help="say how long queries and rendering took")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="shaobing-report: %(message)s")
    if args.verbose:
        log.setLevel(logging.INFO)  # ours only: WeasyPrint and fontTools are chatty at INFO
    try:
        config = load(args.config) if args.config else ReportConfig()
        overrides: dict[str, object] = {}
        for flag, key in (
            ("prometheus", "prometheus_url"),
            ("job", "job"),
            ("relay_db", "relay_db"),
            ("out", "directory"),
            ("keep", "keep"),
            ("title", "title"),
        ):
            if getattr(args, flag) is not None:
                overrides[key] = getattr(args, flag)
        if args.township:
            overrides["townships"] = tuple(args.township)
        if args.host:
            overrides["instances"] = tuple(args.host)
        if args.format:
            formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
            if not formats or any(f not in ("html", "pdf") for f in formats):
                raise ReportError(f"--format {args.format!r}: use html, pdf or html,pdf")
            overrides["formats"] = formats
        config = replace(config, **overrides)  # type: ignore[arg-type]
        if config.keep < 1:
            raise ReportError("--keep must be at least 1")
        last = args.last if (args.last or args.start) else config.period
        period = parse_period(last if not args.start else None, args.start, args.end, time.time())
        relay = check_channels(config) if args.send else None
    except ConfigError as exc:
        print(f"shaobing-report: {exc}", file=sys.stderr)
        return 2
    except ReportError as exc:
        print(f"shaobing-report: {exc}", file=sys.stderr)
        return 2
    try:
        return generate(config, period, args.send, relay)
    except ReportError as exc:
        print(f"shaobing-report: no report: {exc}", file=sys.stderr)
        return 3
