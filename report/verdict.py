"""From findings to what leadership reads: a traffic light per township and this week's to-do list by risk.

Every to-do item has a risk score (higher first). A township is red when one of its hosts has an item of
risk >= RED (someone can get in, or a host is down or about to fill up), yellow for anything >= YELLOW,
green otherwise, and grey when none of its hosts sent data in the period (unknown is never green).
"""

from __future__ import annotations

from report.model import Host, Report, Todo, Township
from report.period import fmt_duration

__all__ = ["judge", "RED", "YELLOW", "REASON_NAMES", "CLASS_NAMES"]

RED = 80
YELLOW = 40
DAY = 86400.0

REASON_NAMES = {
    "empty": "空密码",
    "dictionary": "弱口令",
    "legacy_hash": "过时的密码算法",
    "uid0_extra": "额外的超级用户（UID 0）",
    "nopasswd_sudo": "免密码 sudo",
    "unsupported_hash": "无法识别的密码算法",
}
CLASS_NAMES = {"root": "超级管理员", "system": "系统账户", "human": "人员账户"}
# Risk per password reason (per host, whatever the count).
_REASON_RISK = {
    "empty": 95,
    "uid0_extra": 92,
    "dictionary": 88,
    "nopasswd_sudo": 60,
    "legacy_hash": 55,
    "unsupported_hash": 45,
}
_REASON_ACTION = {
    "empty": "立即为这些账户设置强密码，或锁定（passwd -l）不再使用的账户",
    "uid0_extra": "核实 UID 为 0 的额外账户；非必要立即删除或改为普通用户",
    "dictionary": "通知账户使用人一周内改为强密码（12 位以上，含大小写、数字和符号）",
    "nopasswd_sudo": "在 /etc/sudoers 中去掉 NOPASSWD，执行管理命令时要求输入密码",
    "legacy_hash": "让这些账户重设密码，以换用当前的 SHA-512 / yescrypt 算法",
    "unsupported_hash": "核实这些账户的密码字段，必要时重设密码",
}


def _host_todos(host: Host, end: float) -> list[Todo]:
    items: list[Todo] = []

    def add(risk: int, what: str, action: str) -> None:
        items.append(Todo(risk, host.township, host.instance, what, action))

    avail = host.availability
    if avail.covered_seconds <= 0:
        add(75, "本期没有任何监控数据", "检查主机是否在运行、Shaobing 代理是否启动，以及中心到主机的网络")
        return items
    ongoing = [o for o in avail.outages if o.ongoing]
    if ongoing:
        add(
            100,
            f"主机目前离线（已 {fmt_duration(ongoing[-1].seconds)}）",
            "现场检查电源、网络和系统，恢复后在面板上确认",
        )
    ratio = avail.uptime_ratio
    if ratio is not None and ratio < 0.99 and not ongoing:
        add(
            55,
            f"本期可用率 {ratio * 100:.2f}%（离线 {len(avail.outages)} 次）",
            "查明离线原因（断电、断网、死机），必要时配 UPS 或更换硬件",
        )
    if avail.missing_seconds >= 3600:
        add(45, f"{fmt_duration(avail.missing_seconds)}没有监控数据", "检查这段时间中心与主机之间的网络和 Prometheus")
    for fs in host.filesystems:
        days = fs.days_to_full
        if days is not None and days <= 7:
            add(
                88,
                f"磁盘 {fs.mountpoint} 预计 {days:.1f} 天后写满（已用 {fs.used_ratio * 100:.0f}%）",
                "立即清理日志、备份或旧文件，或扩容",
            )
        elif fs.used_ratio >= 0.9 or (days is not None and days <= 30):
            when = f"，预计 {days:.0f} 天后写满" if days is not None else ""
            add(60, f"磁盘 {fs.mountpoint} 已用 {fs.used_ratio * 100:.0f}%{when}", "本周安排清理或扩容")
    sec = host.now
    for (reason, klass), count in sorted((sec.weak or {}).items()):
        risk = _REASON_RISK.get(reason, 45) + (3 if klass == "root" else 0)
        add(
            risk,
            f"{CLASS_NAMES.get(klass, klass)}{REASON_NAMES.get(reason, reason)} {count} 个",
            _REASON_ACTION.get(reason, "核实并处理这些账户"),
        )
    for service, port in sec.weak_services or []:
        add(93, f"{service}（端口 {port}）可用空密码或默认密码登录", f"为 {service} 设置强密码并仅监听本机或内网地址")
    if sec.exposed:
        names = "、".join(sorted({f"{s}:{p}" for s, p in sec.exposed}))
        add(80, f"高危服务对所有网卡开放：{names}", "不需要对外的服务改为只监听 127.0.0.1，或用防火墙限制来源地址")
    for eol in host.eol_past(end):
        if eol.kind == "os":
            add(
                70,
                f"操作系统 {eol.product} {eol.cycle} 已停止安全维护",
                "制定迁移计划（升级到受支持的版本，如麒麟 V10 SP3、openEuler 22.03 LTS）",
            )
        else:
            add(50, f"{eol.product} {eol.cycle} 已停止维护", f"升级 {eol.product} 到受支持的版本")
    for name in host.outdated:
        add(45, f"{name} 版本低于安全基线", f"升级 {name}")
    if sec.security_updates:
        age = (end - host.updates_since) / DAY if host.updates_since else 0.0
        risk = 65 if age >= 14 else 50
        since = f"，已积压 {age:.0f} 天" if age >= 1 else ""
        add(
            risk,
            f"{sec.security_updates} 个安全更新未安装{since}",
            "在维护窗口安装安全更新（apt upgrade / yum update --security）",
        )
    if host.reboot_since is not None and end - host.reboot_since >= 7 * DAY:
        add(40, f"安装更新后 {(end - host.reboot_since) / DAY:.0f} 天未重启", "安排重启，让已安装的内核和库更新生效")
    if sec.baseline_ratio is not None and sec.baseline_ratio < 0.6:
        add(
            50,
            f"等保基线符合率 {sec.baseline_ratio * 100:.0f}%（{sec.baseline_failed or 0} 项不符合）",
            "运行 shaobing scan --baseline 查看每项的整改方法",
        )
    return items


def judge(report: Report) -> None:
    todos: list[Todo] = []
    for township in report.townships:
        items = [t for h in township.hosts for t in _host_todos(h, report.end)]
        todos += items
        _light(township, items)
    todos.sort(key=lambda t: (-t.risk, t.township, t.instance, t.what))
    report.todos = todos


def _light(township: Township, items: list[Todo]) -> None:
    if all(h.availability.covered_seconds <= 0 for h in township.hosts):
        township.verdict = "grey"
        township.reasons = ["本期没有监控数据"]
        return
    worst = max((t.risk for t in items), default=0)
    township.verdict = "red" if worst >= RED else "yellow" if worst >= YELLOW else "green"
    top = sorted(items, key=lambda t: -t.risk)
    township.reasons = [f"{t.instance}：{t.what}" for t in top[:3]]
    if len(top) > 3:
        township.reasons.append(f"另有 {len(top) - 3} 项")
