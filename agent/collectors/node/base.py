"""What every node_exporter family shares: the /proc and /sys roots (node_exporter's --path.procfs and
--path.sysfs; tests point them at fixture trees) and reading one file once per cycle."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Optional

from agent.collector import AgentContext, Collector, CollectorOptions, NotApplicable

__all__ = ["NodeFamily"]

_MAX_FILE = 1 << 20  # no /proc or /sys file of these families is anywhere near 1 MiB


class NodeFamily(Collector):
    """A node_exporter family read from procfs/sysfs. Subclasses name the file that must exist for the family
    to apply (``requires``, relative to the proc root); without it the collector is not applicable (and says
    which file is missing), as node_exporter's collector logs "... unavailable" and exports nothing."""

    default_interval = 15.0
    default_timeout = 5.0
    requires: ClassVar[str] = ""

    def __init__(self, options: CollectorOptions, context: AgentContext, *, proc_root: str = "/proc",
                 sys_root: str = "/sys") -> None:
        super().__init__(options, context)
        self.proc = Path(proc_root)
        self.sys = Path(sys_root)

    def read(self, path: Path) -> Optional[str]:
        """The file's text, or None when it does not exist or cannot be read."""
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                return fh.read(_MAX_FILE)
        except OSError:
            return None

    def read_required(self) -> str:
        text = self.read(self.proc / self.requires)
        if text is None:
            raise NotApplicable(f"{self.proc / self.requires} is not readable on this host")
        return text
