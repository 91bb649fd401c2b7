"""A real Prometheus scrapes the real agent over TLS with basic auth; node-mixin expressions work on it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from tests.support.agent import AgentProcess
from tests.support.prometheus import PrometheusServer, prometheus_config, scrape_config
from tests.support.tls import Issued, make_ca, make_cert

pytestmark = pytest.mark.integration

PASSWORD = "Correct-Horse-10130"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Issued, Issued]:
    tmp = tmp_path_factory.mktemp("pki")
    ca = make_ca(tmp)
    return tmp, ca, make_cert(tmp, "agent", ca, hosts=["127.0.0.1", "localhost"])


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, pki: tuple[Path, Issued, Issued]) -> Iterator[AgentProcess]:
    _, _, cert = pki
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
    web = {
        "tls_server_config": {"cert_file": str(cert.cert_file), "key_file": str(cert.key_file)},
        "basic_auth_users": {"prometheus": hashed},
    }
    config = {"collectors": {"health": {"interval": "1s"}, "self": {"interval": "1s"}}}
    with AgentProcess(tmp_path_factory.mktemp("agent"), config, web_config=web) as proc:
        yield proc


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory, agent: AgentProcess,
         pki: tuple[Path, Issued, Issued]) -> Iterator[PrometheusServer]:
    _, ca, _ = pki
    tls = {"ca_file": str(ca.cert_file)}
    good = scrape_config("shaobing", [agent.target], scheme="https", labels={"township": "测试镇"},
                         tls_config=tls, basic_auth={"username": "prometheus", "password_file": "good.pw"})
    bad = scrape_config("shaobing-wrong-password", [agent.target], scheme="https", tls_config=tls,
                        basic_auth={"username": "prometheus", "password_file": "bad.pw"})
    with PrometheusServer(tmp_path_factory.mktemp("prom"), prometheus_config([good, bad]),
                          files={"good.pw": PASSWORD, "bad.pw": "not-it"}) as server:
        server.wait_for_targets(job="shaobing", health="up", timeout=60)
        yield server


def test_up_with_right_credentials_down_with_wrong(prom: PrometheusServer) -> None:
    assert prom.wait_for('up{job="shaobing"} == 1', timeout=30)
    res = prom.wait_for('up{job="shaobing-wrong-password"}', timeout=30)
    assert float(res[0]["value"][1]) == 0
    target = [t for t in prom.targets() if t["labels"]["job"] == "shaobing-wrong-password"][0]
    assert "401" in target["lastError"]


def _meminfo_kib(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def test_node_series_hold_real_values(prom: PrometheusServer) -> None:
    total = prom.wait_for('node_memory_MemTotal_bytes{job="shaobing"}', timeout=30)
    assert float(total[0]["value"][1]) == _meminfo_kib("MemTotal") * 1024
    cpus = prom.query_value('count(node_cpu_seconds_total{job="shaobing",mode="idle"})')
    assert cpus == os.cpu_count()
    boot = prom.query_value('node_boot_time_seconds{job="shaobing"}')
    assert boot is not None and 0 < time.time() - boot < 10 * 365 * 86400
    clock = prom.query_value('node_time_seconds{job="shaobing"}')
    assert clock is not None and abs(clock - time.time()) < 60
    root = prom.query_value('node_filesystem_size_bytes{job="shaobing",mountpoint="/"}')
    st = os.statvfs("/")
    assert root == st.f_blocks * st.f_frsize
    assert prom.query('node_uname_info{job="shaobing"}')[0]["metric"]["release"] == os.uname().release
    assert prom.query_value('shaobing_collector_success{job="shaobing",collector="health"}') == 1
    # Target labels from the scrape config arrive on every series.
    assert prom.query('node_load1{job="shaobing"}')[0]["metric"]["township"] == "测试镇"


# node_exporter's docs/node-mixin expressions (alerts and recording rules) with its job selector set to ours.
# Each must return at least one series for our agent; thresholds are dropped so that a healthy host answers.
SEL = 'job="shaobing"'
FS = f'{SEL},fstype!="",mountpoint!=""'
NODE_MIXIN = {
    "NodeFilesystemSpaceFillingUp (usage)": f"node_filesystem_avail_bytes{{{FS}}} / node_filesystem_size_bytes{{{FS}}} * 100",
    "NodeFilesystemSpaceFillingUp (prediction)": f"predict_linear(node_filesystem_avail_bytes{{{FS}}}[6h], 24*60*60)",
    "NodeFilesystem* (readonly guard)": f"node_filesystem_readonly{{{FS}}} == 0",
    "NodeFilesystemFilesFillingUp": f"node_filesystem_files_free{{{FS}}} / node_filesystem_files{{{FS}}} * 100",
    "instance:node_num_cpu:sum": f'count without (cpu, mode) (node_cpu_seconds_total{{{SEL},mode="idle"}})',
    "instance:node_cpu_utilisation:rate5m": (
        f'1 - avg without (cpu) (sum without (mode) (rate(node_cpu_seconds_total{{{SEL}, mode=~"idle|iowait|steal"}}[5m])))'
    ),
    "instance:node_load1_per_cpu:ratio / NodeSystemSaturation": (
        f'node_load1{{{SEL}}} / count without (cpu, mode) (node_cpu_seconds_total{{{SEL}, mode="idle"}})'
    ),
    "instance:node_memory_utilisation:ratio": (
        f"1 - ((node_memory_MemAvailable_bytes{{{SEL}}} or (node_memory_Buffers_bytes{{{SEL}}} + "
        f"node_memory_Cached_bytes{{{SEL}}} + node_memory_MemFree_bytes{{{SEL}}} + node_memory_Slab_bytes{{{SEL}}}))"
        f" / node_memory_MemTotal_bytes{{{SEL}}})"
    ),
    "NodeMemoryHighUtilization": (
        f"100 - (node_memory_MemAvailable_bytes{{{SEL}}} / node_memory_MemTotal_bytes{{{SEL}}} * 100)"
    ),
    "NodeMemoryMajorPagesFaults": f"rate(node_vmstat_pgmajfault{{{SEL}}}[5m])",
    "instance:node_vmstat_pgmajfault:rate5m": f"rate(node_vmstat_pgmajfault{{{SEL}}}[5m])",
    "NodeNetworkReceiveErrs": (
        f"rate(node_network_receive_errs_total{{{SEL}}}[2m]) / rate(node_network_receive_packets_total{{{SEL}}}[2m])"
    ),
    "NodeNetworkTransmitErrs": (
        f"rate(node_network_transmit_errs_total{{{SEL}}}[2m]) / rate(node_network_transmit_packets_total{{{SEL}}}[2m])"
    ),
    "instance:node_network_receive_drop_excluding_lo:rate5m": (
        f'sum without (device) (rate(node_network_receive_drop_total{{{SEL}, device!="lo"}}[5m]))'
    ),
    "instance_device:node_disk_io_time_seconds:rate5m": f'rate(node_disk_io_time_seconds_total{{{SEL}, device!=""}}[5m])',
    "NodeClockSkewDetected": f"node_timex_offset_seconds{{{SEL}}}",
    "NodeClockNotSynchronising": (
        f"min_over_time(node_timex_sync_status{{{SEL}}}[5m]) == 0 and node_timex_maxerror_seconds{{{SEL}}} >= 0"
        f" or min_over_time(node_timex_sync_status{{{SEL}}}[5m]) == 1"
    ),
}


@pytest.mark.parametrize("name", sorted(NODE_MIXIN))
def test_node_mixin_expression_returns_series(prom: PrometheusServer, name: str) -> None:
    expr = NODE_MIXIN[name]
    # Rates need two samples in their window: the agent refreshes every second, Prometheus scrapes every second.
    result = prom.wait_for(expr, timeout=30)
    assert result, f"{name}: {expr} returned nothing"
    assert all(r["metric"].get("instance") == prom.query('up{job="shaobing"}')[0]["metric"]["instance"]
               for r in result if "instance" in r["metric"])
