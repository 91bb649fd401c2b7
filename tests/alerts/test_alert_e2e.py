"""End to end: real agent → real Prometheus (shipped rules) → real Alertmanager (shipped routing) → webhook.

Faults are real: a watched process is killed, an HTTP probe target is shut down, a TLS endpoint starts serving a
certificate (made here) that expires in 2 days, and finally the agent itself stops. The receiver, standing in
for the relay on loopback, must get each alert on the documented routes with the right labels and Chinese
annotations, then the resolved message after the fix. Only the `for` durations (rendered with build.py --set)
and the Alertmanager group timers are shortened; everything else is the shipped configuration.

Fault-to-notification times are printed (pytest -s) and recorded in docs/perf/alerts.md.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from tests.alerts.central import PROMETHEUS_YML, loopback_alertmanager_config
from tests.alerts.loopback_servers import ExpositionServer, Notification, ProbeTarget, WebhookReceiver
from tests.alerts.rule_files import RULE_FILES, RULES_DIR
from tests.support.agent import AgentProcess
from tests.support.prometheus import AlertmanagerServer, PrometheusServer, run_tool
from tests.support.tls import make_ca, make_cert

pytestmark = pytest.mark.integration

TOKEN = "e2e-relay-token"
PASSWORD = "e2e-scrape-password"
TOWNSHIP, SITE, ROLE = "城关镇", "镇政府机房", "政务"
RUNBOOK = "https://github.com/shaobing/shaobing/blob/main/docs/runbooks.md"
# Short `for` durations so the test runs in seconds; every other threshold is the shipped one.
FOR_OVERRIDES = {
    "host.down_for": "2s",
    "services.service_down_for": "2s",
    "probes.probe_failed_for": "2s",
    "probes.tls_expiry_for": "2s",
    "relay.dead_letters_for": "2s",
    "baseline.for": "2s",
}
NOTIFY_TIMEOUT = 45.0


@dataclass
class Stack:
    tmp: Path
    receiver: WebhookReceiver
    agent: AgentProcess
    prometheus: PrometheusServer
    alertmanager: AlertmanagerServer
    portal: ProbeTarget
    tls_target: ProbeTarget
    watched: subprocess.Popen[bytes]
    marker: str
    healthy_cert: tuple[Path, Path]
    expiring_cert: tuple[Path, Path]

    @property
    def instance(self) -> str:
        return self.agent.target


def _start_watched(marker: str) -> subprocess.Popen[bytes]:
    # The marker in the command line is what the agent's process watch matches.
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(3600)", marker],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=10)


def _render_rules(out: Path) -> None:
    sets = [arg for key, value in FOR_OVERRIDES.items() for arg in ("--set", f"{key}={value}")]
    result = run_tool([sys.executable, str(RULES_DIR / "build.py"), "--out", str(out), *sets], timeout=60)
    assert result.returncode == 0, result.stderr


def _prometheus_config(am_port: int) -> dict[str, Any]:
    """The shipped prometheus.yml: its agent job (TLS, basic auth, file_sd) and rule list, loopback addresses."""
    shipped = yaml.safe_load(PROMETHEUS_YML.read_text(encoding="utf-8"))
    agent_job = next(job for job in shipped["scrape_configs"] if job["job_name"] == "shaobing")
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": shipped["rule_files"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [agent_job],
    }


def _alertmanager_config(relay_url: str, token_file: Path) -> str:
    doc = yaml.safe_load(loopback_alertmanager_config(relay_url, token_file))
    # Scaled as shipped: group_wait is two evaluation intervals (30 s at 15 s there, 2 s at 1 s here). Alertmanager
    # flushes a new group at once when its alert started more than group_wait ago; at 1 s, one late evaluation on a
    # loaded machine did that.
    doc["route"].update(group_wait="2s", group_interval="1s")
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    certs = tmp_path / "certs"
    ca = make_ca(certs)
    agent_cert = make_cert(certs, "agent", ca, hosts=["127.0.0.1"], days=365)
    healthy = make_cert(certs, "oa-healthy", ca, hosts=["127.0.0.1"], days=365)
    expiring = make_cert(certs, "oa-expiring", ca, hosts=["127.0.0.1"], days=2)

    marker = f"shaobing-e2e-watched-{uuid.uuid4().hex}"
    receiver = WebhookReceiver()
    portal = ProbeTarget()
    tls_target = ProbeTarget(healthy.cert_file, healthy.key_file)
    watched = _start_watched(marker)
    started: list[Any] = []
    made: list[Stack] = []
    try:
        agent_config = {
            "log_level": "warning",
            "collectors": {
                "services": {"interval": "1s", "timeout": "900ms", "jitter": "0s",
                             "processes": [{"name": "e2e-app", "pattern": re.escape(marker)}]},
                "probes": {
                    "interval": "1s",
                    "timeout": "900ms",
                    "jitter": "0s",
                    "http": [
                        {"name": "portal", "url": portal.url, "timeout": "500ms"},
                        {"name": "oa-tls", "url": tls_target.url, "timeout": "500ms", "ca_file": str(ca.cert_file)},
                    ],
                },
                **{name: {"enabled": False} for name in ("passwords", "versions", "updates", "exposure",
                                                          "service_credentials", "ssh", "metadata_refresh")},
            },
        }
        web_config = {
            "tls_server_config": {"cert_file": str(agent_cert.cert_file), "key_file": str(agent_cert.key_file)},
            "basic_auth_users": {"prometheus": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()},
        }
        agent = AgentProcess(tmp_path / "agent", agent_config, web_config=web_config).start()
        started.append(agent)

        token_file = tmp_path / "relay_token"
        token_file.write_text(TOKEN + "\n")
        alertmanager = AlertmanagerServer(
            tmp_path / "alertmanager", _alertmanager_config(receiver.url, token_file)
        ).start()
        started.append(alertmanager)

        prom_dir = tmp_path / "prometheus"
        _render_rules(prom_dir / "alert_rules")
        targets = [{"targets": [agent.target], "labels": {"township": TOWNSHIP, "site": SITE, "role": ROLE}}]
        prometheus = PrometheusServer(
            prom_dir,
            _prometheus_config(alertmanager.port),
            files={
                "secrets/agent_scrape_password": PASSWORD,
                "secrets/agent_ca.pem": ca.cert_file.read_text(),
                "targets/e2e.json": json.dumps(targets, ensure_ascii=False),
            },
        ).start()
        started.append(prometheus)
        made.append(
            Stack(
                tmp_path, receiver, agent, prometheus, alertmanager, portal, tls_target, watched, marker,
                (healthy.cert_file, healthy.key_file), (expiring.cert_file, expiring.key_file),
            )
        )
        yield made[0]
    finally:
        for server in reversed(started):
            server.stop()
        # The test replaces the watched process and the portal when it fixes the faults.
        for proc in {watched, *(s.watched for s in made)}:
            _stop(proc)
        for target in {portal, tls_target, *(s.portal for s in made)}:
            target.close()
        receiver.close()


def _expect(stack: Stack, route: str, alertname: str, status: str, since: float) -> tuple[Notification, float]:
    note = stack.receiver.wait_for(
        lambda n: n.path == f"/alertmanager/{route}" and n.received >= since and bool(n.alerts(alertname, status)),
        NOTIFY_TIMEOUT,
        f"{status} {alertname} on {route}",
    )
    return note, note.received - since


def _check_common(stack: Stack, note: Notification, route: str, alertname: str, status: str) -> dict[str, Any]:
    assert note.authorization == f"Bearer {TOKEN}"
    assert note.body["receiver"] == f"relay-{route}"
    assert note.body["groupLabels"] == {"township": TOWNSHIP, "alertname": alertname}
    alert = note.alerts(alertname, status)[0]
    labels = alert["labels"]
    assert {k: labels[k] for k in ("instance", "job", "township", "site", "role")} == {
        "instance": stack.instance, "job": "shaobing", "township": TOWNSHIP, "site": SITE, "role": ROLE,
    }
    assert alert["annotations"]["runbook_url"] == f"{RUNBOOK}#{alertname.lower()}"
    return alert


def test_faults_notify_through_the_shipped_pipeline_and_resolve(stack: Stack) -> None:
    prom = stack.prometheus
    prom.wait_for_targets(job="shaobing", health="up", timeout=30)
    prom.wait_for('shaobing_service_up{service="e2e-app"} == 1', timeout=30)
    prom.wait_for('shaobing_probe_success{target="portal"} == 1', timeout=30)
    prom.wait_for('shaobing_probe_success{target="oa-tls"} == 1', timeout=30)
    prom.wait_for('shaobing_tls_cert_expiry_timestamp_seconds{target="oa-tls"} - time() > 300 * 86400', timeout=30)
    # Every shipped rule evaluates cleanly against the real agent's series, and the township roll-ups see it.
    groups = prom.rule_groups()
    assert {g["file"].rsplit("/", 1)[-1] for g in groups} == set(RULE_FILES)
    broken = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r.get("health") == "err"]
    assert not broken
    prom.wait_for(f'township:shaobing_hosts_up:sum{{township="{TOWNSHIP}"}} == 1', timeout=10)
    assert prom.query_value(f'township:shaobing_hosts:count{{township="{TOWNSHIP}"}}') == 1.0
    timings: dict[str, float] = {}

    # --- Faults, all at once.
    t_fault = time.monotonic()
    _stop(stack.watched)
    stack.portal.close()
    stack.tls_target.use_cert(*stack.expiring_cert)

    critical = {
        "ShaobingServiceDown": (
            f"{TOWNSHIP} 主机 {stack.instance} 上的服务 e2e-app（按 process 检查）已停止超过 2 秒。",
            {"service": "e2e-app", "kind": "process"},
        ),
        "ShaobingProbeFailed": (
            f"{TOWNSHIP} 主机 {stack.instance} 对 portal 的 http 探测已失败超过 2 秒。",
            {"target": "portal", "kind": "http"},
        ),
        "ShaobingTLSCertificateExpiring": (
            re.compile(
                rf"{TOWNSHIP} 主机 {re.escape(stack.instance)} 探测的 oa-tls 的证书将在 1d 23h \d+m \d+s 后过期。"
            ),
            {"target": "oa-tls"},
        ),
    }
    for alertname, (description, object_labels) in critical.items():
        for route in ("sms", "im"):
            note, latency = _expect(stack, route, alertname, "firing", t_fault)
            alert = _check_common(stack, note, route, alertname, "firing")
            assert alert["labels"]["severity"] == "critical"
            assert {k: alert["labels"][k] for k in object_labels} == object_labels
            text = alert["annotations"]["description"]
            assert description.fullmatch(text) if isinstance(description, re.Pattern) else text == description
            timings[f"{alertname} firing → {route}"] = latency
    tls_summary = next(
        a for n in stack.receiver.snapshot() for a in n.alerts("ShaobingTLSCertificateExpiring", "firing")
    )["annotations"]["summary"]
    assert tls_summary == "TLS 证书将在 3 天内过期。"
    # Prometheus fires the warning of the pair as well; only Alertmanager's inhibition keeps it off the routes.
    prom.wait_for(
        'ALERTS{alertname="ShaobingTLSCertificateExpiring",severity="warning",alertstate="firing",target="oa-tls"}',
        timeout=10,
    )

    # --- Fix everything.
    t_fix = time.monotonic()
    stack.watched = _start_watched(stack.marker)
    stack.portal = ProbeTarget(port=stack.portal.port)
    stack.tls_target.use_cert(*stack.healthy_cert)
    for alertname in critical:
        for route in ("sms", "im"):
            note, latency = _expect(stack, route, alertname, "resolved", t_fix)
            _check_common(stack, note, route, alertname, "resolved")
            timings[f"{alertname} resolved → {route}"] = latency

    # The TLS warning fired together with its critical and was inhibited (same alert name, instance, target):
    # no route ever received it, firing or resolved.
    tls_warnings = [
        a
        for n in stack.receiver.snapshot()
        for a in n.body["alerts"]
        if a["labels"]["alertname"] == "ShaobingTLSCertificateExpiring" and a["labels"]["severity"] == "warning"
    ]
    assert not tls_warnings

    # --- The agent itself goes away: host down, critical on both routes. The clock starts once it has exited.
    stack.agent.stop()
    t_down = time.monotonic()
    for route in ("sms", "im"):
        note, latency = _expect(stack, route, "ShaobingHostDown", "firing", t_down)
        alert = _check_common(stack, note, route, "ShaobingHostDown", "firing")
        assert alert["annotations"]["description"] == (
            f"{TOWNSHIP} 的主机 {stack.instance}（{SITE}，{ROLE}）已超过 2 秒无法采集："
            "主机宕机、网络中断或哨兵代理已停止。"
        )
        timings[f"ShaobingHostDown firing → {route}"] = latency

    print("\nfault-to-notification (s):")
    for key, value in timings.items():
        print(f"  {key:55s} {value:6.2f}")


def test_warning_goes_to_im_only_and_relay_alerts_group_without_township(tmp_path: Path) -> None:
    """The shipped relay scrape job and relay rules, with a static exposition standing in for the relay."""
    receiver = WebhookReceiver()
    relay = ExpositionServer('shaobing_relay_dead_letters{channel="sms"} 0\n')
    try:
        token_file = tmp_path / "relay_token"
        token_file.write_text(TOKEN)
        shipped = yaml.safe_load(PROMETHEUS_YML.read_text(encoding="utf-8"))
        relay_job = next(job for job in shipped["scrape_configs"] if job["job_name"] == "shaobing-relay")
        relay_job["static_configs"] = [{"targets": [relay.target]}]
        with AlertmanagerServer(tmp_path / "am", _alertmanager_config(receiver.url, token_file)) as am:
            _render_rules(tmp_path / "prom" / "alert_rules")
            config = _prometheus_config(am.port)
            config["scrape_configs"] = [relay_job]
            with PrometheusServer(tmp_path / "prom", config) as prom:
                prom.wait_for('shaobing_relay_dead_letters{job="shaobing-relay"} == 0', timeout=30)
                t_fault = time.monotonic()
                relay.text = 'shaobing_relay_dead_letters{channel="sms"} 2\n'
                note, latency = _expect_relay(receiver, "im", "firing", t_fault)
                assert note.body["groupLabels"] == {"alertname": "ShaobingRelayDeadLetters"}
                alert = note.alerts("ShaobingRelayDeadLetters", "firing")[0]
                assert alert["labels"]["severity"] == "warning" and alert["labels"]["channel"] == "sms"
                assert alert["annotations"]["description"] == (
                    f"告警转发服务 {relay.target} 的 sms 通道有 2 条消息放弃重试，收件人没有收到。"
                )
                t_fix = time.monotonic()
                relay.text = 'shaobing_relay_dead_letters{channel="sms"} 0\n'
                _expect_relay(receiver, "im", "resolved", t_fix)
                # A warning never goes to SMS, firing or resolved.
                assert not [n for n in receiver.snapshot() if n.path == "/alertmanager/sms"]
                print(f"\nShaobingRelayDeadLetters (warning) firing → im: {latency:.2f} s")
    finally:
        relay.close()
        receiver.close()


def _expect_relay(receiver: WebhookReceiver, route: str, status: str, since: float) -> tuple[Notification, float]:
    note = receiver.wait_for(
        lambda n: n.path == f"/alertmanager/{route}"
        and n.received >= since
        and bool(n.alerts("ShaobingRelayDeadLetters", status)),
        NOTIFY_TIMEOUT,
        f"{status} ShaobingRelayDeadLetters on {route}",
    )
    assert note.authorization == f"Bearer {TOKEN}"
    return note, note.received - since


def test_a_baseline_drop_on_the_agent_alerts_through_the_shipped_pipeline(tmp_path: Path) -> None:
    """The 等保 self-check on a package-default Debian 12 tree, every second: auditd stops (its process leaves the
    tree's /proc), the real agent's score drops, the shipped rule fires and the warning reaches IM only."""
    from tests.agent.test_baseline import make_host, set_processes

    host = make_host(tmp_path / "host", "debian12", processes=("sshd", "rsyslogd", "auditd"))
    receiver = WebhookReceiver()
    try:
        token_file = tmp_path / "relay_token"
        token_file.write_text(TOKEN)
        off = {"enabled": False}
        agent_config = {"log_level": "warning", "collectors": {
            "baseline": {"root": str(host), "interval": "1s", "jitter": "0s", "peer_wait": "0s"},
            **{n: off for n in ("passwords", "versions", "updates", "exposure", "pii", "permissions", "smart",
                                "service_credentials", "ssh", "metadata_refresh")}}}
        web_config = {"basic_auth_users": {
            "prometheus": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}}
        with AgentProcess(tmp_path / "agent", agent_config, web_config=web_config) as agent, \
                AlertmanagerServer(tmp_path / "am", _alertmanager_config(receiver.url, token_file)) as am:
            _render_rules(tmp_path / "prom" / "alert_rules")
            config = _prometheus_config(am.port)
            job = config["scrape_configs"][0]
            job.pop("tls_config", None)
            job["scheme"] = "http"
            targets = [{"targets": [agent.target], "labels": {"township": TOWNSHIP, "site": SITE, "role": ROLE}}]
            with PrometheusServer(tmp_path / "prom", config, files={
                    "secrets/agent_scrape_password": PASSWORD,
                    "targets/e2e.json": json.dumps(targets, ensure_ascii=False)}) as prom:
                before = prom.wait_for('shaobing_baseline_pass_ratio{job="shaobing",level="3"}', timeout=30)
                score = float(before[0]["value"][1])
                time.sleep(2)
                t_fault = time.monotonic()
                set_processes(host, "sshd", "rsyslogd")  # auditd stopped
                prom.wait_for(f'shaobing_baseline_pass_ratio{{job="shaobing"}} < {score}', timeout=30)
                note = receiver.wait_for(
                    lambda n: n.received >= t_fault and bool(n.alerts("ShaobingBaselineScoreDropped", "firing")),
                    NOTIFY_TIMEOUT, "firing ShaobingBaselineScoreDropped")
                assert note.path == "/alertmanager/im"  # a warning: IM only, no SMS
                alert = note.alerts("ShaobingBaselineScoreDropped", "firing")[0]
                assert alert["labels"]["severity"] == "warning" and alert["labels"]["level"] == "3"
                assert alert["labels"]["township"] == TOWNSHIP
                assert alert["annotations"]["description"].startswith(
                    f"{TOWNSHIP} 主机 {agent.target} 的等保 2.0 自查（第 3 级）得分比过去 1d 内的最高分低了 ")
                assert not [n for n in receiver.snapshot() if n.path == "/alertmanager/sms"
                            and n.alerts("ShaobingBaselineScoreDropped", "firing")]
    finally:
        receiver.close()
