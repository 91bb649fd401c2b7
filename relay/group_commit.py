"""Group commit for ingest: concurrent webhooks share one SQLite transaction (and one fsync).

A request's future resolves only after the transaction holding its alerts has committed, so the
2xx still means "on disk"; if the commit fails, every request in the batch gets the error (503).
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time

from relay.store import Store, Webhook

__all__ = ["GroupCommitter"]

_Job = tuple[Webhook, "concurrent.futures.Future[tuple[int, int]]"]


class GroupCommitter:
    def __init__(self, store: Store, max_batch: int = 256) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="relay-ingest-commit", daemon=True)
        self._thread.start()

    def submit(self, webhook: Webhook) -> concurrent.futures.Future[tuple[int, int]]:
        future: concurrent.futures.Future[tuple[int, int]] = concurrent.futures.Future()
        self._queue.put((webhook, future))
        return future

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch: list[_Job] = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            try:
                results = self.store.ingest_many([webhook for webhook, _ in batch], time.time())
            except Exception as exc:
                for _, future in batch:
                    future.set_exception(exc)
            else:
                for (_, future), result in zip(batch, results):
                    future.set_result(result)
            if stop:
                return
