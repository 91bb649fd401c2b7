"""Run a collector the way ``shaobing scan`` does before asking it for its report."""

from __future__ import annotations

from agent.collector import Collector
from agent.exporter import ExpositionCache
from agent.scheduler import RunResult, Scheduler

__all__ = ["run_once"]


def run_once(collector: Collector) -> RunResult:
    """One run through the real scheduler (its own thread, its timeout); the collector keeps its result."""
    results = Scheduler([collector], ExpositionCache()).run_all_once()
    assert len(results) == 1
    return results[0]
