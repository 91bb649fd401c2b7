"""Fault to the first phone ring and the first modem SMS, end to end:

    real agent → real Prometheus (shipped rules and prometheus.yml job) → real Alertmanager (shipped routing)
    → the relay (shipped relay.example.yml plus a voice channel and a GSM modem channel on the sms route)
    → the Aliyun voice fake (SingleCallByTts received = the phone rings) and the pseudo-terminal modem
      (AT+CMGS PDU received = the SMS is on the air), with the DingTalk message beside them.

    .venv/bin/python bench/oncall_latency.py [--rounds 3]

The fault is the agent stopping (ShaobingHostDown). As in tests/alerts/test_alert_e2e.py, only the rule's `for`
(2 s), the scrape/evaluation intervals (1 s) and Alertmanager's group timers (1 s) are shortened; with the
shipped values add `for` (host down: 2 min) and group_wait (30 s). The added channels' per-person budgets are
relaxed so that every round is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import bcrypt  # noqa: E402
import yaml  # noqa: E402

from tests.alerts.central import PROMETHEUS_YML, loopback_alertmanager_config  # noqa: E402
from tests.alerts.rule_files import RULES_DIR  # noqa: E402
from tests.relay.modem_emulator import ModemEmulator  # noqa: E402
from tests.relay.relay_fakes import FakeProviders  # noqa: E402
from tests.relay.relay_testlib import RelayProcess  # noqa: E402
from tests.relay.shipped import shipped_relay_config  # noqa: E402
from tests.support.agent import AgentProcess  # noqa: E402
from tests.support.prometheus import AlertmanagerServer, PrometheusServer, free_port, run_tool  # noqa: E402
from tests.support.tls import make_ca, make_cert  # noqa: E402

PASSWORD = "bench-scrape-password"


class _Env:
    """What shipped_relay_config wants from pytest's monkeypatch."""

    def setenv(self, name: str, value: str) -> None:
        os.environ[name] = value


def _wait(predicate: Any, timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.02)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="oncall-latency-"))
    started: list[Any] = []
    fakes = FakeProviders().__enter__()
    modem = ModemEmulator()
    try:
        certs = tmp / "certs"
        ca = make_ca(certs)
        cert = make_cert(certs, "agent", ca, hosts=["127.0.0.1"], days=30)
        agent_config = {
            "log_level": "warning",
            "collectors": {
                name: {"enabled": False}
                for name in (
                    "passwords",
                    "versions",
                    "updates",
                    "exposure",
                    "service_credentials",
                    "ssh",
                    "metadata_refresh",
                    "services",
                    "probes",
                )
            },
        }
        web = {
            "tls_server_config": {"cert_file": str(cert.cert_file), "key_file": str(cert.key_file)},
            "basic_auth_users": {"prometheus": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()},
        }
        agent = AgentProcess(tmp / "agent", agent_config, web_config=web).start()
        started.append(agent)

        relay_port = free_port()
        config = shipped_relay_config(tmp, fakes, relay_port, _Env())  # type: ignore[arg-type]
        doc = yaml.safe_load(config.read_text(encoding="utf-8"))
        secrets = tmp / "secrets"
        budget = [{"window_seconds": 1, "max": 10}]
        doc["channels"]["oncall-voice"] = {
            "type": "aliyun_voice",
            "base_url": fakes.url("/aliyunvoice/"),
            "access_key_id": {"secret_file": str(secrets / "aliyun-ak-id")},
            "access_key_secret": {"secret_file": str(secrets / "aliyun-ak-secret")},
            "tts_code": "TTS_000000001",
            "recipients": ["zhangsan"],
            "rate_limits": budget,
        }
        doc["channels"]["modem-sms"] = {
            "type": "gsm_modem",
            "port": modem.port,
            "recipients": ["zhangsan"],
            "rate_limits": budget,
        }
        doc["routes"]["sms"]["channels"] += ["oncall-voice", "modem-sms"]
        config.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
        relay = RelayProcess(config, relay_port, tmp / "relay.log")
        relay.start()
        started.append(relay)

        am_doc = yaml.safe_load(loopback_alertmanager_config(relay.base, secrets / "relay-token"))
        am_doc["route"].update(group_wait="1s", group_interval="1s")
        alertmanager = AlertmanagerServer(tmp / "am", yaml.safe_dump(am_doc, allow_unicode=True)).start()
        started.append(alertmanager)

        rules = tmp / "prometheus" / "alert_rules"
        built = run_tool(
            [sys.executable, str(RULES_DIR / "build.py"), "--out", str(rules), "--set", "host.down_for=2s"]
        )
        assert built.returncode == 0, built.stderr
        shipped = yaml.safe_load(PROMETHEUS_YML.read_text(encoding="utf-8"))
        job = next(j for j in shipped["scrape_configs"] if j["job_name"] == "shaobing")
        prom_config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": shipped["rule_files"],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager.port}"]}]}]},
            "scrape_configs": [job],
        }
        targets = [{"targets": [agent.target], "labels": {"township": "城关镇", "site": "镇政府", "role": "政务"}}]
        prometheus = PrometheusServer(
            tmp / "prometheus",
            prom_config,
            files={
                "secrets/agent_scrape_password": PASSWORD,
                "secrets/agent_ca.pem": ca.cert_file.read_text(),
                "targets/bench.json": json.dumps(targets, ensure_ascii=False),
            },
        ).start()
        started.append(prometheus)
        _wait(lambda: 'shaobing_relay_modem_up{channel="modem-sms"} 1' in relay_metrics(relay), 60, "the modem")

        timings: dict[str, list[float]] = {
            "phone rings (voice API call)": [],
            "modem SMS (AT+CMGS)": [],
            "DingTalk message": [],
        }
        for round_no in range(args.rounds):
            prometheus.wait_for_targets(job="shaobing", health="up", timeout=60)
            calls, parts, dings = len(fakes.got("aliyunvoice")), len(modem.parts), len(fakes.got("dingtalk"))
            agent.stop()
            t0 = time.monotonic()
            timings["phone rings (voice API call)"].append(
                _wait(lambda c=calls: len(fakes.got("aliyunvoice")) > c, 90, "the call") - t0
            )
            timings["modem SMS (AT+CMGS)"].append(_wait(lambda p=parts: len(modem.parts) > p, 90, "the SMS") - t0)
            timings["DingTalk message"].append(_wait(lambda d=dings: len(fakes.got("dingtalk")) > d, 90, "IM") - t0)
            print(f"round {round_no + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in timings.items()), flush=True)
            agent.start()
            prometheus.wait_for('ALERTS{alertname="ShaobingHostDown"}', predicate=lambda r: not r, timeout=90)
            time.sleep(3)  # let the resolved notifications go out before the next fault
        print("\n| agent stopped → | " + " | ".join(f"round {i + 1}" for i in range(args.rounds)) + " | median |")
        print("|---|" + "---:|" * (args.rounds + 1))
        for key, values in timings.items():
            print(f"| {key} | " + " | ".join(f"{v:.2f} s" for v in values) + f" | {statistics.median(values):.2f} s |")
    finally:
        for server in reversed(started):
            server.stop()
        modem.close()
        fakes.__exit__(None, None, None)
    return 0


def relay_metrics(relay: RelayProcess) -> str:
    import httpx

    try:
        return httpx.get(f"{relay.base}/metrics", timeout=5).text
    except httpx.HTTPError:
        return ""


if __name__ == "__main__":
    raise SystemExit(main())
