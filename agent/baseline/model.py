"""What a baseline check returns, and the thresholds it judges by."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.compat import Literal

if TYPE_CHECKING:
    from agent.baseline.host import HostView

__all__ = ["Status", "CheckResult", "CheckSpec", "Thresholds", "STATUS_TEXT"]

# pass: the evidence meets the requirement; fail: it does not; manual: cannot be seen from the host (or the
# evidence is not collected yet) and needs a person to confirm; not_applicable: nothing here to check.
Status = Literal["pass", "fail", "manual", "not_applicable"]
STATUS_TEXT = {"pass": "通过", "fail": "未通过", "manual": "需人工确认", "not_applicable": "不适用"}


@dataclass
class CheckResult:
    status: Status
    # What was looked at, each line "file:line: text" or a plain sentence; never a secret or a hash.
    evidence: list[str] = field(default_factory=list)
    fix: str = ""  # what to do, in Chinese, when the status is fail or manual


@dataclass(frozen=True)
class CheckSpec:
    id: str  # stable, exported as the metric label "check"
    clause: str  # family key in agent.baseline.clauses, e.g. "identity"
    item: str  # the requirement's letter in the clause, e.g. "a"
    levels: tuple[int, ...]  # the protection levels that require it
    title: str  # Chinese, shown in the report
    run: Callable[[HostView, Thresholds], CheckResult]


@dataclass
class Thresholds:
    """The values a check judges by. Defaults are the values assessors commonly apply (see docs/baseline.md)."""

    password_min_length: int = 8
    password_min_classes: int = 3
    password_max_days: int = 90
    lockout_max_tries: int = 5
    lockout_min_unlock_seconds: int = 300
    session_timeout_max_seconds: int = 600
    log_retention_days: int = 180
    inactive_account_days: int = 90
    malware_signature_max_age_days: int = 7
    # Anti-malware or host-intrusion products known here beyond the built-in list (process names).
    extra_antimalware_processes: tuple[str, ...] = ()
