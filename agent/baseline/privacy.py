"""个人信息保护 (personal information): no personal numbers or database dumps in served or shared folders."""

from __future__ import annotations

from agent.baseline.host import HostView
from agent.baseline.model import CheckResult, CheckSpec, Thresholds

__all__ = ["CHECKS"]


def personal_data_exposed(host: HostView, th: Thresholds) -> CheckResult:
    pii = host.peer("pii")
    if pii is None:
        return CheckResult("manual", ["个人信息泄露检查 (pii) 尚无结果"], "启用 collectors.pii")
    locations = sum(s.value for s in pii.samples("shaobing_pii_locations"))
    files = sum(s.value for s in pii.samples("shaobing_pii_files"))
    dumps = sum(s.value for s in pii.samples("shaobing_pii_dumps"))
    if not locations:
        return CheckResult("not_applicable", ["本机没有对外服务或共享的目录 (网站、FTP、共享)"])
    evidence = [f"检查了 {int(locations)} 个对外服务或共享的目录",
                f"含个人信息的文件 {int(files)} 个, 数据库导出或备份 {int(dumps)} 个"]
    if pii.get("shaobing_pii_scan_budget_exhausted"):
        evidence.append("本轮扫描到达读取上限, 结果不完整")
    if files or dumps:
        return CheckResult("fail", evidence,
            "把这些文件移出网站、FTP 与共享目录 (见 shaobing scan 的“个人信息泄露”一节)")
    return CheckResult("pass", evidence)


CHECKS = (
    CheckSpec("personal_data_exposed", "privacy", "b", (2, 3), "个人信息不在对外服务或共享目录中",
        personal_data_exposed),
)
