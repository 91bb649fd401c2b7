"""Shaobing's Grafana dashboards, generated with grafana-foundation-sdk (Python >= 3.11).

One module per dashboard (``fleet``, ``host`` with ``host_security``, ``security``, ``selfcheck``);
``python -m dashboards`` writes ``dashboards/json/<uid>.json``, which Grafana loads through
deploy/central/grafana/provisioning/.
"""

from __future__ import annotations
