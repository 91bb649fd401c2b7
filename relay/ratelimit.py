"""Per-destination send budgets.

Each destination (a chat robot, or one person's phone for SMS) has one or more windows such as
"20 per 60 s". The budget is a token bucket whose spent tokens come back exactly one window after
they were spent (a sliding-window log): a classic refill-rate bucket would allow up to twice the
limit across a window boundary, and DingTalk answers that with a 10-minute block. Windows are
stretched by 10 % (at most 1 s) because the provider counts arrivals, and network jitter can
bring two of our sends closer together than we spaced them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

__all__ = ["WindowLimiter"]


class WindowLimiter:
    def __init__(self) -> None:
        self._limits: dict[str, tuple[tuple[float, int], ...]] = {}
        self._sends: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    def configure(self, dest: str, limits: Sequence[tuple[float, int]]) -> None:
        self._limits[dest] = tuple((w + min(0.1 * w, 1.0), n) for w, n in limits)
        self._sends.setdefault(dest, deque())

    def knows(self, dest: str) -> bool:
        return dest in self._limits

    def seed(self, sends: Iterable[tuple[str, float]]) -> None:
        """Restore recent sends from the store so a restart does not reset the budget."""
        for dest, at in sends:
            self._sends.setdefault(dest, deque()).append(at)

    def _horizon(self, dest: str) -> float:
        return max((w for w, _ in self._limits.get(dest, ())), default=0.0)

    def _prune(self, dest: str, now: float) -> deque[float]:
        sends = self._sends.setdefault(dest, deque())
        horizon = self._horizon(dest)
        while sends and sends[0] <= now - horizon:
            sends.popleft()
        return sends

    def available(self, dest: str, now: float) -> int:
        """How many sends may start now without breaking any window."""
        if self._blocked_until.get(dest, 0.0) > now:
            return 0
        sends = self._prune(dest, now)
        free = 1 << 30
        for window, limit in self._limits.get(dest, ()):
            used = sum(1 for at in sends if at > now - window)
            free = min(free, limit - used)
        return max(free, 0)

    def next_free(self, dest: str, now: float) -> float:
        """The earliest time at which at least one send is allowed."""
        earliest = max(now, self._blocked_until.get(dest, 0.0))
        sends = self._prune(dest, now)
        for window, limit in self._limits.get(dest, ()):
            inside = [at for at in sends if at > now - window]
            if len(inside) >= limit:
                # The oldest send that must expire for the count to drop below the limit.
                earliest = max(earliest, inside[len(inside) - limit] + window)
        return earliest

    def record(self, dest: str, at: float) -> None:
        self._sends.setdefault(dest, deque()).append(at)

    def forget(self, dest: str, at: float) -> None:
        """Take back a recorded send that never reached anyone."""
        sends = self._sends.get(dest)
        if sends is not None and at in sends:
            sends.remove(at)

    def block(self, dest: str, until: float) -> None:
        """The provider said we are too fast: spend nothing until `until`."""
        self._blocked_until[dest] = max(self._blocked_until.get(dest, 0.0), until)
