"""No silent downgrade: a reload (or a start) with a web config that lost its TLS or users section is refused;
only removing web_config_file from agent.yml serves plain HTTP, on purpose. The real agent process, SIGHUP."""

from __future__ import annotations

import base64
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import pytest
import yaml

from tests.support.agent import SHAOBING, AgentProcess
from tests.support.prometheus import free_port
from tests.support.tls import make_ca, make_cert

pytestmark = pytest.mark.integration

PASSWORD = "scrape-pass-downgrade"


def _web(tmp: Path) -> tuple[str, Path]:
    ca = make_ca(tmp / "certs")
    cert = make_cert(tmp / "certs", "agent", ca, hosts=["127.0.0.1"], days=30)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    doc = {
        "tls_server_config": {"cert_file": str(cert.cert_file), "key_file": str(cert.key_file)},
        "basic_auth_users": {"prometheus": hashed},
    }
    return yaml.safe_dump(doc), ca.cert_file


def _status(url: str, ca: Path | None, auth: bool) -> int:
    request = urllib.request.Request(url + "/metrics")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode())
    context = ssl.create_default_context(cafile=str(ca)) if ca else None
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def _wait_log(agent: AgentProcess, text: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while text not in agent.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    return agent.log()


def test_reload_refuses_to_drop_tls_or_auth_unless_web_config_file_is_removed(tmp_path: Path) -> None:
    web_text, ca = _web(tmp_path)
    with AgentProcess(tmp_path, {"collectors": {"health": {"interval": "1s"}}}, web_config=web_text) as agent:
        https = f"https://{agent.target}"
        assert _status(https, ca, auth=True) == 200 and _status(https, ca, auth=False) == 401
        web_file = tmp_path / "web.yml"

        web_file.write_text("# emptied by a failed deployment\n")
        agent.reload()
        log = _wait_log(agent, "web config file is empty")
        assert "reload failed, keeping the running configuration" in log
        assert _status(https, ca, auth=False) == 401 and _status(https, ca, auth=True) == 200

        doc = yaml.safe_load(web_text)
        web_file.write_text(yaml.safe_dump({"tls_server_config": doc["tls_server_config"]}))  # users gone
        agent.reload()
        log = _wait_log(agent, "would turn off authentication")
        assert "reload refused" in log
        assert _status(https, ca, auth=False) == 401

        web_file.write_text(yaml.safe_dump({"basic_auth_users": doc["basic_auth_users"]}))  # TLS gone
        agent.reload()
        assert "would turn off TLS" in _wait_log(agent, "would turn off TLS")
        assert _status(https, ca, auth=True) == 200

        # The explicit way: agent.yml no longer names a web config.
        config = yaml.safe_load(agent.config_file.read_text())
        del config["web_config_file"]
        agent.config_file.write_text(yaml.safe_dump(config))
        agent.reload()
        assert "serving without TLS and authentication" in _wait_log(agent, "serving without")
        deadline = time.monotonic() + 10
        plain = f"http://{agent.target}"
        while time.monotonic() < deadline:
            try:
                if _status(plain, None, auth=False) == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        assert _status(plain, None, auth=False) == 200


def test_an_empty_web_config_stops_the_start_with_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "web.yml").write_text("\n# nothing here\n")
    port = free_port()
    (tmp_path / "agent.yml").write_text(f"web_config_file: {tmp_path / 'web.yml'}\nlisten_address: 127.0.0.1:{port}\n")
    result = subprocess.run(
        [SHAOBING, "agent", "run", "--config", str(tmp_path / "agent.yml")],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2, result.stderr
    assert "web config file is empty" in result.stderr and "remove web_config_file" in result.stderr
