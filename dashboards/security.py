"""安全与版本 (security and version currency): fleet-wide findings as tables, and their 30-day trends.

Tables list only what needs attention (a host with nothing wrong has no row); the trends use the township
recording rules where they exist so a 30-day range stays cheap.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import timeseries as ts_b

from dashboards.frame import frame, section
from dashboards.levels import Currency
from dashboards.panels import (
    BAD_IF_ANY,
    GREEN,
    HOST_LABELS,
    HOST_LINKS,
    ORANGE,
    WARN_IF_ANY,
    Column,
    Query,
    stat,
    steps,
    table,
    timeseries,
)
from dashboards.security_baseline import with_baseline_section
from dashboards.thresholds import Thresholds
from dashboards.variables import FLEET, RISKY_PASSWORD
from dashboards.variables import ROLLUP as R

__all__ = ["UID", "build"]

UID = "shaobing-security"

TREND = "30d"


def _trend(title: str, description: str, query: Query, width: int) -> ts_b.Panel:
    """A 30-day trend, whatever the dashboard's time range: these numbers move over weeks."""
    return timeseries(title, description, [query], min_value=0, time_from=TREND, width=width)


def build(t: Thresholds) -> dash_b.Dashboard:
    cur = Currency.read(t)
    eol_warn, upd_warn, upd_crit = cur.eol_warn, cur.updates_warn, cur.updates_crit

    d = frame(
        UID,
        "安全与版本 Security and currency",
        "全域的系统停更、软件落后、安全更新积压、口令问题与对外暴露；近 30 天趋势。",
        time_from="now-7d",
    )

    d = section(
        d,
        "全域 Fleet",
        stat(
            "系统已停更 OS EOL",
            "操作系统已过支持期的主机数。",
            [Query(f'count(shaobing_eol_timestamp_seconds{{{FLEET},kind="os"}} > 0 <= time()) or vector(0)')],
            thresholds=BAD_IF_ANY,
        ),
        stat(
            f"{eol_warn:g} 天内停更 EOL soon",
            f"操作系统、运行时或服务端软件将在 {eol_warn:g} 天内停止支持的条目数。",
            [
                Query(
                    f"count((shaobing_eol_timestamp_seconds{{{FLEET}}} - time()) / 86400 < {eol_warn:g} > 0)"
                    " or vector(0)"
                )
            ],
            thresholds=WARN_IF_ANY,
        ),
        stat(
            "落后软件 Outdated software",
            "版本落后于基线的软件（主机 × 软件）数。",
            [Query(f"count(shaobing_software_outdated{{{FLEET}}} == 1) or vector(0)")],
            thresholds=WARN_IF_ANY,
        ),
        stat(
            f"安全更新积压超 {upd_warn:g} 天 Update backlog",
            f"有安全更新等待超过 {upd_warn:g} 天的主机数。",
            [
                Query(
                    f"count((time() - shaobing_security_updates_pending_since_timestamp_seconds{{{FLEET}}}) / 86400"
                    f" > {upd_warn:g} and shaobing_security_updates_pending{{{FLEET}}} > 0) or vector(0)"
                )
            ],
            thresholds=WARN_IF_ANY,
        ),
        stat(
            "弱口令账户 Weak password accounts",
            "空口令与字典弱口令账户总数。",
            [Query(f'sum(shaobing_password_accounts{{{FLEET},reason=~"empty|dictionary"}}) or vector(0)')],
            thresholds=BAD_IF_ANY,
        ),
        stat(
            "风险暴露 Risky exposures",
            "监听在所有地址上的风险端口、服务弱口令与 SSH 风险设置之和。",
            [
                Query(
                    f"(sum(shaobing_exposed_port{{{FLEET}}}) or vector(0))"
                    f" + (sum(shaobing_service_weak_credentials{{{FLEET}}}) or vector(0))"
                    f" + (sum(shaobing_ssh_risky_setting{{{FLEET}}}) or vector(0))"
                )
            ],
            thresholds=WARN_IF_ANY,
        ),
    )

    d = section(
        d,
        "版本与停更 Currency",
        table(
            "停更清单 End of life",
            f"已停更或 {eol_warn:g} 天内停更的系统与软件（负数为已停更天数）；支持期未知的另见右表。",
            [
                Query(
                    f"max by (township, instance, product, cycle, kind) "
                    f"((shaobing_eol_timestamp_seconds{{{FLEET}}} > 0) - time()) / 86400 < {eol_warn:g}"
                )
            ],
            columns=[Column("剩余天数", unit="d", decimals=0, thresholds=cur.eol_steps())],
            labels={**HOST_LABELS, "product": "产品", "cycle": "版本线", "kind": "类别"},
            sort_by="剩余天数",
            sort_desc=False,
            width=16,
            links=HOST_LINKS,
        ),
        table(
            "支持期未知 EOL unknown",
            "没有可靠来源给出支持期的系统或软件（不做猜测）。",
            [Query(f"max by (township, instance, product, cycle) (shaobing_eol_unknown{{{FLEET}}} == 1)")],
            columns=[Column("未知")],
            labels={**HOST_LABELS, "product": "产品", "cycle": "版本线"},
            width=8,
            links=HOST_LINKS,
        ),
        table(
            "落后软件 Outdated software",
            "包管理器之外安装、版本落后于基线的软件。",
            [
                Query(
                    f"max by (township, instance, software, version, source) (shaobing_software_info{{{FLEET}}}"
                    f" * on (instance, job, software) group_left () (shaobing_software_outdated{{{FLEET}}} == 1))"
                )
            ],
            columns=[Column("落后", thresholds=WARN_IF_ANY)],
            labels={**HOST_LABELS, "software": "软件", "version": "版本", "source": "来源"},
            width=12,
            links=HOST_LINKS,
        ),
        table(
            "安全更新积压 Security-update age",
            f"有待装安全更新的主机：个数与最早一个已等待的天数（告警 {upd_warn:g} / {upd_crit:g} 天）。",
            [
                Query(f"max by (township, instance) (shaobing_security_updates_pending{{{FLEET}}} > 0)"),
                Query(
                    f"max by (township, instance) ((time() - shaobing_security_updates_pending_since_timestamp_seconds"
                    f"{{{FLEET}}}) / 86400 and shaobing_security_updates_pending{{{FLEET}}} > 0)"
                ),
            ],
            columns=[
                Column("待装个数"),
                Column("已等待", unit="d", decimals=1, thresholds=cur.update_age_steps()),
            ],
            labels=HOST_LABELS,
            sort_by="已等待",
            width=12,
            links=HOST_LINKS,
        ),
    )

    d = section(
        d,
        "口令与暴露 Passwords and exposure",
        table(
            "口令问题 Password findings by reason",
            "按原因的账户数：empty 空口令、dictionary 字典弱口令、legacy_hash/unsupported_hash 旧哈希算法、"
            "uid0_extra 额外 UID 0、nopasswd_sudo 免密 sudo。",
            [
                Query(
                    f"sum by (township, instance, reason) (shaobing_password_accounts{{{FLEET},{RISKY_PASSWORD}}}) > 0"
                )
            ],
            columns=[Column("账户数", thresholds=WARN_IF_ANY)],
            labels={**HOST_LABELS, "reason": "原因"},
            sort_by="账户数",
            width=12,
            links=HOST_LINKS,
        ),
        table(
            "风险端口 Exposed ports",
            "监听在所有地址上的风险端口（数据库、远程管理、Docker 等）及其进程。",
            [Query(f"max by (township, instance, port, service, process) (shaobing_exposed_port{{{FLEET}}} == 1)")],
            columns=[Column("暴露", thresholds=WARN_IF_ANY)],
            labels={**HOST_LABELS, "port": "端口", "service": "服务", "process": "进程"},
            width=12,
            links=HOST_LINKS,
        ),
        table(
            "服务弱口令 Weak service credentials",
            "本机服务（Redis、PostgreSQL、FTP、Tomcat 等）接受弱口令或免认证。",
            [Query(f"max by (township, instance, port, service) (shaobing_service_weak_credentials{{{FLEET}}} == 1)")],
            columns=[Column("弱口令", thresholds=BAD_IF_ANY)],
            labels={**HOST_LABELS, "service": "服务", "port": "端口"},
            width=8,
            links=HOST_LINKS,
        ),
        table(
            "SSH 风险设置 Risky sshd settings",
            "sshd 有效配置中的风险设置（如允许 root 登录、允许口令认证）。",
            [Query(f"max by (township, instance, setting) (shaobing_ssh_risky_setting{{{FLEET}}} == 1)")],
            columns=[Column("存在", thresholds=WARN_IF_ANY)],
            labels={**HOST_LABELS, "setting": "设置"},
            width=8,
            links=HOST_LINKS,
        ),
        table(
            "防火墙未启用 Firewall off",
            "主机防火墙（nftables/iptables/firewalld）未启用的主机。",
            [Query(f"max by (township, instance) (shaobing_host_firewall_active{{{FLEET}}} == 0)")],
            columns=[Column("已启用", thresholds=steps(ORANGE, (1, GREEN)))],
            labels=HOST_LABELS,
            width=8,
            links=HOST_LINKS,
        ),
        table(
            "个人信息泄露 Personal data exposed",
            "网站、FTP、共享目录中含多条经校验的身份证号、手机号或银行卡号的文件数，以及数据库备份文件数；"
            "文件名和打码样例见该主机上 root 运行的 shaobing scan（指标只有数量）。",
            [
                Query(f"sum by (township, instance, location) (shaobing_pii_files{{{FLEET}}}) > 0"),
                Query(f"max by (township, instance, location) (shaobing_pii_dumps{{{FLEET}}}) > 0"),
            ],
            columns=[Column("个人信息文件", thresholds=BAD_IF_ANY), Column("数据库备份", thresholds=BAD_IF_ANY)],
            labels={**HOST_LABELS, "location": "位置"},
            width=24,
            links=HOST_LINKS,
        ),
    )

    d = section(
        d,
        "近 30 天趋势 30-day trends",
        _trend(
            "停更主机 Hosts on EOL systems",
            "各乡镇操作系统已停更的主机数。",
            Query(f"township:shaobing_hosts_os_eol:count{{{R}}}", legend="{{township}}"),
            width=8,
        ),
        _trend(
            "待装安全更新 Security updates pending",
            "各乡镇待装安全更新总数。",
            Query(f"township:shaobing_security_updates_pending:sum{{{R}}}", legend="{{township}}"),
            width=8,
        ),
        _trend(
            "弱口令主机 Hosts with weak passwords",
            "各乡镇存在空口令或字典弱口令账户的主机数。",
            Query(f"township:shaobing_hosts_weak_password:count{{{R}}}", legend="{{township}}"),
            width=8,
        ),
        _trend(
            "口令问题按原因 Password findings by reason",
            "全域按原因的问题账户数。",
            Query(f"sum by (reason) (shaobing_password_accounts{{{FLEET},{RISKY_PASSWORD}}})", legend="{{reason}}"),
            width=12,
        ),
        _trend(
            "风险端口 Exposed ports",
            "全域监听在所有地址上的风险端口数（按端口）。",
            Query(f"sum by (port) (shaobing_exposed_port{{{FLEET}}})", legend="{{port}}"),
            width=12,
        ),
    )
    return with_baseline_section(d)
