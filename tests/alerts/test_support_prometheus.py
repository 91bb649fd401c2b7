"""The shared Prometheus/Alertmanager test support works against the real binaries."""

from __future__ import annotations

from pathlib import Path

from tests.support.prometheus import (
    AlertmanagerServer,
    PrometheusServer,
    free_port,
    prometheus_config,
    scrape_config,
)


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 1024 <= port <= 65535


def test_prometheus_and_alertmanager_start_query_and_stop(tmp_path: Path) -> None:
    am_cfg = {"route": {"receiver": "null"}, "receivers": [{"name": "null"}]}
    with AlertmanagerServer(tmp_path / "am", am_cfg) as am:
        cfg = prometheus_config([scrape_config("self", ["127.0.0.1:1"])], alertmanagers=[f"127.0.0.1:{am.port}"])
        with PrometheusServer(tmp_path / "prom", cfg) as prom:
            assert prom.query_value("vector(42)") == 42.0
            assert prom.query("1 + 1")[0]["value"][1] == "2"
            # The unreachable target is reported down, which proves scraping runs.
            prom.wait_for_targets(job="self", health="down", timeout=10)
            prom.reload()
            proc = prom.proc
        assert proc is not None and proc.poll() is not None
        am.post_alerts([{"labels": {"alertname": "SupportSelfTest", "township": "t"}}])
        alerts = am.wait_for_alerts(lambda a: any(x["labels"]["alertname"] == "SupportSelfTest" for x in a))
        assert alerts[0]["receivers"][0]["name"] == "null"
