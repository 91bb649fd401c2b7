"""主机详情, second half: the rows about the host's currency and security (versions, end of life, audits).

The first half (health: load, memory, disks, network, services, probes) and the dashboard frame are in
``dashboards/host.py``; the panels here continue its layout.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b

from dashboards.frame import section
from dashboards.levels import Currency
from dashboards.panels import (
    BAD_IF_ANY,
    BLUE,
    GREEN,
    ORANGE,
    WARN_IF_ANY,
    Column,
    Query,
    stat,
    steps,
    table,
    worse_above,
)
from dashboards.thresholds import Thresholds
from dashboards.variables import HOST, RISKY_PASSWORD

__all__ = ["with_security_rows"]


def with_security_rows(d: dash_b.Dashboard, t: Thresholds) -> dash_b.Dashboard:
    """Append the 版本与停更 and 安全审计 rows for the ``$instance`` host."""
    cur = Currency.read(t)
    pw_stale = t.number("security.password_audit_stale_days")
    audit_stale = t.number("security.security_audit_stale_days")

    d = section(
        d,
        "版本与停更 Versions and end of life",
        table(
            "操作系统 Operating system",
            "os-release 中的系统名称与版本，uname 中的内核与架构。",
            [
                Query(
                    f"max by (pretty_name, version_id, release, machine) "
                    f"(node_os_info{{{HOST}}} * on (instance, job) group_left (release, machine)"
                    f" node_uname_info{{{HOST}}})"
                )
            ],
            columns=[Column("info")],
            labels={"pretty_name": "系统", "version_id": "版本", "release": "内核", "machine": "架构"},
            width=12,
            height=4,
        ),
        stat(
            "待装安全更新 Security updates",
            "包管理器报告的待安装安全更新数；不支持安全通告的系统显示为空（未知，不是 0）。",
            [
                Query(
                    f"shaobing_security_updates_pending{{{HOST}}}"
                    f" and shaobing_security_updates_supported{{{HOST}}} == 1"
                )
            ],
            thresholds=WARN_IF_ANY,
            width=4,
            no_value="未知",
        ),
        stat(
            "安全更新积压 Update age",
            f"最早一个待装安全更新已等待的天数；告警阈值 {cur.updates_warn:g} / {cur.updates_crit:g} 天。",
            [
                Query(
                    f"(time() - shaobing_security_updates_pending_since_timestamp_seconds{{{HOST}}}) / 86400"
                    f" and shaobing_security_updates_pending{{{HOST}}} > 0"
                )
            ],
            unit="d",
            decimals=1,
            thresholds=cur.update_age_steps(),
            width=4,
            no_value="-",
        ),
        stat(
            "可升级软件包 Upgradable",
            "apt/yum 报告的全部可升级软件包数（含非安全更新）。",
            [Query(f"sum(apt_upgrades_pending{{{HOST}}}) or sum(yum_upgrades_pending{{{HOST}}})")],
            width=4,
            no_value="-",
        ),
        table(
            "生命周期 End of life",
            f"操作系统、运行时与服务端软件距停止支持（EOL）的天数；少于 {cur.eol_warn:g} 天告警，负数为已停更。",
            [
                Query(f"max by (product, cycle, kind) ((shaobing_eol_timestamp_seconds{{{HOST}}} - time()) / 86400)"),
                Query(f"max by (product, cycle, kind) (shaobing_eol_unknown{{{HOST}}})"),
            ],
            columns=[
                Column("剩余天数", unit="d", decimals=0, thresholds=cur.eol_steps()),
                Column("无数据", thresholds=steps(GREEN, (1, BLUE))),
            ],
            labels={"product": "产品", "cycle": "版本线", "kind": "类别"},
            sort_by="剩余天数",
            sort_desc=False,
            width=12,
            height=8,
        ),
        table(
            "软件版本 Software",
            "检测到的软件及版本；落后于基线的标为 1。",
            [
                Query(f"max by (software, version, source) (shaobing_software_info{{{HOST}}})"),
                Query(
                    # info has a series per (version, source), outdated one per software: many-to-one.
                    f"max by (software, version, source) (shaobing_software_info{{{HOST}}}"
                    f" * on (instance, job, software) group_left () shaobing_software_outdated{{{HOST}}})"
                ),
            ],
            columns=[Column("info"), Column("落后", thresholds=WARN_IF_ANY)],
            labels={"software": "软件", "version": "版本", "source": "来源"},
            sort_by="落后",
            width=12,
            height=8,
        ),
    )

    d = section(
        d,
        "安全审计 Security audit",
        table(
            "口令问题账户 Password findings",
            "有问题的账户数，按原因：empty 空口令、dictionary 字典弱口令、legacy_hash/unsupported_hash 旧哈希算法、"
            "uid0_extra 额外 UID 0、nopasswd_sudo 免密 sudo。",
            [Query(f"sum by (reason) (shaobing_password_accounts{{{HOST},{RISKY_PASSWORD}}})")],
            columns=[Column("账户数", thresholds=WARN_IF_ANY)],
            labels={"reason": "原因"},
            sort_by="账户数",
            width=8,
            height=8,
        ),
        table(
            "SSH 风险配置 Risky sshd settings",
            "sshd -T 的有效配置中存在风险的设置（1 = 存在）。",
            [Query(f"max by (setting) (shaobing_ssh_risky_setting{{{HOST}}})")],
            columns=[Column("存在", thresholds=WARN_IF_ANY)],
            labels={"setting": "设置"},
            sort_by="存在",
            width=5,
            height=8,
        ),
        table(
            "服务弱口令 Weak service credentials",
            "本机服务（Redis、PostgreSQL、FTP 等）接受弱口令或免认证（1 = 是）。",
            [Query(f"max by (service, port) (shaobing_service_weak_credentials{{{HOST}}})")],
            columns=[Column("弱口令", thresholds=BAD_IF_ANY)],
            labels={"service": "服务", "port": "端口"},
            sort_by="弱口令",
            width=5,
            height=8,
        ),
        stat(
            "防火墙 Firewall",
            "主机防火墙是否启用（1 = 是）。",
            [Query(f"shaobing_host_firewall_active{{{HOST}}}")],
            thresholds=steps(ORANGE, (1, GREEN)),
            width=6,
            no_value="-",
        ),
        table(
            "风险端口 Exposed ports",
            "监听在所有地址上的风险端口及其进程（1 = 暴露）。",
            [Query(f"max by (port, service, bind, process) (shaobing_exposed_port{{{HOST}}})")],
            columns=[Column("暴露", thresholds=WARN_IF_ANY)],
            labels={"port": "端口", "service": "服务", "bind": "监听地址", "process": "进程"},
            sort_by="暴露",
            width=12,
            height=6,
        ),
        table(
            "审计距今 Audit age",
            f"每项审计距最近一次完整运行的天数；口令审计超过 {pw_stale:g} 天、其他审计超过 {audit_stale:g} 天告警。",
            [Query(f"max by (audit) ((time() - shaobing_audit_last_complete_timestamp_seconds{{{HOST}}}) / 86400)")],
            columns=[Column("天数", unit="d", decimals=1, thresholds=worse_above(min(pw_stale, audit_stale)))],
            labels={"audit": "审计"},
            width=12,
            height=6,
        ),
    )
    return d
