"""Run the checks of one protection level, judge each clause, score the host; render text and JSON."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

from agent.baseline import access, auditing, identity, intrusion, malware, privacy
from agent.baseline.clauses import FAMILIES, STANDARD, clause_number, item_text
from agent.baseline.host import HostView
from agent.baseline.model import STATUS_TEXT, CheckResult, CheckSpec, Thresholds
from agent.compat import Literal

__all__ = ["ALL_CHECKS", "BaselineResult", "ClauseResult", "CheckOutcome", "run_baseline", "render_report",
           "render_json", "checks_for"]

log = logging.getLogger(__name__)

ALL_CHECKS: tuple[CheckSpec, ...] = (identity.CHECKS + access.CHECKS + auditing.CHECKS + intrusion.CHECKS
                                     + malware.CHECKS + privacy.CHECKS)
Verdict = Literal["符合", "部分符合", "不符合", "待确认", "不适用"]


@dataclass
class CheckOutcome:
    spec: CheckSpec
    result: CheckResult


@dataclass
class ClauseResult:
    family: str  # key
    name: str
    number: str
    verdict: Verdict
    checks: list[CheckOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for c in self.checks if c.result.status == status)

    @property
    def ratio(self) -> Optional[float]:
        decided = self.count("pass") + self.count("fail")
        return self.count("pass") / decided if decided else None


@dataclass
class BaselineResult:
    level: int
    clauses: list[ClauseResult]
    generated_at: float
    host: str

    @property
    def standard(self) -> str:
        return STANDARD

    def count(self, status: str) -> int:
        return sum(c.count(status) for c in self.clauses)

    @property
    def score(self) -> Optional[float]:
        """Passed checks among those with a verdict (pass or fail), 0..1; None when none has one."""
        decided = self.count("pass") + self.count("fail")
        return self.count("pass") / decided if decided else None


def checks_for(level: int) -> list[CheckSpec]:
    return [c for c in ALL_CHECKS if level in c.levels]


def _verdict(checks: Sequence[CheckOutcome]) -> Verdict:
    statuses = [c.result.status for c in checks]
    passed, failed = statuses.count("pass"), statuses.count("fail")
    if not passed and not failed:
        return "待确认" if "manual" in statuses else "不适用"
    if not failed:
        return "符合"
    return "不符合" if not passed else "部分符合"


def run_baseline(host: HostView, level: int, thresholds: Optional[Thresholds] = None,
    hostname: str = "") -> BaselineResult:
    th = thresholds or Thresholds()
    clauses = []
    for fam in FAMILIES:
        outcomes = []
        for spec in checks_for(level):
            if spec.clause != fam.key:
                continue
            try:
                result = spec.run(host, th)
            except Exception as exc:  # noqa: BLE001 - one broken check is "could not check", never a crash
                log.warning("baseline check %s failed: %s: %s", spec.id, type(exc).__name__, exc)
                result = CheckResult("manual", [f"检查出错 (check failed): {type(exc).__name__}"], "人工确认")
            outcomes.append(CheckOutcome(spec, result))
        if outcomes:
            clauses.append(ClauseResult(fam.key, fam.name, fam.numbers[level], _verdict(outcomes), outcomes))
    return BaselineResult(level, clauses, host.now, hostname)


_MARK = {"pass": "✔", "fail": "✘", "manual": "?", "not_applicable": "-"}


def render_report(result: BaselineResult) -> str:
    lines = [f"等保 2.0 自查 (GB/T 22239-2019 第{'二' if result.level == 2 else '三'}级 安全计算环境) — "
             f"{result.host or '本机'}",
             f"生成时间 {time.strftime('%Y-%m-%d %H:%M', time.localtime(result.generated_at))}; "
             "本报告为自查结果, 不代替等级测评 (self-check, not a certification)", ""]
    score = result.score
    lines.append(f"得分 (score): {'—' if score is None else f'{score * 100:.0f} 分'} — 通过 {result.count('pass')} 项, "
                 f"未通过 {result.count('fail')} 项, 需人工确认 {result.count('manual')} 项, "
                 f"不适用 {result.count('not_applicable')} 项")
    lines.append("")
    lines.append("条款汇总 (clauses):")
    for c in result.clauses:
        decided = c.count("pass") + c.count("fail")
        lines.append(f"  {c.number} {c.name} {c.verdict}  (通过 {c.count('pass')}/{decided}"
                     + (f", 待确认 {c.count('manual')}" if c.count("manual") else "") + ")")
    for c in result.clauses:
        english = next(f.english for f in FAMILIES if f.key == c.family)
        lines += ["", f"== {c.number} {c.name} ({english}): {c.verdict} =="]
        for o in c.checks:
            spec, r = o.spec, o.result
            number = clause_number(c.family, result.level, spec.item)
            lines.append(f"  [{_MARK[r.status]} {STATUS_TEXT[r.status]}] {number} "
                         f"{spec.title}  ({spec.id})")
            if r.status in ("fail", "manual"):
                requirement = item_text(c.family, spec.item, result.level)
                if requirement:
                    lines.append(f"      要求: {requirement}")
            for e in r.evidence[:20]:
                lines.append(f"      证据: {e}")
            if len(r.evidence) > 20:
                lines.append(f"      (另有 {len(r.evidence) - 20} 条证据未列出)")
            if r.fix and r.status in ("fail", "manual"):
                lines.append(f"      处理: {r.fix}")
    lines.append("")
    return "\n".join(lines)


def render_json(result: BaselineResult) -> str:
    doc = {
        "standard": STANDARD,
        "level": result.level,
        "host": result.host,
        "generated_at": result.generated_at,
        "score": result.score,
        "counts": {s: result.count(s) for s in STATUS_TEXT},
        "clauses": [{
            "family": c.family, "name": c.name, "clause": c.number, "verdict": c.verdict, "ratio": c.ratio,
            "checks": [{
                "id": o.spec.id, "item": o.spec.item, "title": o.spec.title, "status": o.result.status,
                "requirement": item_text(c.family, o.spec.item, result.level),
                "evidence": o.result.evidence, "fix": o.result.fix,
            } for o in c.checks],
        } for c in result.clauses],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
