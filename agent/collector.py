"""The collector contract: what every file in ``agent/collectors/`` implements.

A collector is constructed once per configuration with its validated options and the agent context, and
its ``collect`` is called by the scheduler on its own interval, in its own thread, under a hard timeout.
It writes samples into the ``MetricSet`` it is given; the scheduler renders them and swaps them into the
served page only when the run succeeded. Raise ``NotApplicable`` when the host has nothing for it to look
at (no apt on a RHEL host): that is reported as ``shaobing_collector_applicable 0``, not as a failure.
``shaobing scan`` runs every collector once through the same scheduler, then asks each successful one
for its ``report``: the report describes that run and never collects on its own.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Optional

from agent.catalog import MetricSet, MetricSpec

if TYPE_CHECKING:
    from agent.report import Section

__all__ = ["Collector", "CollectorOptions", "AgentContext", "NotApplicable", "MissingDependency"]


class NotApplicable(Exception):
    """Raised by ``collect`` when there is nothing for this collector on this host."""


class MissingDependency(NotApplicable):
    """The check applies here but cannot run: a compiled module is not installed (agent/optional.py). Exported
    as not applicable; ``shaobing scan`` says it could not check, and why."""


@dataclass
class CollectorOptions:
    """Options every collector accepts under ``collectors.<name>`` in agent.yml.

    Subclass it (as a dataclass) to add a collector's own options; ``agent.config`` validates every field by
    its type annotation. Durations are written as ``15s``, ``5m``, ``6h``, ``1d`` or a number of seconds;
    mark a float field as a duration with ``field(metadata={"duration": True})``.
    """

    enabled: bool = True
    interval: Optional[float] = field(default=None, metadata={"duration": True, "min": 1.0})
    timeout: Optional[float] = field(default=None, metadata={"duration": True, "min": 0.1})
    jitter: Optional[float] = field(default=None, metadata={"duration": True, "min": 0.0})

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field checks beyond types: ``(key, message)`` pairs; the key is relative to this section."""
        return []


@dataclass
class AgentContext:
    """What a collector may need from the agent beyond its own options."""

    state_dir: Path
    hostname: str = field(default_factory=socket.gethostname)
    clock: Callable[[], float] = time.time
    # Opt-in from the operator: per-account series with masked names (see the password audit).
    expose_masked_names: bool = False
    # The values of the agent's labels (township, site ...): the site's own names, for the password check.
    site_labels: tuple[str, ...] = ()
    # The samples of another collector's last successful run, by name (None when it has not succeeded, is
    # disabled or does not exist). Set by ``build_collectors``; read-only for the caller.
    peers: Callable[[str], Optional[MetricSet]] = field(default=lambda name: None)


class Collector:
    """Base class for collectors. Subclasses set the class attributes and implement ``collect``."""

    name: ClassVar[str] = ""
    # The heading of this collector's section in ``shaobing scan`` (Chinese, English beside it).
    title: ClassVar[str] = ""
    metrics: ClassVar[Sequence[MetricSpec]] = ()
    options_class: ClassVar[type[CollectorOptions]] = CollectorOptions
    default_interval: ClassVar[float] = 15.0
    default_timeout: ClassVar[float] = 10.0
    default_jitter: ClassVar[float] = 0.0
    # Disabled unless the operator turns it on (e.g. an optional slow job).
    default_enabled: ClassVar[bool] = True
    # Collectors whose results this one reads (through ``context.peers``): its first run waits until each of
    # them has finished one run (at most ``peer_wait`` seconds), and ``run_all_once`` runs it after them.
    waits_for: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: CollectorOptions, context: AgentContext) -> None:
        self.options = options
        self.context = context
        # The samples of the last successful run, set by the scheduler (None until one has succeeded).
        self.last_metrics: Optional[MetricSet] = None

    @property
    def interval(self) -> float:
        return self.options.interval if self.options.interval is not None else self.default_interval

    @property
    def timeout(self) -> float:
        return self.options.timeout if self.options.timeout is not None else self.default_timeout

    @property
    def jitter(self) -> float:
        return self.options.jitter if self.options.jitter is not None else self.default_jitter

    @property
    def peer_wait(self) -> float:
        """How long the first run waits for the ``waits_for`` collectors (an option where a collector has it)."""
        value = getattr(self.options, "peer_wait", None)
        return float(value) if value is not None else 900.0

    def new_metric_set(self) -> MetricSet:
        return MetricSet(self.metrics)

    def collect(self, out: MetricSet) -> None:
        raise NotImplementedError

    def report(self) -> Optional[Section]:
        """A section of ``shaobing scan``'s console report.

        Called by ``shaobing scan`` after the scheduler has run this collector once, under its timeout.
        Report on that run (``self.last_metrics`` and whatever state collect() kept); return None when
        there is nothing to say. Never collect here.
        """
        return None

    def close(self) -> None:
        """Release resources (child processes, clients) when the configuration is replaced."""
