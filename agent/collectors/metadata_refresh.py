"""Optional slow job: refresh the package metadata (``apt-get update`` / ``dnf makecache``). Off by default.

Most hosts refresh their metadata on their own (apt-daily.timer, dnf-makecache.timer); where none does, the
``updates`` collector would report from ever older data (its ``shaobing_package_metadata_timestamp_seconds``
shows how old). Turning this on closes that gap::

    collectors:
      metadata_refresh: {enabled: true, interval: 1d}

It exports nothing of its own: success and duration are the scheduler's ``shaobing_collector_*{collector=
"metadata_refresh"}``, and the effect shows in the metadata timestamp. Never part of the ``updates`` run, so a
slow mirror cannot delay or fail the pending-update counts.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

from agent.catalog import MetricSet
from agent.collector import AgentContext, Collector, CollectorOptions, NotApplicable
from agent.compat import Literal
from agent.process import run

__all__ = ["MetadataRefreshCollector", "MetadataRefreshOptions"]


@dataclass
class MetadataRefreshOptions(CollectorOptions):
    manager: Literal["auto", "apt", "dnf", "yum"] = "auto"
    apt_options: list[str] = field(default_factory=list)  # the same "-o Key=Value" list as the updates collector
    command_timeout: float = field(default=1500.0, metadata={"duration": True, "min": 1.0})


class MetadataRefreshCollector(Collector):
    """Refreshes package metadata on a slow interval when enabled (see module doc); exports no samples."""

    name = "metadata_refresh"
    options_class = MetadataRefreshOptions
    default_interval = 86400.0
    default_timeout = 1800.0
    default_jitter = 3600.0
    default_enabled = False
    metrics = ()

    def __init__(self, options: MetadataRefreshOptions, context: AgentContext) -> None:
        super().__init__(options, context)
        self.opts = options

    def collect(self, out: MetricSet) -> None:
        manager: str = self.opts.manager
        if manager == "auto":
            found = [m for m in ("apt", "dnf", "yum") if shutil.which("apt-get" if m == "apt" else m)]
            manager = found[0] if found else "auto"
        if manager == "apt":
            argv = ["apt-get", "update", "-q"]
            for option in self.opts.apt_options:
                argv += ["-o", option]
        elif manager in ("dnf", "yum"):
            argv = [manager, "-q", "makecache"]
        else:
            raise NotApplicable("no apt-get, dnf or yum on this host")
        result = run(argv, self.opts.command_timeout, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {last}")
