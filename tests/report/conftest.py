"""A real Prometheus on a planted week of history (tests/report/history.py), shared by the report tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from report.period import TZ
from tests.report.history import DAY, HostPlan, build_tsdb, plans
from tests.support.prometheus import PrometheusServer

PERIOD = 7 * DAY


@dataclass(frozen=True)
class Week:
    start: int
    end: int
    url: str
    plans: list[HostPlan]
    workdir: Path

    def plan(self, instance: str) -> HostPlan:
        return next(p for p in self.plans if p.instance == instance)

    @property
    def args(self) -> list[str]:
        """The period as command-line options (ISO with offset, as an operator would type it)."""
        iso = lambda t: dt.datetime.fromtimestamp(t, TZ).isoformat()  # noqa: E731
        return ["--from", iso(self.start), "--to", iso(self.end)]


@pytest.fixture(scope="session")
def week(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Week]:
    # The period is the last seven whole days in Asia/Shanghai, as `--last 7d` would choose.
    end = int(dt.datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
    start = end - PERIOD
    work = tmp_path_factory.mktemp("report-week")
    host_plans = plans(PERIOD)
    build_tsdb(work / "data", start, PERIOD, host_plans, work)
    config = {"global": {"scrape_interval": "15s"}, "scrape_configs": []}
    server = PrometheusServer(work, config, extra_args=["--storage.tsdb.retention.time=90d"])
    server.start(timeout=60)
    try:
        yield Week(start, end, server.url, host_plans, work)
    finally:
        server.stop()
