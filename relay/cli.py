"""shaobing-relay command line: serve, check-config, test-send, review, roster show."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from relay import __version__
from relay.config import ConfigError, build_renderer, load_config
from relay.config.model import Config
from relay.redact import mask_phone

__all__ = ["main", "make_client"]

log = logging.getLogger("relay")


def make_client(config: Config) -> httpx.AsyncClient:
    """Outbound HTTP: TLS verification is always on (no option turns it off); no proxies from env."""
    timeout = config.delivery.request_timeout_seconds
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        verify=True,
        trust_env=False,
        follow_redirects=False,
        headers={"User-Agent": f"shaobing-relay/{__version__}"},
    )


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs full request URLs at INFO, and robot URLs carry credentials (access_token, key).
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _load(path: str, resolve_secrets: bool = True) -> Config:
    try:
        return load_config(Path(path), resolve_secrets)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        if len(exc.problems) > 1:
            print(f"{len(exc.problems)} problems in {path}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    print(f"{config.path}: OK — {len(config.routes)} routes, {len(config.channels)} channels")
    for channel in config.channels.values():
        extra = f", {len(channel.recipients)} recipients" if channel.is_sms else ""
        fallback = f", fallback {channel.fallback}" if channel.fallback else ""
        print(f"  channel {channel.name}: {channel.type}{extra}{fallback}")
    for route in config.routes.values():
        print(f"  route {route.name}: POST /alertmanager/{route.name} -> {', '.join(route.channels)}")
    if config.heartbeat is not None:
        hb = config.heartbeat
        print(f"  heartbeat: POST /alertmanager/{hb.route}, silent {hb.timeout_seconds:g}s -> {', '.join(hb.channels)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from relay.app import create_app
    from relay.delivery import Deliverer
    from relay.metrics import Metrics
    from relay.store import Store, StoreError

    _setup_logging(args.log_level)
    config = _load(args.config)
    renderer = build_renderer(config)
    try:
        store = Store(config.store.path, config.store.synchronous)
    except (StoreError, OSError) as exc:
        print(f"cannot open store {config.store.path}: {exc}", file=sys.stderr)
        return 2
    metrics = Metrics(config.channels, config.routes)

    async def run() -> None:
        async with make_client(config) as client:
            deliverer = Deliverer(config, store, renderer, metrics, client)
            app = create_app(config, store, metrics, deliverer)
            server = uvicorn.Server(
                uvicorn.Config(
                    app,
                    host=config.server.host,
                    port=config.server.port,
                    log_level="warning",
                    access_log=False,
                    lifespan="on",
                    timeout_graceful_shutdown=5,
                )
            )
            log.info("shaobing-relay %s listening on %s:%d", __version__, config.server.host, config.server.port)
            await server.serve()

    try:
        asyncio.run(run())
    finally:
        store.close()
    return 0


def cmd_test_send(args: argparse.Namespace) -> int:
    from relay.providers import Outbound, Outcome, build_provider
    from relay.templates import sanitize_sms

    _setup_logging("warning")
    config = _load(args.config)
    channel = config.channels.get(args.channel)
    if channel is None:
        print(f"unknown channel '{args.channel}' (have: {', '.join(sorted(config.channels))})", file=sys.stderr)
        return 2
    renderer = build_renderer(config)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    alert = {
        "status": "firing",
        "labels": {"alertname": "ShaobingRelayTest", "severity": "info", "instance": "shaobing-relay"},
        "annotations": {
            "summary": "哨兵告警通道测试 Relay test message",
            "description": "这是一条测试消息，无需处理。",
        },
        "startsAt": now,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": "test",
    }
    ctx = renderer.context([alert], channel.name, "test-send")
    recipients = channel.recipients if channel.is_sms else ()
    if args.to:
        recipients = tuple(p for p in recipients if p.key == args.to)
        if not recipients:
            print(f"'{args.to}' is not a recipient of {channel.name}", file=sys.stderr)
            return 2

    async def run() -> int:
        failures = 0
        async with make_client(config) as client:
            provider = build_provider(channel, client, renderer)
            targets = [p.phone for p in recipients] if channel.is_sms else [""]
            for phone in targets:
                msg = Outbound(
                    delivery_id=f"test-{int(time.time())}",
                    title=f"【哨兵】{ctx['status_zh']}：{ctx['title']}",
                    markdown=renderer.render("im_markdown", ctx),
                    text=sanitize_sms(renderer.render("sms_text", ctx), 300),
                    params=[
                        (n, sanitize_sms(renderer.render_inline(e, ctx), channel.max_param_chars))
                        for n, e in channel.template_params
                    ],
                    phone=phone,
                    alerts=[alert],
                    context=ctx,
                    first_sent_at=time.time(),
                )
                result = await provider.send(msg)
                target = f" to {mask_phone(phone)}" if phone else ""
                print(f"{channel.name}{target}: {result.outcome.value} {result.detail}")
                failures += result.outcome is not Outcome.SUCCESS
        return 0 if failures == 0 else 1

    return asyncio.run(run())


def cmd_review(args: argparse.Namespace) -> int:
    from relay.store import Store

    # Review never talks to a provider: it must work where the provider secrets are not in the environment.
    config = _load(args.config, resolve_secrets=False)
    store = Store(config.store.path, config.store.synchronous)
    try:
        if args.resend or args.done:
            now = time.time()
            for message_id in args.resend or []:
                store.reschedule(message_id, now, now, "operator: resend", charge=False)
            for message_id in args.done or []:
                store.delivered(message_id, now, "operator")
            print("updated; a running relay picks resends up within its poll interval")
            return 0
        rows = store.list_rows(("review", "unknown", "dead"))
        for row in rows:
            person = config.channels[row.channel].person(row.recipient) if row.channel in config.channels else None
            who = mask_phone(person.phone) if person else row.recipient or "-"
            print(f"{row.id}\t{row.state}\t{row.channel}\t{who}\t{row.delivery_id}\t{row.last_error}")
        return 0
    finally:
        store.close()


def cmd_roster(args: argparse.Namespace) -> int:
    """Who is on duty (at --date, default now) on each roster, and the handovers of the next --days."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    config = _load(args.config, resolve_secrets=False)
    zone = ZoneInfo(config.timezone)
    if args.date:
        try:
            parsed = dt.datetime.fromisoformat(args.date)
        except ValueError:
            print(f"--date {args.date!r}: expected e.g. 2026-12-05 or 2026-12-05T03:00", file=sys.stderr)
            return 2
        at = (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).timestamp()
    else:
        at = time.time()
    rosters = [r for r in config.rosters.values() if not args.roster or r.key == args.roster]
    if not rosters:
        print(f"{config.path}: no roster{' named ' + args.roster if args.roster else 's'}", file=sys.stderr)
        return 2

    def local(t: float) -> str:
        return dt.datetime.fromtimestamp(t, zone).strftime("%m-%d %H:%M")

    for roster in rosters:
        where = "、".join("其他乡镇（*）" if t == "*" else t for t in roster.townships) or "（按 roster:名称 引用）"
        print(f"{roster.name} [{roster.key}] 负责 {where}")
        person, why = roster.on_duty(at)
        print(f"  {local(at)} 值班 on duty: {person.name} {mask_phone(person.phone)}  ({why})")
        for t, who, reason in roster.handovers(at + 60, at + args.days * 86400)[: args.limit]:
            print(f"  {local(t)} 起 from: {who.name} {mask_phone(who.phone)}  ({reason})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shaobing-relay", description="哨兵 relay: Alertmanager -> SMS / IM")
    parser.add_argument("--version", action="version", version=f"shaobing-relay {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the relay")
    serve.add_argument("--config", required=True)
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    check = sub.add_parser("check-config", help="validate a config file (exit 0 ok, 2 invalid)")
    check.add_argument("config")
    test = sub.add_parser("test-send", help="send a test message through one channel now")
    test.add_argument("channel")
    test.add_argument("--config", required=True)
    test.add_argument("--to", help="only this person (SMS channels)")
    review = sub.add_parser("review", help="list sends needing an operator; resend or close them")
    review.add_argument("--config", required=True)
    review.add_argument("--resend", type=int, action="append", metavar="ID")
    review.add_argument("--done", type=int, action="append", metavar="ID")
    roster = sub.add_parser("roster", help="duty rosters (值班表)")
    roster_sub = roster.add_subparsers(dest="roster_command", required=True)
    show = roster_sub.add_parser("show", help="who is on duty now (or at --date), and the coming handovers")
    show.add_argument("--config", required=True)
    show.add_argument("--date", help="a local date or date and time (default: now)")
    show.add_argument("--roster", help="only this roster")
    show.add_argument("--days", type=int, default=7, help="handovers over this many days (default 7)")
    show.add_argument("--limit", type=int, default=50, help="at most this many handovers per roster")
    args = parser.parse_args(argv)
    handlers = {
        "serve": cmd_serve,
        "check-config": cmd_check_config,
        "test-send": cmd_test_send,
        "review": cmd_review,
        "roster": cmd_roster,
    }
    return handlers[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
