"""Config errors name file, key path and line; unknown keys get a did-you-mean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from relay.cli import main
from relay.config import ConfigError, load_config
from tests.relay.relay_fakes import FakeProviders
from tests.relay.relay_testlib import config_text
from tests.support.prometheus import free_port


def _write(tmp: Path, text: str) -> Path:
    path = tmp / "relay.yml"
    path.write_text(text)
    return path


def test_valid_config_loads_with_defaults(tmp_path: Path, fakes: FakeProviders) -> None:
    config = load_config(_write(tmp_path, config_text(tmp_path, fakes, 10131)))
    assert config.server.port == 10131 and config.server.host == "127.0.0.1"
    sms = config.channels["sms"]
    assert sms.severities == ("critical",) and sms.send_resolved is False  # SMS: critical firing only
    assert config.channels["ding"].rate_limits == ((60.0, 20),)
    assert "<redacted>" in repr(sms.secrets["access_key_secret"])
    assert "aliyun-test-secret" not in repr(sms)


def test_unknown_key_names_line_and_suggests(tmp_path: Path, fakes: FakeProviders) -> None:
    text = config_text(tmp_path, fakes, 10131).replace("    sign_name: 哨兵", "    sign_nme: 哨兵")
    path = _write(tmp_path, text)
    line = next(i + 1 for i, row in enumerate(text.splitlines()) if "sign_nme" in row)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert f"{path}:{line}:" in message
    assert "channels.sms.sign_nme" in message and "did you mean 'sign_name'" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  ops:\n    channels: [ding, sms]", "  ops:\n    channels: [ding, smss]", "unknown channel 'smss'"),
        ('phone: "13800001234"', 'phone: "12ab"', "people.zhang.phone"),
        ("    type: dingtalk", "    type: dingtlak", "did you mean 'dingtalk'"),
        ("  backoff_max_seconds: 1", "  backoff_max_seconds: -1", "delivery.backoff_max_seconds"),
        ("    sign_name: 哨兵", "    sign_name: 哨兵\n    fallback: nowhere", "channels.sms.fallback"),
        ("/ding_secret}", "/missing_file}", "cannot read"),
        ("access_token: {secret_file:", "access_token: {secret_env: NO_SUCH_RELAY_VAR, x:", "unknown key 'x'"),
    ],
)
def test_errors_are_located(tmp_path: Path, fakes: FakeProviders, old: str, new: str, expected: str) -> None:
    text = config_text(tmp_path, fakes, 10131)
    assert old in text
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text.replace(old, new, 1)))
    assert expected in str(err.value)
    assert str(tmp_path / "relay.yml") in str(err.value)


def test_inline_secret_is_refused(tmp_path: Path, fakes: FakeProviders) -> None:
    text = config_text(tmp_path, fakes, 10131)
    start = text.index("    access_token:")
    end = text.index("\n", start)
    with pytest.raises(ConfigError, match="secret_env"):
        load_config(_write(tmp_path, text[:start] + "    access_token: plain-text-token" + text[end:]))


def test_secret_from_environment(tmp_path: Path, fakes: FakeProviders, monkeypatch: pytest.MonkeyPatch) -> None:
    text = config_text(tmp_path, fakes, 10131)
    start = text.index("    access_token:")
    end = text.index("\n", start)
    text = text[:start] + "    access_token: {secret_env: RELAY_TEST_DING}" + text[end:]
    with pytest.raises(ConfigError, match="RELAY_TEST_DING is not set"):
        load_config(_write(tmp_path, text))
    monkeypatch.setenv("RELAY_TEST_DING", "from-env")
    assert load_config(_write(tmp_path, text)).channels["ding"].secrets["access_token"].value == "from-env"


def test_custom_template_errors_name_file_and_line(tmp_path: Path, fakes: FakeProviders) -> None:
    tpl = tmp_path / "im.md.j2"
    tpl.write_text("### {{ title }}\n{% for a in alerts %}\n- {{ a.title }\n{% endfor %}\n")
    text = config_text(tmp_path, fakes, 10131) + f"templates:\n  im_markdown: {tpl}\n"
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text))
    assert f"{tpl}:3" in str(err.value) and "syntax" in str(err.value)
    tpl.write_text("### {{ title }}\n\n{{ severty }}\n")
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, text))
    assert f"{tpl}:3" in str(err.value) and "unknown variable 'severty'" in str(err.value)
    tpl.write_text("### {{ title }} {{ count }}\n{{ labels.instance | upper }}\n")
    assert load_config(_write(tmp_path, text)).templates["im_markdown"] == str(tpl)


def test_bad_sms_template_param(tmp_path: Path, fakes: FakeProviders) -> None:
    text = config_text(tmp_path, fakes, 10131).replace(
        "    recipients: [zhang]", "    recipients: [zhang]\n    template_params:\n      name: '{{ titel }}'"
    )
    with pytest.raises(ConfigError, match="template_params.name.*unknown variable 'titel'"):
        load_config(_write(tmp_path, text))


def test_auth_is_required(tmp_path: Path, fakes: FakeProviders) -> None:
    text = config_text(tmp_path, fakes, 10131)
    start = text.index("  auth:")
    end = text.index("store:")
    with pytest.raises(ConfigError, match="callers must authenticate"):
        load_config(_write(tmp_path, text[:start] + text[end:]))


def test_check_config_exit_codes(tmp_path: Path, fakes: FakeProviders, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, config_text(tmp_path, fakes, free_port()))
    assert main(["check-config", str(path)]) == 0
    assert "OK" in capsys.readouterr().out
    path.write_text("channels: [\n")
    with pytest.raises(SystemExit) as exited:
        main(["check-config", str(path)])
    assert exited.value.code == 2
    assert f"{path}:" in capsys.readouterr().err


def test_example_config_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = (Path(__file__).resolve().parents[2] / "deploy/central/relay.example.yml").read_text()
    for name in ("relay-token", "aliyun-ak-id", "aliyun-ak-secret"):
        (tmp_path / name).write_text("x\n")
    (tmp_path / "ack-secret").write_text("a-signing-secret-of-32-characters\n")
    for var in ("DINGTALK_TOKEN", "DINGTALK_SECRET", "WECOM_KEY", "FEISHU_HOOK", "FEISHU_SECRET"):
        monkeypatch.setenv(f"SHAOBING_{var}", "x")
    text = example.replace("/etc/shaobing/", f"{tmp_path}/").replace("/var/lib/shaobing-relay/", f"{tmp_path}/")
    config = load_config(_write(tmp_path, text))
    # The routes are exactly the paths the shipped Alertmanager configuration posts to.
    import re

    alertmanager = (Path(__file__).resolve().parents[2] / "deploy/central/alertmanager.yml").read_text()
    posted = set(re.findall(r"url: \S+/alertmanager/([\w-]+)", alertmanager))
    assert config.heartbeat is not None
    assert set(config.routes) | {config.heartbeat.route} == posted == {"sms", "im", "heartbeat"}
    assert config.channels["ops-dingtalk"].fallback == "ops-wecom"


def test_test_send_reaches_the_channel(
    tmp_path: Path, fakes: FakeProviders, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, config_text(tmp_path, fakes, free_port()))
    assert main(["test-send", "ding", "--config", str(path)]) == 0
    assert "测试" in fakes.got("dingtalk")[0].body["markdown"]["text"]
    assert main(["test-send", "sms", "--config", str(path), "--to", "zhang"]) == 0
    out = capsys.readouterr().out
    assert "138****1234" in out and "13800001234" not in out
    fakes.plan("dingtalk", "error:310000")
    assert main(["test-send", "ding", "--config", str(path)]) == 1
    assert main(["test-send", "nosuch", "--config", str(path)]) == 2


def test_metric_catalogue_matches_docs() -> None:
    from relay.metrics import CATALOGUE, OUTCOMES

    docs = (Path(__file__).resolve().parents[2] / "docs/relay.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(shaobing_relay_[a-z_]+)`", docs))
    assert documented == set(CATALOGUE), documented ^ set(CATALOGUE)
    assert all(outcome in docs for outcome in OUTCOMES)


def test_check_config_reports_every_error_at_once(
    tmp_path: Path, fakes: FakeProviders, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        config_text(tmp_path, fakes, 10131)
        .replace("  backoff_max_seconds: 1\n", "  backoff_max_seconds: -1\n")
        .replace("    sign_name: 哨兵", "    sign_nme: 哨兵")
        .replace('  li: {name: 李四, phone: "13900005678"}', '  li: {name: 李四, phone: "call me"}')
        .replace("    channels: [ding, sms]", "    channels: [ding, sms, nosuch]")
        .replace("    type: dingtalk\n", "    type: dingtalk\n    quiet_hours: {start: '25:00', end: '07:00'}\n")
    )
    path = _write(tmp_path, text)
    with pytest.raises(SystemExit) as exited:
        main(["check-config", str(path)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    for needle in (
        "delivery.backoff_max_seconds",
        "channels.sms.sign_nme: unknown key",
        "people.li.phone",
        "routes.ops.channels[2]: unknown channel 'nosuch'",
        "channels.ding.quiet_hours.start",
    ):
        assert needle in err, (needle, err)
    assert "5 problems in" in err
    # A channel that failed to parse is not reported a second time as "unknown" where a route uses it.
    assert "unknown channel 'sms'" not in err


def test_review_works_without_provider_secrets(
    tmp_path: Path, fakes: FakeProviders, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = config_text(tmp_path, fakes, 10131).replace(
        "access_token: {secret_file: " + str(tmp_path / "secrets") + "/ding_token}",
        "access_token: {secret_env: SHAOBING_TEST_UNSET_DINGTALK_TOKEN}",
    )
    monkeypatch.delenv("SHAOBING_TEST_UNSET_DINGTALK_TOKEN", raising=False)
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match="SHAOBING_TEST_UNSET_DINGTALK_TOKEN is not set"):
        load_config(path)  # serving needs the secret...
    assert main(["review", "--config", str(path)]) == 0  # ...reviewing the queue does not
    capsys.readouterr()
