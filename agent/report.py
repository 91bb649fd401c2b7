"""The console report of ``shaobing scan``: sections of findings, each saying what, why and how to fix."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from agent.compat import Literal

__all__ = ["Finding", "Section", "render_text", "render_json"]

Severity = Literal["critical", "warning", "info"]

_SEVERITY_TEXT = {"critical": "严重", "warning": "警告", "info": "提示"}


@dataclass
class Finding:
    severity: Severity
    title: str  # what was found, e.g. "账户 root 使用弱口令"
    detail: str = ""  # why it is a risk
    fix: str = ""  # what to do about it


@dataclass
class Section:
    title: str  # e.g. "版本与生命周期 (Versions and end of life)"
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # context: what was checked, what could not be


def render_text(sections: Sequence[Section]) -> str:
    """Plain text for a terminal; findings sorted most severe first."""
    order = {"critical": 0, "warning": 1, "info": 2}
    lines: list[str] = []
    for section in sections:
        lines.append(f"== {section.title} ==")
        if not section.findings:
            lines.append("  未发现问题 (no findings)")
        for f in sorted(section.findings, key=lambda f: order[f.severity]):
            lines.append(f"  [{_SEVERITY_TEXT[f.severity]}] {f.title}")
            if f.detail:
                lines.append(f"      原因: {f.detail}")
            if f.fix:
                lines.append(f"      处理: {f.fix}")
        for note in section.notes:
            lines.append(f"  * {note}")
        lines.append("")
    return "\n".join(lines)


def render_json(sections: Sequence[Section], tool: str) -> str:
    """The same report for tools: sections with their findings (severity, title, detail, fix) and notes."""
    return json.dumps({"tool": tool, "sections": [asdict(s) for s in sections]}, ensure_ascii=False, indent=2)
