"""The running agent: configuration, collectors, scheduler and HTTP endpoint, with SIGHUP reload."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Optional

from agent.catalog import MetricSet
from agent.collector import AgentContext, Collector
from agent.collectors import registry
from agent.config import AgentConfig, load_config, parse_listen
from agent.exporter import ExpositionCache, MetricsServer
from agent.push import Pusher
from agent.scheduler import Scheduler
from agent.schema import SchemaError
from agent.webconfig import WebConfig, downgrade, load_web_config

__all__ = ["Agent", "build_collectors", "resolve_state_dir"]

log = logging.getLogger(__name__)


def resolve_state_dir(wanted: str) -> Path:
    """The configured state directory, or a per-user one when it cannot be created (a non-root trial run)."""
    path = Path(wanted)
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    fallback = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "shaobing"
    fallback.mkdir(parents=True, exist_ok=True, mode=0o700)
    log.warning("state directory %s is not writable; using %s", wanted, fallback)
    return fallback


def build_collectors(config: AgentConfig, only: Optional[set[str]] = None) -> list[Collector]:
    context = AgentContext(
        state_dir=resolve_state_dir(config.state_dir),
        expose_masked_names=config.expose_masked_names,
        site_labels=tuple(config.labels.values()),
    )
    collectors: list[Collector] = []
    for cls in registry():
        opts = config.options_for(cls)
        if only is not None:
            if cls.name not in only:
                continue
        elif not opts.enabled:
            continue
        collectors.append(cls(opts, context))
    by_name = {c.name: c for c in collectors}

    def peers(name: str) -> Optional[MetricSet]:
        peer = by_name.get(name)
        return peer.last_metrics if peer is not None else None

    context.peers = peers
    return collectors


def load_web(config: AgentConfig) -> WebConfig:
    return load_web_config(config.web_config_file) if config.web_config_file else WebConfig()


class Agent:
    def __init__(self, config: AgentConfig, config_path: Optional[str]) -> None:
        self.config = config
        self.config_path = config_path
        self.cache = ExpositionCache()
        self.server = MetricsServer(self.cache)
        self.scheduler: Optional[Scheduler] = None
        self.pusher: Optional[Pusher] = None
        self.web = WebConfig()
        self._stop = threading.Event()
        self._reload = threading.Event()

    def start(self) -> None:
        web = load_web(self.config)
        host, port = parse_listen(self.config.listen_address)
        # Bind first: a port already in use is reported before any collector starts. Scrapes from then on wait
        # (bounded) for the first round, which the scheduler built below takes over: one arriving while the
        # collectors are still being built got an empty page.
        self.cache.begin_first_round()
        self.server.start(host, port, web)
        self.web = web
        self.scheduler = Scheduler(build_collectors(self.config), self.cache)
        self.scheduler.start()
        self._start_pusher(self.config)

    def _start_pusher(self, config: AgentConfig) -> None:
        if self.pusher is not None:
            self.pusher.stop()
            self.pusher = None
        if config.push is not None:
            self.pusher = Pusher(config.push, self.cache, resolve_state_dir(config.state_dir), config.labels)
            self.pusher.start()

    @staticmethod
    def _signal_pipe() -> Optional[int]:
        if os.name != "posix":
            return None
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        signal.set_wakeup_fd(write_end)
        return read_end

    def reload(self) -> bool:
        """Re-read the configuration; on any problem keep running the old one and say why."""
        if self.config_path is None:
            log.info("SIGHUP: running without a configuration file, nothing to reload")
            return False
        try:
            new = load_config(self.config_path)
            web = load_web(new)
            parse_listen(new.listen_address)
        except SchemaError as exc:
            log.error("reload failed, keeping the running configuration:\n%s", exc)
            return False
        lost = downgrade(self.web, web)
        if lost and new.web_config_file is not None:
            # Only removing web_config_file from agent.yml turns protection off: a file that lost its TLS or
            # users section (truncated, half-edited, wrong copy) must not open the endpoint.
            log.error("reload refused, keeping the running configuration: %s would turn off %s. To serve without "
                      "it on purpose, remove web_config_file from %s", new.web_config_file, " and ".join(lost),
                      self.config_path)
            return False
        if lost:
            log.warning("web_config_file removed from %s: serving without %s", self.config_path, " and ".join(lost))
        if new.listen_address != self.config.listen_address:
            log.warning("listen_address changed to %s: restart the agent to apply it", new.listen_address)
        old = self.scheduler
        if old is not None:
            old.stop()
        scheduler = Scheduler(build_collectors(new), self.cache)
        self.cache.retain({r.name for r in scheduler.runners})
        scheduler.start()
        self.scheduler = scheduler
        self.server.update_web(web)
        self.web = web
        self.config = new
        try:
            self._start_pusher(new)
        except SchemaError as exc:
            log.error("push mode not restarted: %s", exc)
        logging.getLogger().setLevel(new.log_level.upper())
        log.info("configuration reloaded from %s", self.config_path)
        return True

    def run_forever(self) -> None:
        def on_signal(signum: int, _frame: object) -> None:
            (self._reload if signum == getattr(signal, "SIGHUP", None) else self._stop).set()

        for name in ("SIGHUP", "SIGTERM", "SIGINT"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), on_signal)
        wake_read = self._signal_pipe()
        self.start()
        while not self._stop.is_set():
            if wake_read is not None:
                # Sleep until a signal arrives, with no periodic wake-ups (on a small VM they cost more CPU than
                # the health collector). The kernel may deliver the signal to any thread; the C-level handler
                # writes it to the wake-up pipe, so the main thread wakes and runs the Python handler.
                os.read(wake_read, 512)
            else:
                self._stop.wait(1.0)  # no wake-up pipe (Windows): poll
            if self._reload.is_set():
                self._reload.clear()
                self.reload()
        log.info("stopping")
        if self.pusher is not None:
            self.pusher.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        self.server.stop()
