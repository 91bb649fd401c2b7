"""When each security audit (passwords, ssh, services, exposure) last ran and last completed::

    shaobing_audit_last_run_timestamp_seconds{audit="passwords"} 1.7803008e+09
    shaobing_audit_last_complete_timestamp_seconds{audit="passwords"} 1.7802144e+09

The audits are separate collectors with their own intervals; they record their times in the state
directory (agent/audit/runs.py), and this collector is the single owner of the two families.
"""

from __future__ import annotations

from agent.audit.runs import AUDITS, read_runs, wait_first_runs
from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector, CollectorOptions

__all__ = ["AuditStatusCollector"]


class AuditStatusCollector(Collector):
    name = "audit_status"
    default_interval = 60.0
    default_timeout = 30.0
    metrics = (
        MetricSpec(
            "shaobing_audit_last_run_timestamp_seconds",
            "gauge",
            "Unix time the security audit last ran (finished or stopped at its budget).",
            ("audit",),
            "seconds",
        ),
        MetricSpec(
            "shaobing_audit_last_complete_timestamp_seconds",
            "gauge",
            "Unix time the security audit last ran to completion (every check done, nothing pending).",
            ("audit",),
            "seconds",
        ),
    )

    def __init__(self, options: CollectorOptions, context: AgentContext) -> None:
        super().__init__(options, context)
        self._waited = False  # only the first run waits; later ones report what the files say

    def collect(self, out: MetricSet) -> None:
        # On the first run, audits running right now (all at once under `shaobing agent once`) are waited
        # for, within this collector's own timeout; a slow one is reported by a later run.
        if not self._waited:
            wait_first_runs(self.context.state_dir, max(0.0, self.timeout - 3.0))
            self._waited = True
        runs = read_runs(self.context.state_dir)
        for audit in AUDITS:
            entry = runs.get(audit, {})
            if "run" in entry:
                out.add("shaobing_audit_last_run_timestamp_seconds", entry["run"], {"audit": audit})
            if "complete" in entry:
                out.add("shaobing_audit_last_complete_timestamp_seconds", entry["complete"], {"audit": audit})
