"""Running external commands with a hard timeout, so a hung ``dnf`` or ``sshd -T`` cannot hang the agent."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

__all__ = ["CommandResult", "CommandError", "run"]


class CommandError(Exception):
    """The command could not be started, or it ran past its timeout (it has been killed)."""


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


def run(
    argv: Sequence[str],
    timeout: float,
    env: Optional[Mapping[str, str]] = None,
    input_text: Optional[str] = None,
) -> CommandResult:
    """Run ``argv`` (never through a shell) and return its output; kill its whole process group on timeout.

    The environment defaults to a C/UTF-8 locale so that parsers see the untranslated output.
    """
    run_env = dict(os.environ if env is None else env)
    run_env.setdefault("LC_ALL", "C.UTF-8")
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=run_env,
            start_new_session=True,  # its own process group, so a timeout kills its children too
            universal_newlines=True,
            errors="replace",
        )
    except OSError as exc:
        raise CommandError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
    try:
        out, err = proc.communicate(input=input_text, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        raise CommandError(f"{argv[0]} did not finish within {timeout:g}s and was killed") from None
    return CommandResult(proc.returncode, out, err)
