"""Small private state files under ``state_dir``: written whole (atomic rename), readable only by the agent."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["write_private_json"]


def write_private_json(path: Path, doc: Any, **dump_options: Any) -> None:
    """Write ``doc`` as JSON to ``path``: directory 0700, file 0600, replaced atomically so a reader (or a crash)
    never sees half a file. Concurrent writers each use their own temporary file; the last rename wins."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, **dump_options)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
