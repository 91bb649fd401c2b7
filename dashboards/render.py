"""Build every dashboard and render it to deterministic JSON (sorted keys, two-space indent, final newline)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dash_m

from dashboards import fleet, host, security, selfcheck
from dashboards.thresholds import Thresholds, load_thresholds

__all__ = ["OUTPUT_DIR", "BUILDERS", "build_all", "render", "write_all"]

OUTPUT_DIR = Path(__file__).resolve().parent / "json"

# uid -> builder; the file name is "<uid>.json".
BUILDERS: dict[str, Callable[[Thresholds], dash_b.Dashboard]] = {
    fleet.UID: fleet.build,
    host.UID: host.build,
    security.UID: security.build,
    selfcheck.UID: selfcheck.build,
}


def _number_panels(model: dash_m.Dashboard) -> None:
    """Stable panel ids in layout order: Grafana would otherwise assign them at load time, breaking viewPanel links."""
    next_id = 1
    for panel in model.panels or []:
        panel.id_val = next_id
        next_id += 1
        if isinstance(panel, dash_m.RowPanel):
            for inner in panel.panels:
                inner.id_val = next_id
                next_id += 1


def render(model: dash_m.Dashboard) -> str:
    return json.dumps(model, cls=JSONEncoder, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def build_all(thresholds: Thresholds | None = None) -> dict[str, str]:
    """File name -> JSON text for every dashboard."""
    t = thresholds or load_thresholds()
    out: dict[str, str] = {}
    for uid, builder in BUILDERS.items():
        model = builder(t).build()
        _number_panels(model)
        out[f"{uid}.json"] = render(model)
    return out


def write_all(directory: Path = OUTPUT_DIR, thresholds: Thresholds | None = None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in build_all(thresholds).items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
