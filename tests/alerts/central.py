"""The shipped central configs (deploy/central), made runnable on loopback for tests.

Only the relay's address and the secret file paths are rewritten; everything else is exactly what ships.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CENTRAL = REPO / "deploy" / "central"
ALERTMANAGER_YML = CENTRAL / "alertmanager.yml"
PROMETHEUS_YML = CENTRAL / "prometheus.yml"
TARGETS_DIR = CENTRAL / "targets"
SHIPPED_RELAY_URL = "http://relay:10131"
SHIPPED_TOKEN_FILE = "/etc/alertmanager/secrets/relay_token"


def loopback_alertmanager_config(relay_url: str, token_file: Path) -> str:
    """alertmanager.yml with the relay at `relay_url` (e.g. http://127.0.0.1:PORT) and a test token file."""
    text = ALERTMANAGER_YML.read_text(encoding="utf-8")
    assert SHIPPED_RELAY_URL in text and SHIPPED_TOKEN_FILE in text, "the shipped config changed shape"
    return text.replace(SHIPPED_RELAY_URL, relay_url.rstrip("/")).replace(SHIPPED_TOKEN_FILE, str(token_file))
