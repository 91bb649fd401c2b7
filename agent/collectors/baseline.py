"""The 等保 2.0 self-check (agent.baseline) as metrics, for one protection level::

    shaobing_baseline_check_passed{standard="gbt22239-2019",level="3",clause="8.1.4.3",check="auditd_running"} 0
    shaobing_baseline_checks{standard="gbt22239-2019",level="3",status="manual"} 9
    shaobing_baseline_clause_pass_ratio{standard="gbt22239-2019",level="3",clause="8.1.4.1"} 0.5
    shaobing_baseline_pass_ratio{standard="gbt22239-2019",level="3"} 0.62

A check that needs a person (manual) or has nothing to look at here (not applicable) has no
``check_passed`` series: absent, never 0 or 1. Several checks read what the agent's other collectors found
(password audit, exposure, updates, versions, personal data); this collector runs after them.
``shaobing scan --baseline gbt22239-3`` prints the full report with evidence and fixes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional

from agent.baseline.clauses import STANDARD
from agent.baseline.engine import BaselineResult, run_baseline
from agent.baseline.host import HostView
from agent.baseline.model import STATUS_TEXT, Thresholds
from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector, CollectorOptions
from agent.report import Finding, Section

__all__ = ["BaselineOptions", "BaselineCollector"]

_T = Thresholds()


@dataclass
class BaselineOptions(CollectorOptions):
    # The protection level (定级) of the systems on this host: 2 or 3.
    level: int = field(default=3, metadata={"min": 2, "max": 3})
    # The values checks judge by; defaults are those assessors commonly apply (docs/baseline.md says where from).
    password_min_length: int = field(default=_T.password_min_length, metadata={"min": 1, "max": 128})
    password_min_classes: int = field(default=_T.password_min_classes, metadata={"min": 1, "max": 4})
    password_max_days: int = field(default=_T.password_max_days, metadata={"min": 1, "max": 99999})
    lockout_max_tries: int = field(default=_T.lockout_max_tries, metadata={"min": 1, "max": 100})
    lockout_min_unlock_seconds: int = field(default=_T.lockout_min_unlock_seconds, metadata={"min": 0, "max": 86400})
    session_timeout_max_seconds: int = field(default=_T.session_timeout_max_seconds, metadata={"min": 1, "max": 86400})
    log_retention_days: int = field(default=_T.log_retention_days, metadata={"min": 1, "max": 3650})
    inactive_account_days: int = field(default=_T.inactive_account_days, metadata={"min": 1, "max": 3650})
    malware_signature_max_age_days: int = field(default=_T.malware_signature_max_age_days, metadata={"min": 1})
    # Process names of the anti-malware or host-security product deployed here, if the built-in list lacks it.
    antimalware_processes: list[str] = field(default_factory=list)
    # How long the first run after a start waits for the collectors it reads (password audit, exposure, updates,
    # versions, personal data) to have run once; checks whose evidence is still missing then say "manual".
    peer_wait: float = field(default=900.0, metadata={"duration": True, "min": 0.0, "max": 86400.0})
    # Where the checked tree starts (tests point it at a fixture root).
    root: str = "/"

    def thresholds(self) -> Thresholds:
        values = {f.name: getattr(self, f.name) for f in fields(Thresholds) if hasattr(self, f.name)}
        values["extra_antimalware_processes"] = tuple(self.antimalware_processes)
        return Thresholds(**values)


class BaselineCollector(Collector):
    name = "baseline"
    title = "等保 2.0 自查 (GB/T 22239-2019 baseline self-check)"
    options_class = BaselineOptions
    default_interval = 3600.0
    default_timeout = 60.0
    default_jitter = 300.0
    waits_for = ("passwords", "exposure", "updates", "versions", "pii")
    metrics = (
        MetricSpec("shaobing_baseline_check_passed", "gauge",
                   "1 when a baseline check passes, 0 when it fails; absent when it needs manual confirmation or "
                   "does not apply. clause is the GB/T 22239-2019 clause number for the level.",
                   ("standard", "level", "clause", "check")),
        MetricSpec("shaobing_baseline_checks", "gauge",
                   "Baseline checks by status: pass, fail, manual (needs a person), not_applicable.",
                   ("standard", "level", "status")),
        MetricSpec("shaobing_baseline_clause_pass_ratio", "gauge",
                   "Passed checks among the decided ones (pass or fail) of a clause; absent when none is decided.",
                   ("standard", "level", "clause"), "ratio"),
        MetricSpec("shaobing_baseline_pass_ratio", "gauge",
                   "The host's baseline score: passed checks among the decided ones (0..1).",
                   ("standard", "level"), "ratio"),
    )

    def __init__(self, options: BaselineOptions, context: AgentContext) -> None:
        super().__init__(options, context)
        self.opts = options
        self.last: Optional[BaselineResult] = None

    def evaluate(self, level: int) -> BaselineResult:
        root = Path(self.opts.root)
        host = HostView(root, root / "proc", peers=self.context.peers, clock=self.context.clock)
        return run_baseline(host, level, self.opts.thresholds(), self.context.hostname)

    def collect(self, out: MetricSet) -> None:
        result = self.evaluate(self.opts.level)
        self.last = result
        base = {"standard": STANDARD, "level": str(result.level)}
        for clause in result.clauses:
            for o in clause.checks:
                if o.result.status in ("pass", "fail"):
                    out.add("shaobing_baseline_check_passed", 1 if o.result.status == "pass" else 0,
                            {**base, "clause": clause.number, "check": o.spec.id})
            ratio = clause.ratio
            if ratio is not None:
                out.add("shaobing_baseline_clause_pass_ratio", ratio, {**base, "clause": clause.number})
        for status in STATUS_TEXT:
            out.add("shaobing_baseline_checks", result.count(status), {**base, "status": status})
        if result.score is not None:
            out.add("shaobing_baseline_pass_ratio", result.score, base)

    def report(self) -> Optional[Section]:
        if self.last is None:
            return None
        r = self.last
        section = Section(self.title)
        for clause in r.clauses:
            for o in clause.checks:
                if o.result.status == "fail":
                    section.findings.append(Finding("warning", f"{clause.number} {clause.name}: {o.spec.title}",
                                                    "; ".join(o.result.evidence[:3]), o.result.fix))
        score = "—" if r.score is None else f"{r.score * 100:.0f} 分"
        section.notes.append(f"第{'二' if r.level == 2 else '三'}级得分 {score}; 需人工确认 {r.count('manual')} 项. "
                             f"完整报告: shaobing scan --baseline gbt22239-{r.level}")
        return section
