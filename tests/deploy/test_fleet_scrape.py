"""One fleet, one job: the shipped central ``shaobing`` job scrapes a TLS agent and a plain-HTTP agent.

A county installs every township with the same ``--password-file`` and most of them with a certificate from
the county CA; the few without a certificate get ``scheme=http`` in the inventory. The alert rules select
``job="shaobing"``, so both kinds must be scraped by that one job: ``shaobing targets`` turns the ``scheme``
column into ``__scheme__``, which Prometheus applies per target. Real agents, real Prometheus (Debian 12's
2.42), the job taken from deploy/central/prometheus.yml with its relative file paths unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from agent.cli import main
from tests.support.agent import AgentProcess
from tests.support.prometheus import PrometheusServer, prometheus_config
from tests.support.tls import make_ca, make_cert

REPO = Path(__file__).resolve().parents[2]
CENTRAL = REPO / "deploy" / "central" / "prometheus.yml"
PASSWORD = "fleet-wide scrape password"  # what the centre keeps in secrets/agent_scrape_password


def _shipped_job() -> dict[str, Any]:
    doc = yaml.safe_load(CENTRAL.read_text(encoding="utf-8"))
    (job,) = [j for j in doc["scrape_configs"] if j["job_name"] == "shaobing"]
    assert isinstance(job, dict)
    return job


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[tuple[AgentProcess, AgentProcess, Path]]:
    ca = make_ca(tmp_path / "pki", "county-ca")
    cert = make_cert(tmp_path / "pki", "agent", ca, hosts=["127.0.0.1", "localhost"])
    users = {"prometheus": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()}
    tls_web = {"basic_auth_users": users,
               "tls_server_config": {"cert_file": str(cert.cert_file), "key_file": str(cert.key_file)}}
    with AgentProcess(tmp_path / "tls-agent", {"labels": {"township": "城关镇"}}, web_config=tls_web) as tls, \
            AgentProcess(tmp_path / "http-agent", {"labels": {"township": "河口乡"}},
                         web_config={"basic_auth_users": users}) as plain:
        yield tls, plain, ca.cert_file


def test_shipped_job_scrapes_tls_and_http_agents(agents: tuple[AgentProcess, AgentProcess, Path],
                                                  tmp_path: Path) -> None:
    tls, plain, ca_file = agents
    assert tls.tls and not plain.tls
    inventory = tmp_path / "inventory.csv"
    inventory.write_text("host,address,township,role,site,scheme\n"
                         f"cg-web-01,{tls.target},城关镇,web,镇政府机房,\n"   # empty: the job's https
                         f"hk-file-01,{plain.target},河口乡,file,,http\n", encoding="utf-8")
    targets_json = tmp_path / "townships.json"
    assert main(["targets", str(inventory), "-o", str(targets_json)]) == 0

    job = _shipped_job()
    assert job["scheme"] == "https"
    # The shipped relative paths are kept: Prometheus resolves them against its config's directory, where the
    # test writes the files under the same names an operator would.
    files = {job["basic_auth"]["password_file"]: PASSWORD + "\n",
             job["tls_config"]["ca_file"]: ca_file.read_text(encoding="utf-8")}
    (sd_glob,) = job["file_sd_configs"][0]["files"]
    files[sd_glob.replace("*", "townships")] = targets_json.read_text(encoding="utf-8")
    config = prometheus_config([job])
    with PrometheusServer(tmp_path / "prom", config, files=files) as prom:
        up = prom.wait_for('up{job="shaobing"} == 1', lambda r: len(r) == 2, timeout=20)
        scrape_urls = {t["labels"]["host"]: t["scrapeUrl"] for t in prom.targets()}
    assert {s["metric"]["township"]: s["metric"]["host"] for s in up} == {"城关镇": "cg-web-01",
                                                                          "河口乡": "hk-file-01"}
    assert scrape_urls == {"cg-web-01": f"https://{tls.target}/metrics",
                           "hk-file-01": f"http://{plain.target}/metrics"}
    # The per-target scheme is consumed by Prometheus, not stored as a label on the series.
    assert all("__scheme__" not in s["metric"] and "scheme" not in s["metric"] for s in up)
    assert json.loads(targets_json.read_text(encoding="utf-8"))[1]["labels"]["__scheme__"] == "http"
