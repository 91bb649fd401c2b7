"""``shaobing scan``: every collector runs once under the scheduler, then each reports on that run.

The CLI tests run the real command as root on this machine; the contract tests check that no collector
collects on its own when asked for a report.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector
from agent.collectors import registry
from agent.crypt import load
from tests.agent.scan_helpers import run_once
from tests.support.agent import SHAOBING

MISSING_PROCESS = "shaobing-no-such-daemon"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the full scan reads /etc/shadow: run as root")


@pytest.fixture
def closed_port() -> Iterator[int]:
    # Bound but never listening: connections are refused, and no other test can take the port meanwhile.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


def scan(tmp_path: Path, port: int, collectors: dict[str, Any]) -> tuple[subprocess.CompletedProcess[str], str]:
    config: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "collectors": {
            "services": {"processes": [{"name": MISSING_PROCESS}]},
            "probes": {"tcp": [{"name": "closed-port", "address": f"127.0.0.1:{port}", "timeout": "1s"}]},
            # It tries logins against whatever listens on this host, servers of tests running meanwhile included.
            "service_credentials": {"enabled": False},
            **collectors,
        },
    }
    path = tmp_path / "agent.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    res = subprocess.run([SHAOBING, "scan", "--config", str(path)], capture_output=True, text=True, timeout=280)
    return res, res.stdout + res.stderr


def sections(stdout: str) -> dict[str, list[str]]:
    """Section title -> its lines."""
    out: dict[str, list[str]] = {}
    current: list[str] = []
    for line in stdout.splitlines():
        match = re.fullmatch(r"== (.+) ==", line)
        if match:
            current = out.setdefault(match.group(1), [])
        elif line.strip():
            current.append(line)
    return out


def finding(lines: list[str], title: str) -> list[str]:
    """The finding line containing ``title`` and its 原因/处理 lines."""
    for i, line in enumerate(lines):
        if line.startswith("  [") and title in line:
            rest = [x for x in lines[i + 1:i + 3] if x.startswith("      ")]
            return [line, *rest]
    raise AssertionError(f"no finding {title!r} in {lines}")


def shadow_secrets() -> list[str]:
    secrets: list[str] = []
    for line in Path("/etc/shadow").read_text(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) < 2 or len(fields[1]) <= 3:
            continue
        secrets.append(fields[1])
        secrets += [part for part in fields[1].split("$") if len(part) >= 8]  # salts and digests alone too
    return secrets


@needs_root
def test_scan_reports_every_section_in_chinese(tmp_path: Path, closed_port: int) -> None:
    res, everything = scan(tmp_path, closed_port, {})
    assert "Traceback" not in everything
    assert res.stdout.startswith("哨兵 Shaobing ") and "本机检查报告" in res.stdout.splitlines()[0]
    by_title = sections(res.stdout)
    titles = "\n".join(by_title)
    for expected in ("主机健康", "服务与端口", "探测", "版本与生命周期", "账户与口令", "SSH"):
        assert expected in titles, titles
    assert "检查失败" not in res.stdout, res.stdout

    probe = finding(by_title["探测 (Probes)"], "探测 closed-port 失败")
    assert probe[0].startswith("  [严重]")
    assert [x.split(":")[0].strip() for x in probe[1:]] == ["原因", "处理"]
    service = finding(by_title["服务与端口 (Services)"], f"进程 {MISSING_PROCESS} 未运行")
    assert service[0].startswith("  [严重]") and service[-1].strip().startswith("处理:")

    critical = any(line.startswith("  [严重]") for line in res.stdout.splitlines())
    assert res.returncode == (1 if critical else 0)
    leaked = [s for s in shadow_secrets() if s in everything]
    assert not leaked, "a password hash from /etc/shadow appears in the scan output"


@needs_root
def test_a_collector_over_its_timeout_fails_alone(tmp_path: Path, closed_port: int) -> None:
    # The version scan takes seconds here (package list, binaries probed): 0.1 s is far too short.
    off = {"enabled": False}
    res, everything = scan(tmp_path, closed_port, {
        "versions": {"timeout": "0.1s"},
        "updates": off, "reboot": off, "passwords": off, "exposure": off,
    })  # fmt: skip
    assert "Traceback" not in everything
    by_title = sections(res.stdout)
    assert by_title["版本与生命周期 (Versions and end of life)"] == [
        "  未发现问题 (no findings)",
        "  * 检查失败 (check failed): timed out after 0.1s",
    ]
    assert finding(by_title["探测 (Probes)"], "探测 closed-port 失败")
    assert finding(by_title["服务与端口 (Services)"], f"进程 {MISSING_PROCESS} 未运行")
    assert "主机健康 (Host health)" in by_title
    assert res.returncode == 1  # the refused probe is critical


@needs_root
def test_a_weak_password_is_reported_but_never_printed(tmp_path: Path, closed_port: int) -> None:
    # This host's own /etc/shadow may hold no hash at all (then the check against it cannot fail): account
    # files with a known weak hash make sure the scan output never carries one.
    lib = load()
    password = "Aa123456"
    digest = lib.crypt(password, lib.gensalt("$6$", 0))
    assert digest is not None
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/bash\nzhangwei:x:1000:100::/home/zhangwei:/bin/bash\n")
    (etc / "shadow").write_text(f"root:!:20000:0:99999:7:::\nzhangwei:{digest}:20000:0:99999:7:::\n")
    (etc / "group").write_text("root:x:0:\nusers:x:100:\n")
    (etc / "login.defs").write_text("UID_MIN 1000\nUID_MAX 60000\n")
    (etc / "sudoers").write_text("root ALL=(ALL:ALL) ALL\n")
    off = {"enabled": False}
    res, everything = scan(tmp_path, closed_port, {
        "passwords": {
            "passwd_file": str(etc / "passwd"), "shadow_file": str(etc / "shadow"), "group_file": str(etc / "group"),
            "login_defs_file": str(etc / "login.defs"), "sudoers_file": str(etc / "sudoers"),
        },
        "versions": off, "updates": off, "reboot": off, "exposure": off, "ssh": off,
    })  # fmt: skip
    assert "Traceback" not in everything
    weak = finding(sections(res.stdout)["账户与口令 (Accounts and passwords)"], "账户 zhangwei (UID 1000")
    assert weak[0].startswith("  [严重]") and "弱口令" in weak[0]
    salt = digest.rsplit("$", 1)[0]
    assert [s for s in (password, digest, salt, digest.rsplit("$", 1)[1]) if s in everything] == []
    assert res.returncode == 1


# -- the contract: report() describes the scheduler's run and never collects ------------------------------


@pytest.mark.parametrize("cls", registry(), ids=lambda c: c.name)
def test_report_before_any_run_is_none(tmp_path: Path, cls: type[Collector]) -> None:
    collector = cls(cls.options_class(), AgentContext(state_dir=tmp_path))
    try:
        assert collector.last_metrics is None
        assert collector.report() is None
    finally:
        collector.close()


class _Flaky(Collector):
    name = "flaky"
    metrics = (MetricSpec("test_flaky_value", "gauge", "A test value."),)
    fail = False

    def collect(self, out: MetricSet) -> None:
        if self.fail:
            raise RuntimeError("disk on fire")
        out.add("test_flaky_value", 7)


def test_scheduler_keeps_the_metrics_of_the_last_successful_run(tmp_path: Path) -> None:
    c = _Flaky(_Flaky.options_class(), AgentContext(state_dir=tmp_path))
    assert run_once(c).success
    first = c.last_metrics
    assert first is not None and first.get("test_flaky_value") == 7
    c.fail = True
    result = run_once(c)
    assert not result.success and "disk on fire" in result.error
    assert c.last_metrics is first  # a failed run never replaces it (scan reports it as failed instead)


def test_scan_json_carries_the_same_findings_for_tools(tmp_path: Path, closed_port: int) -> None:
    import json

    off = {"enabled": False}
    config: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "collectors": {
            "probes": {"tcp": [{"name": "closed-port", "address": f"127.0.0.1:{closed_port}", "timeout": "1s"}]},
            "service_credentials": off, "passwords": off, "pii": off, "permissions": off,
        },
    }  # fmt: skip
    path = tmp_path / "agent.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    res = subprocess.run([SHAOBING, "scan", "--config", str(path), "--format", "json"], capture_output=True,
                         text=True, timeout=280)
    doc = json.loads(res.stdout)
    assert doc["tool"].startswith("shaobing ")
    probes = next(s for s in doc["sections"] if s["title"].startswith("探测"))
    finding = next(f for f in probes["findings"] if "closed-port" in f["title"])
    assert finding["severity"] == "critical" and finding["fix"]
    assert res.returncode == 1  # a critical finding, as in the text report
    leaked = [s for s in shadow_secrets() if s in res.stdout]
    assert not leaked
