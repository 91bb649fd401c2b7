"""The county centre in one command, for real: a fresh Debian 12 root with systemd (``make_root.sh bookworm-systemd``),
the network cut, Debian's own prometheus and prometheus-alertmanager packages from a local mirror (a county's apt
mirror: the .debs downloaded once, indexed with dpkg-scanpackages), the centre bundle (build-bundle.sh --centre) and
deploy/central/setup.sh as shipped. Then ``systemd-nspawn -b``: the units start, and a probe inside sends a test
message (``shaobing-relay test-send``) and a critical alert through Alertmanager's shipped routing to a provider
stand-in on loopback, which records what reached it: SMS and IM both, the links on the external URL."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.rootfs import DebianRoot

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("needs_root"), pytest.mark.timeout(1500),
              pytest.mark.skipif(shutil.which("systemd-nspawn") is None, reason="needs systemd-container")]

REPO = Path(__file__).resolve().parents[2]
CACHE = Path("/var/cache/shaobing-test")
PACKAGES = ["prometheus", "prometheus-alertmanager", "python3-venv", "openssl"]
FAKE = "http://127.0.0.1:18080"
EXTERNAL = "http://10.20.0.5"

# A provider stand-in: answers every provider's success shape and records each request.
PROVIDERS = r"""
import json, sys, threading, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
SEEN = "/root/provider-requests.jsonl"
class H(BaseHTTPRequestHandler):
    def _answer(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
        with open(SEEN, "a") as fh:
            fh.write(json.dumps({"path": self.path, "body": body}) + "\n")
        out = json.dumps({"errcode": 0, "errmsg": "ok", "code": 0, "msg": "success", "data": {}, "Code": "OK",
                          "Message": "OK", "BizId": "biz-1", "RequestId": "r"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = _answer
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", 18080), H).serve_forever()
"""
PROBE = r"""
import json, os, subprocess, time, urllib.request
def get(url):
    try:
        return urllib.request.urlopen(url, timeout=5).read().decode()
    except OSError as exc:
        return "ERROR " + repr(exc)
def wait(url, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        page = get(url)
        if not page.startswith("ERROR"):
            return page
        time.sleep(1)
    return page
out = {"units": {}}
subprocess.Popen(["/usr/bin/python3", "/root/providers.py"])
out["prometheus_ready"] = wait("http://127.0.0.1:9090/-/ready")
out["alertmanager_ready"] = wait("http://127.0.0.1:9093/-/ready")
out["relay_health"] = wait("http://127.0.0.1:10131/healthz")
send = subprocess.run(["shaobing-relay", "test-send", "--config", "/etc/shaobing/relay.yml",
                       "ops-wecom"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
out["test_send"] = [send.returncode, send.stdout[-2000:]]
amtool = subprocess.run(["amtool", "--alertmanager.url=http://127.0.0.1:9093", "alert", "add", "ShaobingCentreTest",
                         "severity=critical", "township=城关镇", "instance=zf-web-01:10130", "summary=中心测试",
                         "--annotation=summary=中心测试告警"],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=30)
out["amtool"] = [amtool.returncode, amtool.stdout[-2000:]]
# Critical: group_wait 30 s, then SMS (aliyun) and IM (dingtalk) both; the Watchdog's heartbeat besides.
deadline = time.monotonic() + 150
seen = []
while time.monotonic() < deadline:
    seen = [json.loads(l) for l in open("/root/provider-requests.jsonl")] if os.path.exists("/root/provider-requests.jsonl") else []
    hits = [r for r in seen if "ShaobingCentreTest" in r["body"] or "%E4%B8%AD%E5%BF%83" in r["body"] or "中心测试" in r["body"]]
    watchdog = "ShaobingWatchdog" in get("http://127.0.0.1:9093/api/v2/alerts")
    if any("/aliyun" in r["path"] for r in hits) and any("/dingtalk" in r["path"] for r in hits) and watchdog:
        break
    time.sleep(2)
out["requests"] = seen
out["targets"] = get("http://127.0.0.1:9090/api/v1/targets")
out["rules"] = get("http://127.0.0.1:9090/api/v1/rules")
out["flags"] = get("http://127.0.0.1:9090/api/v1/status/flags")
out["am_status"] = get("http://127.0.0.1:9093/api/v2/status")
out["am_alerts"] = get("http://127.0.0.1:9093/api/v2/alerts")
for unit in ("prometheus", "prometheus-alertmanager", "shaobing-relay", "grafana-server"):
    out["units"][unit] = subprocess.run(["systemctl", "is-active", unit], stdout=subprocess.PIPE,
                                        universal_newlines=True).stdout.strip()
out["journal"] = subprocess.run(["journalctl", "-u", "shaobing-relay", "--no-pager", "-n", "40"], stdout=subprocess.PIPE,
                                universal_newlines=True).stdout
json.dump(out, open("/root/probe.json", "w"), ensure_ascii=False)
"""
UNIT = """[Unit]
Description=test probe: the centre's path end to end, then power off
After=prometheus.service prometheus-alertmanager.service shaobing-relay.service grafana-server.service

[Service]
Type=oneshot
TimeoutStartSec=600
ExecStart=/usr/bin/python3 /root/probe.py
ExecStopPost=/usr/bin/systemctl poweroff --no-block

[Install]
WantedBy=multi-user.target
"""
INVENTORY = """host,address,township,role,site,scheme
zf-web-01,10.20.1.11,城关镇,政务,镇政府机房,
hk-file-01,10.20.7.11,河口乡,file,,http
"""


@pytest.fixture(scope="module")
def centre_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("centre")
    proc = subprocess.run(["bash", str(REPO / "deploy/build-bundle.sh"), "--centre", "--pythons", "3.11",
                           "--arches", "x86_64", "--output", str(out)], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (tarball,) = out.glob("shaobing-centre-*.tar.gz")
    return tarball


def _installed(root: Path) -> set[str]:
    names, status = set(), (root / "var/lib/dpkg/status").read_text()
    for block in status.split("\n\n"):
        pkg = re.search(r"^Package: (\S+)", block, re.M)
        if pkg and re.search(r"^Status: install ok installed", block, re.M):
            names.add(pkg.group(1))
    return names


def _mirror(root: DebianRoot) -> None:
    """A local apt mirror in the root with the packages setup.sh asks for and what they need beyond the root."""
    debs = CACHE / "centre-debs-bookworm"
    if not (debs / ".complete").exists():
        shutil.rmtree(debs, ignore_errors=True)
        debs.mkdir(parents=True)
        dep = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                              "--no-breaks", "--no-replaces", "--no-enhances", *PACKAGES], capture_output=True,
                             text=True, timeout=120, check=True)
        names = {line.strip() for line in dep.stdout.splitlines() if line and not line[0].isspace()}
        want = sorted(n for n in names - _installed(root.path) if not n.startswith("<") and ":" not in n)
        subprocess.run(["apt-get", "download", "-q", *want], cwd=debs, capture_output=True, text=True,
                       timeout=900, check=True)
        (debs / ".complete").touch()
    repo = root.path / "srv/county-mirror"
    shutil.copytree(debs, repo, ignore=shutil.ignore_patterns(".complete"))
    index = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo, capture_output=True, text=True,
                           timeout=120, check=True)
    (repo / "Packages").write_text(index.stdout)
    (root.path / "etc/apt/sources.list").write_text("deb [trusted=yes] file:/srv/county-mirror ./\n")
    for extra in (root.path / "etc/apt/sources.list.d").glob("*"):
        extra.unlink()
    updated = root.run("apt-get update -q")
    assert updated.returncode == 0, updated.output


def _relay_files(root: DebianRoot) -> tuple[Path, Path]:
    """The shipped relay.example.yml with every provider's base_url at the loopback stand-in, its secret files, and
    the env file for its {secret_env: ...} names."""
    doc = yaml.safe_load((REPO / "deploy/central/relay.example.yml").read_text(encoding="utf-8"))
    paths = {"dingtalk": "/dingtalk/robot/send", "wecom": "/wecom/send", "feishu": "/feishu/hook/",
             "aliyun_sms": "/aliyun/", "tencent_sms": "/tencent/"}
    for channel in doc["channels"].values():
        channel["base_url"] = FAKE + paths[channel["type"]]
    config = root.path / "root/relay.yml"
    config.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    names = sorted(set(re.findall(r"secret_env: *([A-Z0-9_]+)", config.read_text(encoding="utf-8"))))
    env = root.path / "root/relay.env"
    env.write_text("".join(f"{n}=test-{n.lower()}-0123456789\n" for n in names))
    etc = root.path / "etc/shaobing"
    etc.mkdir(parents=True, exist_ok=True)
    for name in ("aliyun-ak-id", "aliyun-ak-secret"):
        (etc / name).write_text(f"test-{name}\n")
        (etc / name).chmod(0o600)
    return Path("/root/relay.yml"), Path("/root/relay.env")


def _grafana_stand_in(root: DebianRoot) -> Path:
    """A package named grafana with a grafana-server unit: Grafana's own .deb cannot be downloaded here (it is not
    on a Debian mirror). It proves what setup.sh does with the file: apt installs it, the provisioning and the
    dashboards are laid down where Grafana's package reads them, the unit is enabled and started."""
    pkg = root.path / "root/grafana-pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN/control").write_text("Package: grafana\nVersion: 0.0.0-standin\nArchitecture: all\n"
                                        "Maintainer: tests\nDescription: stand-in for Grafana's own package\n")
    unit = pkg / "lib/systemd/system/grafana-server.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/usr/bin/python3 -m http.server --bind 127.0.0.1 3000 "
                    "--directory /etc/grafana/provisioning\n[Install]\nWantedBy=multi-user.target\n")
    built = subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(pkg), str(root.path / "root/grafana_standin_all.deb")],
                           capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    shutil.rmtree(pkg)
    return Path("/root/grafana_standin_all.deb")


@pytest.fixture
def centre_root(tmp_path: Path, centre_bundle: Path) -> Iterator[DebianRoot]:
    root = DebianRoot("bookworm-systemd", tmp_path / "root")
    try:
        _mirror(root)
        root.add_bundle(centre_bundle)
        yield root
    finally:
        root.remove()


def test_setup_sh_takes_a_fresh_debian_to_a_delivered_alert(centre_root: DebianRoot) -> None:
    root = centre_root
    config, env = _relay_files(root)
    (root.path / "root/inventory.csv").write_text(INVENTORY, encoding="utf-8")
    cmd = (f"bash /bundle/deploy/central/setup.sh --inventory /root/inventory.csv --external-url {EXTERNAL} "
           f"--relay-config {config} --relay-env {env}")
    # The aliyun key files belong to root: the relay cannot read them, its check fails, setup.sh says so (exit 5)
    # and still sets up the rest.
    first = root.run(cmd)
    assert first.returncode == 5, first.output
    assert "aliyun-ak-id" in first.stderr and "NOT DONE" in first.stderr, first.output
    assert (root.path / "etc/prometheus/prometheus.yml").read_text() == (REPO / "deploy/central/prometheus.yml").read_text()
    # The operator mends it and runs the same command again: idempotent, secrets kept.
    token = (root.path / "etc/shaobing/relay-token").read_text()
    password = (root.path / "etc/prometheus/secrets/agent_scrape_password").read_text()
    deb = _grafana_stand_in(root)
    fixed = root.run("chown shaobing-relay /etc/shaobing/aliyun-ak-id /etc/shaobing/aliyun-ak-secret && "
                     f"{cmd} --grafana-deb {deb}")
    assert fixed.returncode == 0, fixed.output
    datasource = yaml.safe_load(root.read("etc/grafana/provisioning/datasources/shaobing.yml"))
    assert datasource["datasources"][0]["url"] == "http://127.0.0.1:9090"
    provider = yaml.safe_load(root.read("etc/grafana/provisioning/dashboards/shaobing.yml"))
    shipped = sorted(p.name for p in (REPO / "dashboards/json").glob("*.json"))
    assert sorted(p.name for p in (root.path / provider["providers"][0]["options"]["path"].lstrip("/")).glob("*.json")) == shipped
    assert (root.path / "etc/shaobing/relay-token").read_text() == token
    assert (root.path / "etc/prometheus/secrets/agent_scrape_password").read_text() == password
    assert "test-send" in fixed.stdout and f"{EXTERNAL}:9090" in fixed.stdout
    assert root.read("etc/hosts").count("alertmanager relay") == 1

    # Owners and modes: each secret readable by its one reader.
    def stat(path: str) -> tuple[str, str, str]:
        got = root.run(f"stat -c '%U %G %a' {path}")
        user, group, mode = got.stdout.split()
        return user, group, mode

    assert stat("/etc/shaobing/relay-token") == ("shaobing-relay", "shaobing-relay", "600")
    assert stat("/etc/shaobing/ack-secret") == ("shaobing-relay", "shaobing-relay", "600")
    assert stat("/etc/alertmanager/secrets/relay_token") == ("root", "prometheus", "640")
    assert stat("/etc/prometheus/secrets/agent_scrape_password") == ("root", "prometheus", "640")
    assert stat("/etc/shaobing/relay.env") == ("root", "root", "600")
    assert stat("/etc/shaobing/ca/county-ca.key")[2] == "600"
    assert root.read("etc/alertmanager/secrets/relay_token") == token
    targets = json.loads(root.read("etc/prometheus/targets/townships.json"))
    assert {t["labels"]["host"] for t in targets} == {"zf-web-01", "hk-file-01"}
    # An inventory with a mistake: named by file and line, exit 4, the targets Prometheus reads stay as they were.
    (root.path / "root/bad.csv").write_text(INVENTORY + "zf-web-01,10.20.1.99,城关镇,db,,\n", encoding="utf-8")
    bad = root.run(cmd.replace("/root/inventory.csv", "/root/bad.csv"))
    assert bad.returncode == 4, bad.output
    assert "bad.csv:4" in bad.output, bad.output
    assert json.loads(root.read("etc/prometheus/targets/townships.json")) == targets
    # A damaged bundle is refused before anything is touched.
    (root.path / "bundle/deploy/central/alertmanager.yml").write_text("route: {}\n")
    damaged = root.run(cmd)
    assert damaged.returncode == 3 and "damaged" in damaged.stderr, damaged.output
    (root.path / "bundle/deploy/central/alertmanager.yml").write_text((REPO / "deploy/central/alertmanager.yml").read_text())
    # A host certificate from the county CA, checked against the CA Prometheus uses.
    cert = root.run("bash /bundle/deploy/central/agent-cert.sh zf-web-01 10.20.1.11 --out /root/certs && "
                    "openssl verify -x509_strict -CAfile /etc/prometheus/secrets/agent_ca.pem /root/certs/zf-web-01.crt")
    assert cert.returncode == 0 and "OK" in cert.stdout, cert.output
    assert stat("/root/certs/zf-web-01.key")[2] == "600"

    (root.path / "root/probe.py").write_text(PROBE)
    (root.path / "root/providers.py").write_text(PROVIDERS)
    (root.path / "etc/systemd/system/centre-probe.service").write_text(UNIT)
    enabled = subprocess.run(["systemctl", f"--root={root.path}", "enable", "centre-probe.service"],
                             capture_output=True, text=True, timeout=60)
    assert enabled.returncode == 0, enabled.stderr
    boot = subprocess.run(["systemd-nspawn", "-q", "-b", "--register=no", "--keep-unit", "--private-network",
                           "-D", str(root.path)], capture_output=True, text=True, timeout=900)
    probe = root.path / "root/probe.json"
    assert probe.exists(), f"the probe did not run (nspawn exit {boot.returncode}): {boot.stdout[-3000:]}"
    seen: dict[str, Any] = json.loads(probe.read_text())
    assert seen["units"] == {"prometheus": "active", "prometheus-alertmanager": "active", "shaobing-relay": "active",
                             "grafana-server": "active"}, seen
    assert seen["test_send"][0] == 0, seen["test_send"]
    requests = seen["requests"]
    assert any(r["path"].startswith("/wecom/send") and "哨兵告警通道测试" in r["body"] for r in requests), requests
    # The critical alert, through the shipped routing: SMS to the on-call people and IM, both.
    hits = [r for r in requests if "ShaobingCentreTest" in r["body"] or "中心测试" in r["body"]
            or "%E4%B8%AD%E5%BF%83" in r["body"]]
    assert any(r["path"].startswith("/aliyun") for r in hits), (requests, seen["journal"])
    assert any(r["path"].startswith("/dingtalk") for r in hits), (requests, seen["journal"])
    # Prometheus: the external URL, the rules, and its peers found by name (relay and Alertmanager scraped).
    flags = json.loads(seen["flags"])["data"]
    assert flags["web.external-url"] == f"{EXTERNAL}:9090/"
    assert json.loads(seen["am_status"])["config"]["original"]  # loaded
    groups = json.loads(seen["rules"])["data"]["groups"]
    assert sum(len(g["rules"]) for g in groups) > 50
    health = {t["labels"]["job"]: t["health"] for t in json.loads(seen["targets"])["data"]["activeTargets"]
              if t["labels"]["job"] in ("shaobing-relay", "alertmanager", "prometheus")}
    assert health == {"shaobing-relay": "up", "alertmanager": "up", "prometheus": "up"}, seen["targets"][:3000]
    # The Watchdog reached Alertmanager from Prometheus (the "alertmanager" name in /etc/hosts).
    # Its link (what chat messages show as 查看 Prometheus) is on the external URL, not on a name only the centre knows.
    alerts = {a["labels"]["alertname"]: a for a in json.loads(seen["am_alerts"])}
    assert "ShaobingCentreTest" in alerts
    assert alerts["ShaobingWatchdog"]["generatorURL"].startswith(f"{EXTERNAL}:9090/graph?"), alerts["ShaobingWatchdog"]
