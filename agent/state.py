"""Small private state files under ``state_dir``: written whole (atomic rename), readable only by the agent."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from agent.compat import unlink_missing

__all__ = ["host_key", "write_private_json"]


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


def host_key(path: Path) -> bytes:
    """The 32-byte random secret in ``path`` (0600, directory 0700), made on first use or when the file is
    shorter (truncated). link() publishes it, so when `shaobing scan` and the agent race, one key wins."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    if len(data) >= 32:
        return data
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = os.urandom(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    try:
        os.link(tmp, path)  # fails if a key exists
    except FileExistsError:
        existing = path.read_bytes()
        if len(existing) >= 32:
            data = existing
        else:
            os.replace(tmp, path)  # a truncated one
    finally:
        unlink_missing(tmp)
    return data
