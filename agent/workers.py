"""Threads kept for short jobs that must stay bounded in time: collector runs, statfs calls.

The caller waits for its job with a timeout (an Event the job sets); a job that never returns keeps its
thread and nothing else, so a hung NFS mount or collector costs one thread, as a thread of its own would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from queue import Empty

from agent.compat import SimpleQueue

__all__ = ["WORKERS", "Workers"]


class Workers:
    """Threads kept between jobs: a job borrows an idle one (or starts one) and the thread puts itself back when
    the job ends. Starting a thread per job cost ~0.2 ms of CPU, as much as many node families' whole
    collect(). A job that hangs keeps its thread (it is not idle), so a caller's timeout leaves it behind
    exactly as a thread of its own would; a thread idle for IDLE_EXIT seconds ends."""

    IDLE_EXIT = 120.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[SimpleQueue[tuple[str, Callable[[], None]]]] = []

    def submit(self, job: Callable[[], None], name: str) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), name=name, daemon=True).start()
        inbox.put((name, job))

    def _serve(self, inbox: SimpleQueue[tuple[str, Callable[[], None]]]) -> None:
        while True:
            try:
                job = inbox.get(timeout=self.IDLE_EXIT)
            except Empty:
                with self._lock:
                    if inbox in self._idle:
                        self._idle.remove(inbox)
                        return
                continue  # handed a job just as the wait ended: it is in the inbox
            threading.current_thread().name = job[0]  # what a stack dump or log line shows: the job
            try:
                job[1]()
            finally:
                threading.current_thread().name = "worker-idle"
                with self._lock:
                    self._idle.append(inbox)


WORKERS = Workers()  # the agent's one pool: collector runs and the health collector's statfs calls
