"""What every node_exporter family shares: the /proc and /sys roots (node_exporter's --path.procfs and
--path.sysfs; tests point them at fixture trees) and reading one file once per cycle."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Optional, Union

from agent.collector import AgentContext, Collector, CollectorOptions, NotApplicable

__all__ = ["NodeFamily"]

_MAX_FILE = 1 << 20  # no /proc or /sys file of these families is anywhere near 1 MiB
_CHUNK = 64 << 10


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

    def read(self, path: Union[str, Path]) -> Optional[str]:
        """The file's text (at most _MAX_FILE bytes), or None when it does not exist or cannot be read.

        Read with os.read in 64 KiB steps: a buffered ``read(1 MiB)`` allocates (and maps) the whole MiB each
        time, ~0.3 ms for a one-line sysctl file against ~15 us this way, and the families read ~60 files a
        cycle."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            chunks = []
            size = 0
            while size < _MAX_FILE:
                chunk = os.read(fd, min(_CHUNK, _MAX_FILE - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError:
            return None
        finally:
            os.close(fd)
        return (chunks[0] if len(chunks) == 1 else b"".join(chunks)).decode("utf-8", errors="replace")

    def read_required(self) -> str:
        text = self.read(self.proc / self.requires)
        if text is None:
            raise NotApplicable(f"{self.proc / self.requires} is not readable on this host")
        return text
