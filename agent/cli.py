"""The ``shaobing`` command.

    shaobing agent run   [--config F]    run the agent (zero config: 127.0.0.1:10130, every default collector)
    shaobing agent once  [--config F]    collect once, print the exposition, exit
    shaobing scan        [--config F]    full local report in Chinese: what is risky and how to fix it
    shaobing scan --baseline gbt22239-3  the 等保 2.0 self-check (or gbt22239-2), [--format json]
    shaobing smart-snapshot [--output D] as root (shaobing-smart.service): SMART data for the hardened agent
    shaobing config check F              validate a configuration file (exit 0 valid, 2 invalid)
    shaobing targets INVENTORY.csv [-o F] inventory CSV -> Prometheus file_sd JSON (exit 2 on invalid rows)
    shaobing version
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from agent import __version__
from agent.config import DEFAULT_CONFIG_PATH, AgentConfig, default_config, load_config
from agent.schema import SchemaError

if TYPE_CHECKING:
    from agent.scheduler import Scheduler

__all__ = ["main"]

log = logging.getLogger("shaobing")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def _setup_logging(level: str) -> None:
    # Under systemd the journal adds its own timestamps; elsewhere we add ours.
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("JOURNAL_STREAM"):
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr)
    # httpx and httpcore log every request at INFO/DEBUG with its full URL, which may carry credentials
    # (user:password@, ?token=) and would write a line per push round: ours say what matters, redacted.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _resolve_config(path: Optional[str]) -> tuple[AgentConfig, Optional[str]]:
    """An explicit --config must exist; the default path is optional (zero-config start)."""
    if path is not None:
        return load_config(path), path
    if os.path.exists(DEFAULT_CONFIG_PATH):
        return load_config(DEFAULT_CONFIG_PATH), DEFAULT_CONFIG_PATH
    return default_config(), None


def _config_error(exc: SchemaError) -> int:
    print("配置错误 (configuration error):", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)
    return EXIT_CONFIG


def _write_pid_file(state_dir: str) -> None:
    """``<state_dir>/agent.pid``: how install.sh finds this agent to stop it on upgrade (never by matching
    command lines, which would also hit an administrator's shell). Removed at exit if it is still ours."""
    import atexit

    from agent.service import resolve_state_dir

    path = resolve_state_dir(state_dir) / "agent.pid"
    mine = f"{os.getpid()}\n"
    try:
        path.write_text(mine, encoding="ascii")
    except OSError as exc:
        log.warning("cannot write %s: %s", path, exc.strerror or exc)
        return

    def remove() -> None:
        try:
            if path.read_text(encoding="ascii") == mine:
                path.unlink()
        except OSError:
            pass

    atexit.register(remove)


def cmd_run(args: argparse.Namespace) -> int:
    from agent.audit.runner import no_core_dumps
    from agent.service import Agent

    # The agent reads /etc/shadow and service credentials: a crash must not write them to a core file.
    no_core_dumps()
    from agent.platform.memory import limit_arenas

    limit_arenas()  # before the first thread (agent.platform.memory)

    try:
        config, path = _resolve_config(args.config)
    except SchemaError as exc:
        return _config_error(exc)
    _setup_logging(config.log_level)
    if path is None:
        log.info("no configuration file at %s: zero-config defaults", DEFAULT_CONFIG_PATH)
    _write_pid_file(config.state_dir)
    agent = Agent(config, path)
    try:
        agent.run_forever()
    except SchemaError as exc:
        return _config_error(exc)
    except OSError as exc:
        log.error("cannot listen on %s: %s", config.listen_address, exc.strerror or exc)
        return EXIT_FAILED
    return EXIT_OK


def cmd_once(args: argparse.Namespace) -> int:
    from agent.exporter import ExpositionCache
    from agent.scheduler import Scheduler
    from agent.service import build_collectors

    try:
        config, _ = _resolve_config(args.config)
    except SchemaError as exc:
        return _config_error(exc)
    _setup_logging("warning" if config.log_level == "info" else config.log_level)
    only = set(args.collector) if args.collector else None
    cache = ExpositionCache()
    scheduler = Scheduler(build_collectors(config, only), cache)
    results = scheduler.run_all_once()
    sys.stdout.buffer.write(cache.page(time.time())[0])
    sys.stdout.flush()
    scheduler.stop()
    return EXIT_OK if all(r.success for r in results) else EXIT_FAILED


def cmd_scan(args: argparse.Namespace) -> int:
    from agent.exporter import ExpositionCache
    from agent.report import Section, render_json, render_text
    from agent.scheduler import Scheduler
    from agent.service import build_collectors

    try:
        config, _ = _resolve_config(args.config)
    except SchemaError as exc:
        return _config_error(exc)
    _setup_logging("warning")
    if os.geteuid() != 0:
        print("提示: 非 root 运行, 口令审计等检查可能无法读取 /etc/shadow (run as root for the full report)\n",
              file=sys.stderr)
    level = _baseline_level(args.baseline) if args.baseline else None
    if args.baseline and level is None:
        print(f"--baseline {args.baseline}: 未知的基线 (unknown baseline; known: gbt22239-2, gbt22239-3)",
              file=sys.stderr)
        return EXIT_CONFIG
    # The same runner as the agent: concurrent, each collector bounded by its own timeout.
    scheduler = Scheduler(build_collectors(config), ExpositionCache())
    try:
        scheduler.run_all_once()
        if level is not None:
            return _print_baseline(scheduler, level, args.format)
        sections: list[Section] = []
        for runner in scheduler.runners:
            collector, result = runner.collector, runner.last
            title = collector.title or collector.name
            if result is not None and result.could_not_check:
                sections.append(Section(title, notes=[f"无法检查 (could not check): {result.error}"]))
                continue
            if result is None or not result.applicable:
                continue
            if not result.success:
                sections.append(Section(title, notes=[f"检查失败 (check failed): {result.error}"]))
                continue
            try:
                section = collector.report()
            except Exception as exc:  # noqa: BLE001 - one failing report must not hide the others
                section = Section(title, notes=[f"报告生成失败 (report failed): {type(exc).__name__}: {exc}"])
            if section is not None:
                sections.append(section)
    finally:
        scheduler.stop()
    critical = any(f.severity == "critical" for s in sections for f in s.findings)
    if args.format == "json":
        print(render_json(sections, f"shaobing {__version__}"))
    else:
        print(f"哨兵 Shaobing {__version__} 本机检查报告 (local scan report)\n")
        print(render_text(sections))
    return EXIT_FAILED if critical else EXIT_OK


def _baseline_level(name: str) -> Optional[int]:
    return {"gbt22239-2": 2, "gbt22239-3": 3, "gbt22239-2019-2": 2, "gbt22239-2019-3": 3}.get(name.lower())


def _print_baseline(scheduler: Scheduler, level: int, fmt: str) -> int:
    """The 等保 self-check for ``level``, with what the other collectors just found; exit 1 when a check fails."""
    from agent.baseline.engine import render_json as baseline_json
    from agent.baseline.engine import render_report
    from agent.collector import AgentContext
    from agent.collectors.baseline import BaselineCollector, BaselineOptions

    found = [r.collector for r in scheduler.runners if isinstance(r.collector, BaselineCollector)]
    if found:
        collector = found[0]
    else:  # disabled in the configuration: the scan still runs it, with the default thresholds
        context = scheduler.runners[0].collector.context if scheduler.runners else AgentContext(Path("/tmp"))
        collector = BaselineCollector(BaselineOptions(), context)
    result = collector.evaluate(level)
    print(baseline_json(result) if fmt == "json" else render_report(result), end="")
    return EXIT_FAILED if result.count("fail") else EXIT_OK


def cmd_config_check(args: argparse.Namespace) -> int:
    from agent.service import load_web

    try:
        config = load_config(args.file)
        load_web(config)
    except SchemaError as exc:
        return _config_error(exc)
    enabled = [name for name, opts in sorted(config.collectors.items()) if opts.enabled]
    print(f"{args.file}: 配置有效 (valid); listen {config.listen_address}"
          + (f"; configured collectors: {', '.join(enabled)}" if enabled else ""))
    return EXIT_OK


def cmd_targets(args: argparse.Namespace) -> int:
    from agent.targets import file_sd_json, parse_inventory

    try:
        with open(args.inventory, encoding="utf-8", newline="") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{args.inventory}: 无法读取 (cannot read): {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        targets = parse_inventory(text, args.inventory)
    except SchemaError as exc:
        return _config_error(exc)
    document = file_sd_json(targets)
    if args.output in (None, "-"):
        sys.stdout.write(document)
        return EXIT_OK
    # Prometheus watches the file: replace it in one rename so it never reads a half-written list.
    tmp = f"{args.output}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(document)
    os.replace(tmp, args.output)
    print(f"{args.output}: {len(targets)} targets", file=sys.stderr)
    return EXIT_OK


def cmd_smart_snapshot(args: argparse.Namespace) -> int:
    """Run as root by shaobing-smart.service: each disk's smartctl answer into a directory the agent reads."""
    import shutil
    from pathlib import Path

    from agent.collectors.smart import SmartCollector, SmartOptions
    from agent.smart_snapshot import write_snapshot

    try:
        config, _ = _resolve_config(args.config)
    except SchemaError as exc:
        return _config_error(exc)
    _setup_logging("warning")
    opts = config.options_for(SmartCollector)
    assert isinstance(opts, SmartOptions)
    smartctl = shutil.which(opts.smartctl)
    if smartctl is None:
        print(f"{opts.smartctl}: 未安装 smartmontools (not found)", file=sys.stderr)
        return EXIT_FAILED
    out = Path(args.output or opts.snapshot_dir)
    try:
        snap = write_snapshot(out, smartctl, opts.devices, opts.device_timeout)
    except OSError as exc:
        print(f"{out}: 无法写入快照 (cannot write the snapshot): {exc}", file=sys.stderr)
        return EXIT_FAILED
    unread = sum(1 for _, doc, _ in snap.devices if doc is None)
    print(f"{out}: {len(snap.devices)} disks, {unread} unreadable")
    return EXIT_OK


def cmd_version(args: argparse.Namespace) -> int:
    import platform

    print(f"shaobing {__version__} (python {platform.python_version()})")
    return EXIT_OK


def _commands(parser: argparse.ArgumentParser, dest: str) -> Any:
    sub = parser.add_subparsers(dest=dest)
    sub.required = True  # add_subparsers(required=) is Python 3.7+
    return sub


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shaobing", description="哨兵 Shaobing: township server monitoring agent")
    sub = _commands(parser, "command")

    agent = _commands(sub.add_parser("agent", help="run the agent"), "agent_command")
    run = agent.add_parser("run", help="run the agent and serve /metrics")
    run.add_argument("--config", help=f"configuration file (default {DEFAULT_CONFIG_PATH}, optional)")
    run.set_defaults(func=cmd_run)
    once = agent.add_parser("once", help="collect once and print the exposition")
    once.add_argument("--config")
    once.add_argument("--collector", action="append", help="only this collector (repeatable)")
    once.set_defaults(func=cmd_once)

    scan = sub.add_parser("scan", help="print the full local report (run as root)")
    scan.add_argument("--config")
    scan.add_argument("--baseline", metavar="NAME",
                      help="等保 2.0 self-check instead of the risk report: gbt22239-2 or gbt22239-3 (level)")
    scan.add_argument("--format", choices=("text", "json"), default="text", help="text (Chinese) or json")
    scan.set_defaults(func=cmd_scan)

    config = _commands(sub.add_parser("config", help="configuration tools"), "config_command")
    check = config.add_parser("check", help="validate a configuration file")
    check.add_argument("file")
    check.set_defaults(func=cmd_config_check)

    targets = sub.add_parser(
        "targets", help="inventory CSV (host,address,township,role[,site][,scheme]) -> file_sd JSON"
    )
    targets.add_argument("inventory")
    targets.add_argument("-o", "--output", help="write here (atomically) instead of standard output")
    targets.set_defaults(func=cmd_targets)

    smart = sub.add_parser("smart-snapshot",
                           help="as root: write each disk's SMART data where the hardened agent reads it")
    smart.add_argument("--config")
    smart.add_argument("--output", help="directory (default: collectors.smart.snapshot_dir)")
    smart.set_defaults(func=cmd_smart_snapshot)

    version = sub.add_parser("version", help="print the version")
    version.set_defaults(func=cmd_version)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
