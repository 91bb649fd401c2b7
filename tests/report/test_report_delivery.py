"""Weekly delivery with the shipped files: deploy/central/report.example.yml (addresses rewritten) sends through
the relay's channels from the shipped relay.example.yml — DingTalk a signed summary with links, WeCom the
summary and the PDF itself (upload_media, then a file message) — and e-mails the PDF over STARTTLS with login
to a loopback SMTP server. The unit's ExecStart line is what runs."""

from __future__ import annotations

import configparser
import shlex
import ssl
import subprocess
import sys
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.relay.conftest import fakes  # noqa: F401  (fixture)
from tests.relay.relay_fakes import SECRETS, FakeProviders
from tests.relay.shipped import shipped_relay_config
from tests.report.conftest import Week
from tests.support.prometheus import free_port
from tests.support.tls import make_ca, make_cert

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "central" / "report.example.yml"
UNIT = REPO / "deploy" / "systemd" / "shaobing-report.service"
SMTP_USER, SMTP_PASSWORD = "shaobing@example.gov.cn", "smtp-test-password"


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[Any, list[str], bool]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        secure = session.ssl is not None
        self.messages.append((message_from_bytes(envelope.content, policy=policy.default), envelope.rcpt_tos, secure))
        return "250 OK"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (SMTP_USER.encode(), SMTP_PASSWORD.encode())
    return AuthResult(success=ok)


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[_Inbox, int, Path]]:
    ca = make_ca(tmp_path / "tls")
    cert = make_cert(tmp_path / "tls", "smtp", ca, hosts=["127.0.0.1", "localhost"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert.cert_file, cert.key_file)
    inbox = _Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticate,
        auth_required=True,
    )
    controller.start()
    try:
        yield inbox, port, ca.cert_file
    finally:
        controller.stop()


def _shipped_report_config(tmp: Path, week: Week, relay_yml: Path, smtp_port: int, ca: Path) -> Path:
    doc = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    doc["prometheus"]["url"] = week.url
    del doc["relay_db"]  # alerts from Prometheus' ALERTS here (the relay store is tested in test_report_alerts)
    doc["output"]["directory"] = str(tmp / "reports")
    doc["delivery"]["relay_config"] = str(relay_yml)
    doc["delivery"]["link_base"] = "http://127.0.0.1:9/reports/"
    (tmp / "smtp-password").write_text(SMTP_PASSWORD + "\n")
    doc["delivery"]["email"] = {
        "host": "127.0.0.1",
        "port": smtp_port,
        "security": "starttls",
        "username": SMTP_USER,
        "password": {"secret_file": str(tmp / "smtp-password")},
        "from": SMTP_USER,
        "to": ["leader@example.gov.cn", "xxzx@example.gov.cn"],
        "ca_file": str(ca),
    }
    path = tmp / "report.yml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _unit_command(config: Path) -> list[str]:
    """The shipped unit's ExecStart, with the venv's program and the config path of this test."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(UNIT, encoding="utf-8")
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert argv[0] == "/opt/shaobing-relay/venv/bin/shaobing-report" and argv[1] == "generate"
    argv = [sys.executable, "-m", "report", *argv[1:]]
    return [str(config) if a == "/etc/shaobing/report.yml" else a for a in argv]


@pytest.fixture
def shipped(
    week: Week,
    tmp_path: Path,
    fakes: FakeProviders,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    smtp: tuple[_Inbox, int, Path],
) -> tuple[Path, _Inbox]:
    """report.example.yml and relay.example.yml on loopback, with the SMTP server; (report.yml, its inbox)."""
    inbox, smtp_port, ca = smtp
    relay_yml = shipped_relay_config(tmp_path, fakes, free_port(), monkeypatch)
    return _shipped_report_config(tmp_path, week, relay_yml, smtp_port, ca), inbox


def test_weekly_delivery_to_chat_and_email_with_the_shipped_files(
    week: Week,
    tmp_path: Path,
    fakes: FakeProviders,  # noqa: F811
    shipped: tuple[Path, _Inbox],
) -> None:
    config, inbox = shipped
    command = _unit_command(config)
    assert "--send" in command
    done = subprocess.run([*command, *week.args], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    pdf = next((tmp_path / "reports").glob("*.pdf"))
    # DingTalk: one signed markdown message with the lights, headline numbers and links.
    (ding,) = fakes.got("dingtalk")
    assert ding.signature_ok
    text = ding.body["markdown"]["text"]
    assert "🔴 城关镇" in text and "🟡 河口乡" in text and "🟢 石桥镇" in text
    # 6 hosts; 165 + 60 minutes down in 6 weeks of host time less hk-02's day without data.
    assert "主机 6 台，总体可用率 99.62%，离线 3 次，目前离线 1 台" in text
    assert f"(http://127.0.0.1:9/reports/{pdf.name})" in text
    assert "1. 城关镇 cg-02：主机目前离线" in text
    # WeCom: the summary, then the PDF uploaded as a file and posted as a file message.
    wecom = fakes.got("wecom")
    assert [w.body.get("msgtype") for w in wecom] == ["markdown", "file"]
    (upload,) = fakes.got("wecom:upload")
    assert upload.signature_ok and upload.body["filename"] == pdf.name and upload.body["content"] == pdf.read_bytes()
    assert wecom[1].body["file"]["media_id"].startswith("media-")
    # E-mail: over STARTTLS after login, to both addresses, with the same PDF attached.
    ((mail, rcpts, secure),) = inbox.messages
    assert secure and sorted(rcpts) == ["leader@example.gov.cn", "xxzx@example.gov.cn"]
    assert mail["Subject"].startswith("某某县政务服务器运行巡检报告（")
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_filename() == pdf.name and attachment.get_content() == pdf.read_bytes()
    # No secret of any channel or of the mail login in what the report printed.
    assert not any(v in done.stdout + done.stderr for v in (*SECRETS.values(), SMTP_PASSWORD))


def test_a_failed_channel_keeps_the_report_and_exits_4(
    week: Week,
    tmp_path: Path,
    fakes: FakeProviders,  # noqa: F811
    shipped: tuple[Path, _Inbox],
) -> None:
    config, inbox = shipped
    fakes.plan("dingtalk", "error:310000")  # a bad signature: permanent, not retried
    done = subprocess.run([*_unit_command(config), *week.args], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 4
    assert "delivery: channel ops-dingtalk: errcode 310000" in done.stderr
    assert len(fakes.got("dingtalk")) == 1  # permanent: tried once
    assert list((tmp_path / "reports").glob("*.pdf")) and len(inbox.messages) == 1  # the rest still went out


def test_delivery_mistakes_are_found_before_any_query(
    week: Week,
    tmp_path: Path,
    fakes: FakeProviders,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    relay_yml = shipped_relay_config(tmp_path, fakes, free_port(), monkeypatch)
    doc = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    doc["prometheus"]["url"] = f"http://127.0.0.1:{free_port()}"  # nobody there: must not be reached
    doc["delivery"]["relay_config"] = str(relay_yml)
    for channels, says in ((["oncall-sms"], "is an SMS channel"), (["ops-dingtak"], "is not a channel")):
        doc["delivery"]["channels"] = channels
        config = tmp_path / "report.yml"
        config.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        done = subprocess.run(
            [*_unit_command(config), *week.args], capture_output=True, text=True, timeout=120, cwd=REPO
        )
        assert done.returncode == 2 and says in done.stderr, done.stderr
