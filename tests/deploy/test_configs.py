"""Deploy configuration files: scale configs pass promtool, the compose file is complete, the systemd unit is
hardened, the example agent.yml is valid, and ``shaobing targets`` turns an inventory into file_sd JSON that a
real Prometheus accepts."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agent.cli import main
from agent.config import load_config
from agent.schema import SchemaError
from agent.targets import file_sd_json, parse_inventory
from tests.support.prometheus import PROMTOOL_BIN, PrometheusServer, run_tool

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


@pytest.mark.parametrize("name", ["prometheus-remote-write.yml", "prometheus-federation.yml"])
def test_scale_configs_pass_promtool(name: str, tmp_path: Path) -> None:
    shutil.copy(DEPLOY / "scale" / name, tmp_path / name)
    (tmp_path / "secrets").mkdir()
    for secret in ("agent_scrape_password", "federate_password", "agent_ca.pem"):
        (tmp_path / "secrets" / secret).write_text("x\n")
    result = run_tool([PROMTOOL_BIN, "check", "config", str(tmp_path / name)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_compose_file_is_complete() -> None:
    path = DEPLOY / "central" / "compose.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    services = doc["services"]
    assert set(services) == {"prometheus", "alertmanager", "grafana", "relay"}
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        assert svc.get("restart") == "unless-stopped", name
        for dep in svc.get("depends_on", []):
            assert dep in services, f"{name} depends on unknown {dep}"
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                # Bind mounts of the repository's own files must exist (secrets and relay.yml are the operator's).
                if "secrets" not in source and "relay.yml" not in source:
                    assert (path.parent / source).resolve().exists(), f"{name}: {source} does not exist"
            else:
                assert source in doc["volumes"], f"{name}: named volume {source} is not declared"
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    # The files the alert-rules helper owns are mounted, not copied.
    prom_volumes = services["prometheus"]["volumes"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prom_volumes
    assert "./alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in services["alertmanager"]["volumes"]
    # Prometheus resolves rule_files relative to its config: every rule file it names is in the mounted folder.
    central = yaml.safe_load((DEPLOY / "central" / "prometheus.yml").read_text(encoding="utf-8"))
    for rule_file in central["rule_files"]:
        assert (REPO / rule_file).exists(), rule_file


def test_compose_config_with_docker_if_available() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30, check=False)
    if probe.returncode != 0:
        pytest.skip("docker compose plugin is not available here (the YAML test above still runs)")
    result = subprocess.run([docker, "compose", "-f", str(DEPLOY / "central" / "compose.yaml"), "config", "-q"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_systemd_unit_is_hardened() -> None:
    for unit in ("shaobing-agent.service", "shaobing-relay.service", "shaobing-report.service"):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(DEPLOY / "systemd" / unit, encoding="utf-8")
        service = parser["Service"]
        for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                           "PrivateTmp": "yes"}.items():
            assert service.get(key) == value, f"{unit}: {key}"
        assert service.get("User") and service.get("User") != "root"
        assert service.get("StateDirectory")
    agent = (DEPLOY / "systemd" / "shaobing-agent.service").read_text(encoding="utf-8")
    assert "AmbientCapabilities=CAP_DAC_READ_SEARCH" in agent
    assert "CapabilityBoundingSet=CAP_DAC_READ_SEARCH\n" in agent


def _syscall_group(name: str, depth: int = 0) -> set[str]:
    """The syscalls of a systemd group (``systemd-analyze syscall-filter @x``), nested groups expanded."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    calls: set[str] = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        calls |= _syscall_group(item, depth + 1) if item.startswith("@") and depth < 8 else {item}
    return calls


def _unit_allowed_syscalls(unit: Path) -> set[str]:
    """What a unit's SystemCallFilter= lines leave allowed, in their order (first an allow list, ``~`` denies,
    later allow lines add back), as systemd.exec(5) describes."""
    allowed: set[str] = set()
    for line in unit.read_text(encoding="utf-8").splitlines():
        if not line.startswith("SystemCallFilter="):
            continue
        value = line.split("=", 1)[1].strip()
        deny = value.startswith("~")
        names: set[str] = set()
        for item in value.lstrip("~").split():
            names |= _syscall_group(item) if item.startswith("@") else {item}
        allowed = allowed - names if deny else allowed | names
    return allowed


@pytest.mark.skipif(shutil.which("systemd-analyze") is None or shutil.which("strace") is None,
                    reason="needs systemd-analyze and strace")
def test_the_units_syscall_filter_allows_what_the_clock_check_calls() -> None:
    """The health collector's clock read, traced for real: glibc 2.31+ turns adjtimex() into the clock_adjtime
    syscall, which the shipped unit must allow, or no node_timex_* series exist under systemd."""
    traced = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=adjtimex,clock_adjtime,clock_adjtime64", sys.executable, "-c",
         "from agent.platform import timex; assert timex.read_timex() is not None"],
        capture_output=True, text=True, timeout=60, cwd=str(DEPLOY.parent))
    assert traced.returncode == 0, traced.stderr
    used = {m.group(1) for m in re.finditer(r"^(?:\[pid\s+\d+\] )?(\w+)\(", traced.stderr, re.M)}
    assert used & {"adjtimex", "clock_adjtime", "clock_adjtime64"}, traced.stderr
    allowed = _unit_allowed_syscalls(DEPLOY / "systemd" / "shaobing-agent.service")
    assert used <= allowed, f"the unit's SystemCallFilter forbids {sorted(used - allowed)}"
    assert {"setpriority", "ioprio_set"} <= allowed  # the hashing child's priority calls


def test_example_config_is_valid() -> None:
    config = load_config(DEPLOY / "agent.example.yml")
    assert config.labels["township"] == "城关镇"
    assert config.push is None


def test_push_config_parses(tmp_path: Path) -> None:
    path = tmp_path / "agent.yml"
    path.write_text("labels: {township: 城关镇}\npush:\n  url: http://vm:8428\n  interval: 30s\n", encoding="utf-8")
    config = load_config(path)
    assert config.push is not None and config.push.interval == 30.0 and config.push.mode == "victoriametrics"
    path.write_text("labels: {instance: x, 'bad-name': y}\npush: {url: http://vm, mod: pushgateway}\n",
                    encoding="utf-8")
    with pytest.raises(SchemaError) as err:
        load_config(path)
    text = str(err.value)
    assert "labels.instance: reserved" in text and "labels.bad-name: invalid label name" in text
    assert "push.mod: unknown key (did you mean 'mode'?)" in text


INVENTORY = """\
# 县级资产清单 inventory, exported from the office spreadsheet
host,address,township,role,site
zf-web-01,127.0.0.1:{port},城关镇,政务,镇政府机房
zf-db-01,10.20.1.12,城关镇,db,
hk-file-01,hk-file-01.county.example:9000,河口乡,file,乡政府
"""


def test_targets_cli_and_real_prometheus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inventory = tmp_path / "inventory.csv"
    inventory.write_text("\ufeff" + INVENTORY.format(port=1), encoding="utf-8")
    out = tmp_path / "targets" / "townships.json"
    out.parent.mkdir()
    assert main(["targets", str(inventory), "-o", str(out)]) == 0
    groups = json.loads(out.read_text(encoding="utf-8"))
    assert groups[1] == {"targets": ["127.0.0.1:1"],
                         "labels": {"host": "zf-web-01", "township": "城关镇", "role": "政务", "site": "镇政府机房"}}
    assert {g["targets"][0] for g in groups} == {"127.0.0.1:1", "10.20.1.12:10130", "hk-file-01.county.example:9000"}
    assert "3 targets" in capsys.readouterr().err

    # Prometheus reads it: the targets appear with their labels (down, as nothing listens there).
    config = {"global": {"scrape_interval": "1s"},
              "scrape_configs": [{"job_name": "shaobing", "file_sd_configs": [{"files": ["targets/*.json"]}]}]}
    with PrometheusServer(tmp_path / "prom", config, files={"targets/townships.json": out.read_text()}) as prom:
        targets = prom.wait_for_targets(job="shaobing", health="down", count=1, timeout=30)
        labels = {t["labels"]["host"]: t["labels"] for t in prom.targets()}
    assert labels["zf-web-01"]["township"] == "城关镇" and labels["hk-file-01"]["site"] == "乡政府"
    assert targets


def test_targets_errors_name_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = ("host,address,township,role\n"
           "a,10.0.0.1,镇,web\n"
           "a,10.0.0.2,镇,web\n"          # duplicate host
           "b,10.0.0.1,镇,web\n"          # duplicate address
           "c,10.0.0.300,镇,web\n"        # not an address
           "d,10.0.0.4:70000,镇,web\n"    # bad port
           "e,10.0.0.5,,web\n"            # empty township
           "f,10.0.0.6,镇\n")              # short row
    path = tmp_path / "inv.csv"
    path.write_text(bad, encoding="utf-8")
    assert main(["targets", str(path)]) == 2
    err = capsys.readouterr().err
    for expected in (f"{path}:3: host: duplicate host 'a' (first on line 2)",
                     f"{path}:4: address: duplicate address 10.0.0.1:10130 (first on line 2)",
                     f"{path}:5: address: not an IP address or DNS name",
                     f"{path}:6: address: port must be 1-65535",
                     f"{path}:7: township: must not be empty",
                     f"{path}:8: row: expected 4 columns, got 3"):
        assert expected in err, err
    with pytest.raises(SchemaError, match="missing column"):
        parse_inventory("host,ip,township,role\n", "x.csv")
    with pytest.raises(SchemaError) as exc:
        parse_inventory("host,address,township,role,scheme\na,10.0.0.1,镇,web,HTTP\nb,10.0.0.2,镇,web,ftp\n"
                        "c,10.0.0.3,镇,web,https:\n", "s.csv")
    assert str(exc.value).count("scheme: must be https or http") == 2, exc.value
    assert "s.csv:3: scheme: must be https or http (empty: the job's scheme), got 'ftp'" in str(exc.value)
    assert "s.csv:4: scheme:" in str(exc.value)
    assert main(["targets", str(tmp_path / "missing.csv")]) == 2


def test_targets_scheme_column() -> None:
    """An empty scheme leaves the job's; a given one becomes __scheme__ (normalised to lower case)."""
    targets = parse_inventory("host,scheme,address,township,role\n"
                              "a,,10.0.0.1,镇,web\nb,HTTP,10.0.0.2,镇,web\nc,https,10.0.0.3,镇,web\n", "s.csv")
    groups = {g["labels"]["host"]: g["labels"] for g in json.loads(file_sd_json(targets))}
    assert "__scheme__" not in groups["a"]
    assert groups["b"]["__scheme__"] == "http" and groups["c"]["__scheme__"] == "https"
