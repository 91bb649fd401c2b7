"""sshd settings from the real `sshd -T` on test configurations (and the fallback parser)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.collector import AgentContext
from agent.collectors.ssh import SshCollector, SshOptions
from tests.agent.scan_helpers import run_once

SSHD = shutil.which("sshd") or shutil.which("sshd", path="/usr/sbin")
SETTINGS = ("permit_root_login", "password_authentication", "permit_empty_passwords", "max_auth_tries")


@pytest.fixture(scope="module")
def host_key(tmp_path_factory: pytest.TempPathFactory) -> str:
    if SSHD is None:
        pytest.skip("openssh-server is not installed")
    # sshd -T insists on its privilege separation directory even when it only prints the configuration.
    if not os.path.isdir("/run/sshd"):
        if os.geteuid() != 0:
            pytest.skip("/run/sshd is missing and cannot be created without root")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    key = tmp_path_factory.mktemp("sshkeys") / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    return str(key)


def flags(tmp_path: Path, config: str, key: str | None, sshd: str | None = None) -> tuple[dict[str, float], str]:
    cfg = tmp_path / "sshd_config"
    cfg.write_text(config)
    (tmp_path / "group").write_text("wheel:x:10:judy\n")
    opts = SshOptions(
        config_file=str(cfg),
        sshd=sshd or SSHD or "none",
        host_keys=[key] if key else [],
        group_file=str(tmp_path / "group"),
    )
    col = SshCollector(opts, AgentContext(state_dir=tmp_path / "state"))
    assert col.report() is None  # nothing to say before a run
    result = run_once(col)
    assert result.success, result.error
    out = col.last_metrics
    report = col.report()
    assert out is not None and report is not None
    text = "\n".join([f.title for f in report.findings] + report.notes)
    return {s: out.get("shaobing_ssh_risky_setting", {"setting": s}) or 0.0 for s in SETTINGS}, text


def test_sshd_t_findings_appear_and_disappear(tmp_path: Path, host_key: str) -> None:
    risky = (
        "PermitRootLogin yes\nPasswordAuthentication yes\nPermitEmptyPasswords yes\nMaxAuthTries 10\n"
    )
    got, text = flags(tmp_path, risky, host_key)
    assert got == dict.fromkeys(SETTINGS, 1.0)
    assert "sshd -T" in text and "PermitRootLogin yes" in text

    fixed = "PermitRootLogin no\nPasswordAuthentication no\nPermitEmptyPasswords no\nMaxAuthTries 4\n"
    got, text = flags(tmp_path, fixed, host_key)
    assert got == dict.fromkeys(SETTINGS, 0.0)


def test_match_blocks_and_includes_are_evaluated(tmp_path: Path, host_key: str) -> None:
    inc = tmp_path / "sshd_config.d"
    inc.mkdir()
    (inc / "10-root.conf").write_text("PermitRootLogin prohibit-password\n")
    config = (
        f"Include {inc}/*.conf\n"
        "PermitRootLogin yes\nPasswordAuthentication no\n"
        "Match Address 10.0.0.0/8\n  PasswordAuthentication yes\n"
        "Match User alice,!bob\n  PermitEmptyPasswords yes\n"
        # sshd resolves groups through the host's own database, where the test's wheel members do not exist:
        # this block is evaluated for user=judy but cannot match, so it adds nothing.
        "Match Group wheel\n  MaxAuthTries 20\n"
    )
    got, text = flags(tmp_path, config, host_key)
    # The Include comes first, so its PermitRootLogin wins (first value wins in sshd).
    assert got == {
        "permit_root_login": 0.0,
        "password_authentication": 1.0,
        "permit_empty_passwords": 1.0,
        "max_auth_tries": 0.0,
    }
    assert "Match Address 10.0.0.0/8" in text and "user=alice" in text


def test_fallback_parser_without_sshd(tmp_path: Path) -> None:
    inc = tmp_path / "conf.d"
    inc.mkdir()
    (inc / "a.conf").write_text("MaxAuthTries 12\n")
    config = "Include conf.d/*.conf\nPasswordAuthentication no\nMatch User alice\n  PermitRootLogin yes\n"
    got, text = flags(tmp_path, config, None, sshd="none")
    assert got == {
        "permit_root_login": 1.0,
        "password_authentication": 0.0,
        "permit_empty_passwords": 0.0,
        "max_auth_tries": 1.0,
    }
    assert "parsed" in text


def test_broken_sshd_falls_back_with_a_note(tmp_path: Path) -> None:
    got, text = flags(tmp_path, "PasswordAuthentication no\n", None, sshd="/nonexistent/sshd")
    assert got["password_authentication"] == 0.0
    assert "sshd -T unavailable" in text


def test_the_reload_advice_fits_this_host() -> None:
    """No systemd here (a container): the fix names the init script or a HUP, not `systemctl reload ssh`."""
    from pathlib import Path

    from agent.collectors.ssh import _reload_command

    command = _reload_command()
    if Path("/run/systemd/system").is_dir():
        assert command.startswith("systemctl reload ")
    else:
        assert not command.startswith("systemctl")
        assert command.endswith("reload") or command.startswith("kill -HUP")
