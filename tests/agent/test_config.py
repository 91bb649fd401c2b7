"""Configuration: zero config, every class of error reported at once with file, key and line, CLI exit codes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.config import DEFAULT_LISTEN, default_config, load_config, parse_config
from agent.schema import SchemaError, parse_duration
from tests.support.agent import SHAOBING


def problems(text: str) -> list[str]:
    with pytest.raises(SchemaError) as info:
        parse_config(text, "agent.yml")
    return [str(p) for p in info.value.problems]


def test_zero_config_listens_on_loopback_only() -> None:
    cfg = default_config()
    assert cfg.listen_address == DEFAULT_LISTEN == "127.0.0.1:10130"
    assert parse_config("", "agent.yml").listen_address == DEFAULT_LISTEN
    assert parse_config("# only a comment\n", "agent.yml").collectors == {}


def test_valid_config_with_collector_sections() -> None:
    cfg = parse_config(
        "listen_address: 0.0.0.0:9999\n"
        "log_level: debug\n"
        "collectors:\n"
        "  health:\n"
        "    interval: 30s\n"
        "    timeout: 1500ms\n"
        "  self: {enabled: false}\n",
        "agent.yml",
    )
    assert cfg.listen_address == "0.0.0.0:9999"
    assert cfg.collectors["health"].interval == 30.0
    assert cfg.collectors["health"].timeout == 1.5
    assert cfg.collectors["self"].enabled is False


def test_every_error_reported_at_once_with_line_and_key() -> None:
    text = (
        "listen_adress: 127.0.0.1:1\n"  # line 1: typo
        "log_level: loud\n"  # line 2: bad choice
        "collectors:\n"
        "  helth: {}\n"  # line 4: unknown collector
        "  health:\n"
        "    interval: soon\n"  # line 6: bad duration
        "    enabled: yes please\n"  # line 7: not a bool
    )
    found = problems(text)
    assert len(found) == 5, found
    assert "agent.yml:1: listen_adress: unknown key (did you mean 'listen_address'?)" in found
    assert any(p.startswith("agent.yml:2: log_level: must be one of") and "'loud'" in p for p in found)
    assert "agent.yml:4: collectors.helth: unknown collector (did you mean 'health'?)" in found
    assert any(p.startswith("agent.yml:6: collectors.health.interval: expected a duration") for p in found)
    assert any(p.startswith("agent.yml:7: collectors.health.enabled: expected true or false") for p in found)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("listen_address: [1, 2]\n", "agent.yml:1: listen_address: expected a single string, got a list"),
        ("listen_address: nohost\n", "agent.yml:1: listen_address: expected host:port"),
        ("listen_address: 127.0.0.1:99999\n", "agent.yml:1: listen_address: port must be 1-65535"),
        ("collectors: [health]\n", "agent.yml:1: collectors: expected a mapping of collector names"),
        ("collectors:\n  health:\n    interval: 0s\n", "agent.yml:3: collectors.health.interval: must be at least 1"),
        ("state_dir: 5\n", "agent.yml:1: state_dir: expected a string, got 5 (quote it)"),
        ("a: [1,\n", "agent.yml:2: (top level): YAML syntax error"),
        ("- just\n- a list\n", "agent.yml:1: (top level): expected a mapping of settings at the top level"),
        ("log_level: info\nlog_level: debug\n", "agent.yml:2: log_level: duplicate key"),
        ("expose_masked_names: 1\n", "agent.yml:1: expose_masked_names: expected true or false, got 1"),
    ],
)
def test_error_classes(text: str, expected: str) -> None:
    found = problems(text)
    assert any(p.startswith(expected) for p in found), found


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="file not found"):
        load_config(tmp_path / "nope.yml")
    bad = tmp_path / "latin1.yml"
    bad.write_bytes(b"log_level: \xe9\n")
    with pytest.raises(SchemaError, match="cannot read"):
        load_config(bad)


def test_relative_web_config_resolves_next_to_the_config(tmp_path: Path) -> None:
    cfg_file = tmp_path / "agent.yml"
    cfg_file.write_text("web_config_file: web.yml\n")
    assert load_config(cfg_file).web_config_file == str(tmp_path / "web.yml")


@pytest.mark.parametrize(("text", "seconds"), [("15", 15), ("15s", 15), ("500ms", 0.5), ("5m", 300), ("6h", 21600),
                                               ("1d", 86400), (7, 7), (2.5, 2.5)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_docs_config_reference_is_current() -> None:
    from agent.configdoc import markdown

    path = Path(__file__).resolve().parents[2] / "docs" / "config-reference.md"
    assert path.read_text(encoding="utf-8") == markdown(), (
        "docs/config-reference.md is stale: run `python -m agent.configdoc > docs/config-reference.md`"
    )


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SHAOBING, *args], capture_output=True, text=True, timeout=60)


def test_config_check_cli_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text("listen_address: 127.0.0.1:10130\ncollectors:\n  health: {interval: 15s}\n")
    res = run_cli("config", "check", str(good))
    assert res.returncode == 0, res.stderr
    assert "配置有效" in res.stdout

    bad = tmp_path / "bad.yml"
    bad.write_text("collectors:\n  health:\n    intervall: 15s\n    timeout: never\n")
    res = run_cli("config", "check", str(bad))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert f"{bad}:3: collectors.health.intervall: unknown key (did you mean 'interval'?)" in res.stderr
    assert f"{bad}:4: collectors.health.timeout: expected a duration" in res.stderr

    res = run_cli("config", "check", str(tmp_path / "missing.yml"))
    assert res.returncode == 2 and "file not found" in res.stderr and "Traceback" not in res.stderr

    web_bad = tmp_path / "agent-web.yml"
    (tmp_path / "web.yml").write_text("basic_auth_users:\n  prometheus: plaintext\ntls_server_config:\n  cert_file: x\n")
    web_bad.write_text("web_config_file: web.yml\n")
    res = run_cli("config", "check", str(web_bad))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "basic_auth_users.prometheus: must be a bcrypt hash" in res.stderr
    assert "tls_server_config.key_file: required key is missing" in res.stderr


def test_agent_run_with_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("listen_address: 127.0.0.1:notaport\n")
    res = run_cli("agent", "run", "--config", str(bad))
    assert res.returncode == 2
    assert "listen_address" in res.stderr and "Traceback" not in res.stderr


def test_documented_examples_are_valid() -> None:
    """Every agent.yml example in docs/configuration.md passes the validator."""
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "collectors:" in b]
    assert blocks
    for block in blocks:
        parse_config(block, "docs/configuration.md")


def test_values_far_out_of_range_are_refused_with_their_key() -> None:
    with pytest.raises(SchemaError) as err:
        parse_config(
            "collectors:\n  health:\n    interval: 30000000d\n  probes:\n    timeout: .inf\n", "agent.yml"
        )
    text = str(err.value)
    assert "agent.yml:3: collectors.health.interval: must be at most 30d" in text


def test_a_huge_or_alias_bomb_document_is_refused_quickly() -> None:
    import time

    big = "labels:\n" + "".join(f"  k{i}: {'v' * 90}\n" for i in range(60_000))  # ~6 MB
    start = time.monotonic()
    with pytest.raises(SchemaError, match="a configuration may be at most 1048576 bytes"):
        parse_config(big, "agent.yml")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    with pytest.raises(SchemaError, match="more than 64 YAML aliases"):
        parse_config(bomb, "agent.yml")
    assert time.monotonic() - start < 5  # refused before any expansion, not after minutes and gigabytes


def test_a_secret_in_the_wrong_place_is_never_echoed() -> None:
    with pytest.raises(SchemaError) as err:
        parse_config("push:\n  url: http://127.0.0.1:1\n  password_file: [hunter2-secret]\n", "agent.yml")
    assert "push.password_file" in str(err.value) and "hunter2-secret" not in str(err.value)


def test_sighup_with_an_out_of_range_interval_keeps_the_agent_running(tmp_path: Path) -> None:
    import time

    from tests.support.agent import AgentProcess

    with AgentProcess(tmp_path, {"collectors": {"health": {"interval": "1s"}}}) as agent:
        agent.wait_for_metric("node_load1")
        agent.config_file.write_text(agent.config_file.read_text().replace("interval: 1s", "interval: 30000000d"))
        agent.reload()
        deadline = time.monotonic() + 15
        while "reload failed" not in agent.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "must be at most 30d" in agent.log()
        time.sleep(1)
        assert "node_load1" in agent.scrape()  # still up, still collecting
