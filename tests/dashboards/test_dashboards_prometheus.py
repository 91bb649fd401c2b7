"""Every dashboard query, asked of a real Prometheus that scrapes a real agent and a real relay.

The Prometheus loads alert_rules/records.yml (the fleet dashboard reads the ``township:*`` roll-ups). The
agent runs every registered collector, probes a local HTTPS server (so TLS expiry has a value) and its own
port; the relay delivers one alert to a local webhook (so delivery counters move). Each query is sent as
Grafana would send it, with the variables replaced: it must parse, and it must return data unless every
metric it reads is one this machine cannot produce (``MAY_BE_ABSENT``) or the panel lists findings that a
healthy test machine does not have (``MAY_BE_EMPTY``), each with the reason.
"""

from __future__ import annotations

import http.server
import json
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dashboards.dashjson import (
    REPO,
    all_targets,
    label_values_query,
    load_all,
    metric_names,
    panels,
    substitute,
)
from tests.support.agent import AgentProcess
from tests.support.prometheus import PrometheusServer, free_port, prometheus_config, scrape_config
from tests.support.tls import make_ca, make_cert

pytestmark = pytest.mark.integration

TOWNSHIP = "测试镇"
# The same agent scraped a second time as another host in another township, so per-township roll-ups and
# joins are exercised with more than one group (instance is unique per host, as in production).
SECOND = {"township": "第二镇", "instance": "second-host:10130"}
BEARER = "dashboards-test-token"

# Metrics that may have no series at all on the test machine (Debian 12 in a container, no systemd, root).
MAY_BE_ABSENT: dict[str, str] = {
    "ALERTS": "exists only while an alert fires; the test Prometheus loads recording rules, not alerts",
    "township:shaobing_alerts_firing:count": "the roll-up of ALERTS: no alert fires here (panels add `or 0 * ...`)",
    "shaobing_systemd_units_failed": "no systemd runs in the test container or CI (collector: not applicable)",
    "yum_upgrades_pending": "Debian 12 test machine: apt only; yum/dnf hosts export this instead",
    "shaobing_security_updates_pending_since_timestamp_seconds": "exported only while a security update is pending",
    "shaobing_software_outdated": "exported only for software found outside the package manager (none on CI)",
    "shaobing_exposed_port": "exported only while a risky port listens on all interfaces; tests bind loopback only",
    "shaobing_service_weak_credentials": "exported only for local services that run (a stopped service's stock "
    "config is context, not a finding); a clean CI machine runs none",
    "shaobing_pii_files": "exported only where a web, FTP or Samba configuration names a folder (else not applicable)",
    "shaobing_pii_dumps": "exported only where a web, FTP or Samba configuration names a folder (else not applicable)",
    "shaobing_relay_escalations_total": "counted only once an incident goes unacknowledged past its deadline",
    "shaobing_relay_modem_up": "only with a GSM modem channel; no modem is attached to the test relay",
    "shaobing_relay_modem_sim_ready": "only with a GSM modem channel; no modem is attached to the test relay",
    "shaobing_relay_modem_registered": "only with a GSM modem channel; no modem is attached to the test relay",
    "shaobing_relay_modem_signal_dbm": "only with a GSM modem channel; no modem is attached to the test relay",
}

# Panels whose query filters for problems, so a clean test machine legitimately returns nothing.
_CLEAN = "a clean test machine has no such finding"
MAY_BE_EMPTY: dict[tuple[str, str], str] = {
    ("shaobing-security", "停更清单 End of life"): "lists only what ends within the warning window; "
    "the test machine's OS and software are supported for longer",
    ("shaobing-security", "支持期未知 EOL unknown"): "the test machine runs Debian, whose support dates are known",
    ("shaobing-security", "落后软件 Outdated software"): _CLEAN,
    ("shaobing-security", "安全更新积压 Security-update age"): "lists hosts with pending security updates; "
    "a patched test machine has none",
    ("shaobing-security", "口令问题 Password findings by reason"): _CLEAN,
    ("shaobing-security", "风险端口 Exposed ports"): _CLEAN,
    ("shaobing-security", "服务弱口令 Weak service credentials"): _CLEAN,
    ("shaobing-security", "SSH 风险设置 Risky sshd settings"): _CLEAN,
    ("shaobing-security", "防火墙未启用 Firewall off"): _CLEAN,
    ("shaobing-security", "个人信息泄露 Personal data exposed"): _CLEAN,
    ("shaobing-host", "安全更新积压 Update age"): "shown only while a security update is pending",
    ("shaobing-host", "风险端口 Exposed ports"): _CLEAN,
}


class _Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass


def _serve(tls: ssl.SSLContext | None) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("pki")
    ca = make_ca(tmp)
    cert = make_cert(tmp, "web", ca, hosts=["127.0.0.1"], days=30)
    return ca.cert_file, cert.cert_file, cert.key_file


@pytest.fixture(scope="module")
def https_port(pki: tuple[Path, Path, Path]) -> Iterator[int]:
    _, cert, key = pki
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    yield from _serve(ctx)


@pytest.fixture(scope="module")
def webhook_port() -> Iterator[int]:
    yield from _serve(None)


def _agent_config(port: int, https_port: int, ca_file: Path) -> dict[str, Any]:
    from agent.collectors import by_name

    collectors: dict[str, Any] = {}
    for name, cls in by_name().items():
        if not getattr(cls, "default_enabled", True):
            continue  # opt-in collectors (metadata_refresh runs the package manager) stay off, as shipped
        # Cheap collectors repeat every 2 s so rate() has samples; the rest run once at start.
        collectors[name] = {"enabled": True, "jitter": "0s", "interval": "2s" if name in _FAST else "1h"}
    if "passwords" in collectors:
        # Bounded so the suite stays fast on a 2-core CI machine; the audit resumes where it stopped.
        collectors["passwords"]["cpu_budget"] = "2s"
    if "baseline" in collectors:
        # Its first run would wait for the slower audits (up to 15 min); here it goes once those it can see ran.
        collectors["baseline"]["peer_wait"] = "20s"
    if "services" in collectors:
        collectors["services"]["processes"] = [{"name": "shaobing-agent", "pattern": "shaobing"}]
        collectors["services"]["ports"] = [{"name": "agent-port", "port": port, "address": "127.0.0.1"}]
    if "probes" in collectors:
        collectors["probes"]["http"] = [
            {"name": "local-https", "url": f"https://127.0.0.1:{https_port}/", "ca_file": str(ca_file)}
        ]
        collectors["probes"]["tcp"] = [{"name": "agent-port", "address": f"127.0.0.1:{port}"}]
    return {"listen_address": f"127.0.0.1:{port}", "collectors": collectors}


_FAST = {"health", "self", "services", "probes"}


@pytest.fixture(scope="module")
def agent(
    tmp_path_factory: pytest.TempPathFactory, pki: tuple[Path, Path, Path], https_port: int
) -> Iterator[AgentProcess]:
    ca, _, _ = pki
    port = free_port()
    with AgentProcess(tmp_path_factory.mktemp("agent"), _agent_config(port, https_port, ca)) as proc:
        yield proc


@dataclass(frozen=True)
class Relay:
    target: str
    base: str

    def deliver_one_alert(self) -> None:
        """Post one firing alert as Alertmanager would; the relay sends it to the local webhook."""
        alert = {
            "status": "firing",
            "labels": {"alertname": "DashboardTest", "severity": "warning", "township": TOWNSHIP},
            "annotations": {"summary": "仪表盘测试"},
            "startsAt": "2026-11-27T04:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.local/graph",
            "fingerprint": "00000000000000aa",
        }
        body = {
            "version": "4", "groupKey": '{}:{alertname="DashboardTest"}', "truncatedAlerts": 0, "status": "firing",
            "receiver": "relay", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager.local", "alerts": [alert],
        }  # fmt: skip
        answer = httpx.post(
            f"{self.base}/alertmanager/ops", json=body, headers={"Authorization": f"Bearer {BEARER}"}, timeout=10
        )
        assert answer.status_code < 300, answer.text


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory, webhook_port: int) -> Iterator[Relay]:
    """The real relay with one webhook channel to a local receiver."""
    tmp = tmp_path_factory.mktemp("relay")
    (tmp / "bearer").write_text(BEARER + "\n", encoding="utf-8")  # also signs acknowledgement links
    port = free_port()
    (tmp / "relay.yml").write_text(
        f"""
server:
  listen: 127.0.0.1:{port}
  auth:
    bearer_tokens: [{{secret_file: {tmp / "bearer"}}}]
store:
  path: {tmp / "relay.db"}
delivery:
  backoff_initial_seconds: 0.2
  backoff_max_seconds: 1
  request_timeout_seconds: 2
  poll_interval_seconds: 0.1
channels:
  hook:
    type: webhook
    url: http://127.0.0.1:{webhook_port}/hook
routes:
  ops:
    channels: [hook]
acknowledge:
  public_url: http://127.0.0.1:9
  secret: {{secret_file: {tmp / "bearer"}}}
  alertmanagers: [http://127.0.0.1:9]
""",
        encoding="utf-8",
    )
    with open(tmp / "relay.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "relay.cli", "serve", "--config", str(tmp / "relay.yml")],
            stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO), start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"relay exited: {(tmp / 'relay.log').read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("relay did not become healthy in 30 s")
            time.sleep(0.1)
        yield Relay(f"127.0.0.1:{port}", base)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory, agent: AgentProcess, relay: Relay) -> Iterator[PrometheusServer]:
    from agent.collectors import by_name

    labels = {"township": TOWNSHIP, "site": "test-site", "role": "server"}
    agents = scrape_config("shaobing", [agent.target], labels=labels)
    agents["static_configs"].append({"targets": [agent.target], "labels": {**labels, **SECOND}})
    config = prometheus_config([agents, scrape_config("shaobing-relay", [relay.target])], rule_files=["records.yml"])
    records = (REPO / "alert_rules" / "records.yml").read_text(encoding="utf-8")
    with PrometheusServer(tmp_path_factory.mktemp("prom"), config, files={"records.yml": records}) as server:
        server.wait_for_targets(job="shaobing", health="up", count=2, timeout=60)
        server.wait_for_targets(job="shaobing-relay", health="up", timeout=60)
        # Delivered once Prometheus has seen the counter at 0, so increase() and rate() see the delivery.
        server.wait_for('shaobing_relay_deliveries_total{outcome="success"} == 0', timeout=30)
        relay.deliver_one_alert()
        # Every collector has reported once, counters have enough samples for rate(), rules have run.
        collectors = sum(1 for cls in by_name().values() if getattr(cls, "default_enabled", True))
        this = f'job="shaobing",instance="{agent.target}"'
        # Every collector has run once and succeeded (or is not applicable here) ...
        server.wait_for(
            f"count(shaobing_collector_success{{{this}}} == 1 or shaobing_collector_applicable{{{this}}} == 0)",
            lambda r: bool(r) and r[0]["value"][1] == str(collectors),
            timeout=90,
        )
        # ... counters have enough samples for rate(), and the relay delivery is visible ...
        server.wait_for('count_over_time(up{job="shaobing"}[1m]) >= 4', timeout=60)
        server.wait_for('increase(shaobing_relay_deliveries_total{outcome="success"}[1m]) > 0', timeout=60)
        # ... and every roll-up the dashboards read has been evaluated over that data, for both townships.
        rollups = {n for t in all_targets(load_all()) for n in metric_names(t.expr) if n.startswith("township:")}
        for record in sorted(rollups - MAY_BE_ABSENT.keys()):
            server.wait_for(record, lambda r: len(r) == 2, timeout=60)
        yield server


def _present(prom: PrometheusServer) -> set[str]:
    return {r["metric"]["__name__"] for r in prom.query('group by (__name__) ({__name__=~".+"})')}


def test_every_query_parses_and_returns_data(prom: PrometheusServer, agent: AgentProcess) -> None:
    present = _present(prom)
    targets = all_targets(load_all())
    assert len(targets) > 80
    # The exception lists name real panels and metrics, so a rename cannot leave a stale excuse behind.
    assert MAY_BE_EMPTY.keys() <= {(t.uid, t.panel) for t in targets}
    assert MAY_BE_ABSENT.keys() <= {name for t in targets for name in metric_names(t.expr)}
    errors: list[str] = []
    empty: list[str] = []
    for target in targets:
        expr = substitute(target.expr, agent.target)
        try:
            result = prom.query(expr)
        except RuntimeError as exc:
            errors.append(f"{target}\n    -> {exc}")
            continue
        if result:
            continue
        absent = metric_names(target.expr) - present
        if absent and absent <= MAY_BE_ABSENT.keys():
            continue
        if (target.uid, target.panel) in MAY_BE_EMPTY:
            continue
        empty.append(f"{target}\n    absent metrics: {sorted(absent) or 'none'}")
    assert not errors, "queries Prometheus rejects:\n" + "\n".join(errors)
    assert not empty, "queries with no data:\n" + "\n".join(empty)


def test_metrics_this_machine_produces_are_all_present(prom: PrometheusServer) -> None:
    """Every metric the dashboards read is scraped here, except the documented exceptions."""
    present = _present(prom)
    used = {name for t in all_targets(load_all()) for name in metric_names(t.expr)}
    missing = sorted(used - present - MAY_BE_ABSENT.keys())
    assert not missing, f"dashboards read metrics that the test agent/relay/rules did not produce: {missing}"


def test_template_variables_resolve(prom: PrometheusServer, agent: AgentProcess) -> None:
    for uid, doc in load_all().items():
        for var in doc["templating"]["list"]:
            if var["type"] != "query":
                continue
            selector, label = label_values_query(var["query"])
            rows = prom.query(f"group by ({label}) ({substitute(selector, agent.target)})")
            values = {r["metric"].get(label) for r in rows}
            expected = TOWNSHIP if label == "township" else agent.target
            assert expected in values, (uid, var["name"], values)


def test_fleet_rollups_count_the_agents(prom: PrometheusServer) -> None:
    """The fleet dashboard's numbers are the real ones: two hosts, both up, one per township."""
    fleet = {t.panel + "/" + t.ref_id: t for t in all_targets({"shaobing-fleet": load_all()["shaobing-fleet"]})}
    assert prom.query_value(substitute(fleet["在线/总数 Hosts up/total/A"].expr, "")) == 2.0
    assert prom.query_value(substitute(fleet["在线/总数 Hosts up/total/B"].expr, "")) == 2.0
    assert prom.query_value(substitute(fleet["离线主机 Hosts down/A"].expr, "")) == 0.0
    assert prom.query_value(f'township:shaobing_hosts:count{{township="{TOWNSHIP}"}}') == 1.0


def _query_range(prom: PrometheusServer, expr: str) -> dict[str, Any]:
    """A range query as Grafana sends it for a time-series panel; returns Prometheus' JSON answer."""
    end = time.time()
    params = urllib.parse.urlencode({"query": expr, "start": f"{end - 60:.3f}", "end": f"{end:.3f}", "step": "5"})
    try:
        with urllib.request.urlopen(f"{prom.url}/api/v1/query_range?{params}", timeout=10) as resp:
            doc: dict[str, Any] = json.load(resp)
    except urllib.error.HTTPError as err:
        doc = json.load(err)
    return doc


def test_range_queries_are_accepted(prom: PrometheusServer, agent: AgentProcess) -> None:
    """Time-series panels run as range queries: each must be accepted over the last minute."""
    rejected = []
    ranged = [t for t in all_targets(load_all()) if not t.instant]
    assert len(ranged) > 30
    for target in ranged:
        doc = _query_range(prom, substitute(target.expr, agent.target))
        if doc.get("status") != "success":
            rejected.append(f"{target}\n    -> {doc.get('error')}")
    assert not rejected, "range queries Prometheus rejects:\n" + "\n".join(rejected)


def test_two_townships_roll_up_separately(prom: PrometheusServer, agent: AgentProcess) -> None:
    """The fleet table has one row per township with that township's own counts."""
    fleet = {t.panel + "/" + t.ref_id: t for t in all_targets({"shaobing-fleet": load_all()["shaobing-fleet"]})}
    up = prom.query(substitute(fleet["乡镇一览 Townships/A"].expr, agent.target))
    assert {r["metric"]["township"]: r["value"][1] for r in up} == {TOWNSHIP: "1", SECOND["township"]: "1"}
    hosts = prom.query(substitute(fleet["主机一览 Hosts/A"].expr, ".*"))
    assert {r["metric"]["instance"] for r in hosts} == {agent.target, SECOND["instance"]}
    only_second = fleet["在线/总数 Hosts up/total/B"].expr.replace("$township", SECOND["township"])
    assert prom.query_value(only_second) == 1.0


def test_table_queries_share_their_join_columns(prom: PrometheusServer, agent: AgentProcess) -> None:
    """A table merges its queries on every non-value column, so each query must return exactly the label
    columns the table shows (no __name__, job, site...), or Grafana would split one host over several rows."""
    problems = []
    for uid, doc in load_all().items():
        for panel in panels(doc):
            if panel["type"] != "table":
                continue
            organize = next(t["options"] for t in panel["transformations"] if t["id"] == "organize")
            shown = {name for name in organize["renameByName"] if not name.startswith("Value")}
            for target in panel["targets"]:
                for row in prom.query(substitute(target["expr"], agent.target)):
                    if set(row["metric"]) != shown:
                        problems.append(f"{uid} / {panel['title']} / {target['refId']}: {sorted(row['metric'])}")
                        break
    assert not problems, f"label columns differ from the table's {problems}"
