"""Concatenated SMS put back together (3GPP TS 23.040 9.2.3.24.1): parts of one message share a destination and
a reference, and carry (reference, total, number). Shared by the SMSC stand-in and the modem emulator."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

M = TypeVar("M")


def reassemble(parts: Sequence[Any], message: Callable[[str, str, list[Any]], M]) -> list[M]:
    """Complete messages in the order their last part arrived; single-part ones as they are."""
    out: list[M] = []
    groups: dict[tuple[str, int], list[Any]] = {}
    for part in parts:
        if part.udh is None:
            out.append(message(part.destination, part.text, [part]))
            continue
        key = (part.destination, part.udh[0])
        groups.setdefault(key, []).append(part)
        if len(groups[key]) == part.udh[1]:
            ordered = sorted(groups.pop(key), key=lambda p: p.udh[2])
            out.append(message(part.destination, "".join(p.text for p in ordered), ordered))
    return out
