"""全域总览 (fleet overview): which township is in trouble, at a glance, and a click through to the host.

The per-township numbers come from the ``township:*`` recording rules in ``alert_rules/records.yml``, so the
dashboard costs the same for ten hosts or ten thousand; the per-host table reads raw series filtered by the
township and instance variables.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b

from dashboards.frame import frame, section
from dashboards.levels import Usage, pct
from dashboards.panels import (
    BAD_IF_ANY,
    GOOD_IF_ONE,
    HOST_LABELS,
    HOST_LINKS,
    WARN_IF_ANY,
    Column,
    Query,
    link_to_fleet_township,
    stat,
    table,
    timeseries,
    worse_below,
)
from dashboards.thresholds import Thresholds
from dashboards.variables import FLEET
from dashboards.variables import ROLLUP as R

__all__ = ["UID", "build"]

UID = "shaobing-fleet"

# A zero for every township that has agents, so "no alerts" reads 0 instead of an empty cell.
ZERO_BY_TOWNSHIP = f"0 * township:shaobing_hosts:count{{{R}}}"
# instance:shaobing_host_up:max (alert_rules/records.yml) is 1 for a host whose data arrives: scraped (up), or
# pushed recently (push hosts behind NAT have no up), so push hosts stand beside pulled ones.
HOST_UP = f"max by (township, instance) (instance:shaobing_host_up:max{{{FLEET}}})"
ZERO_BY_HOST = f"0 * {HOST_UP}"
FS = 'fstype!="",mountpoint!=""'


def build(t: Thresholds) -> dash_b.Dashboard:
    use = Usage.read(t)
    tls_days = t.number("records.tls_expiry_days")
    eol_warn_days = t.number("currency.eol_warning_days")

    d = frame(
        UID,
        "全域总览 Fleet overview",
        "各乡镇主机在线、严重告警、系统停更、弱口令、安全更新、磁盘与证书；点击进入主机详情。",
    )

    d = section(
        d,
        "全域 Fleet",
        stat(
            "在线/总数 Hosts up/total",
            "所选乡镇中数据在送达的主机数（抓取成功，或推送模式下最近推送成功），和已知主机总数（含推送主机）。",
            [
                Query(f"sum(township:shaobing_hosts_up:sum{{{R}}})", legend="在线"),
                Query(f"sum(township:shaobing_hosts:count{{{R}}})", legend="总数"),
            ],
            width=3,
        ),
        stat(
            "离线主机 Hosts down",
            "抓取失败的主机数（主机宕机、网络不通或代理未运行）。",
            [Query(f"sum(township:shaobing_hosts:count{{{R}}}) - sum(township:shaobing_hosts_up:sum{{{R}}})")],
            thresholds=BAD_IF_ANY,
            width=3,
        ),
        stat(
            "严重告警 Critical alerts",
            "正在触发（firing）的 severity=critical 告警条数。",
            [Query(f'sum(township:shaobing_alerts_firing:count{{{R},severity="critical"}}) or vector(0)')],
            thresholds=BAD_IF_ANY,
            width=3,
        ),
        stat(
            "系统已停更 OS end of life",
            "操作系统已过厂商支持期（EOL）的主机数。",
            [Query(f"sum(township:shaobing_hosts_os_eol:count{{{R}}})")],
            thresholds=BAD_IF_ANY,
            width=3,
        ),
        stat(
            "弱口令主机 Weak passwords",
            "存在空口令或字典弱口令账户的主机数。",
            [Query(f"sum(township:shaobing_hosts_weak_password:count{{{R}}})")],
            thresholds=BAD_IF_ANY,
            width=3,
        ),
        stat(
            "待装安全更新 Security updates",
            "有待安装安全更新的主机数（不支持安全通告数据的系统不计入）。",
            [Query(f"sum(township:shaobing_hosts_security_updates_pending:count{{{R}}})")],
            thresholds=WARN_IF_ANY,
            width=3,
        ),
        stat(
            f"磁盘超 {pct(use.disk_almost_full)}% Disks full",
            f"已用空间超过 {pct(use.disk_almost_full)}% 的可写文件系统个数。",
            [Query(f"sum(township:shaobing_filesystems_almost_full:count{{{R}}})")],
            thresholds=WARN_IF_ANY,
            width=3,
        ),
        stat(
            f"证书 <{tls_days:g} 天 TLS expiring",
            f"剩余有效期不足 {tls_days:g} 天的 TLS 证书个数（含已过期）。",
            [Query(f"sum(township:shaobing_tls_certs_expiring:count{{{R}}})")],
            thresholds=WARN_IF_ANY,
            width=3,
        ),
    )

    # Table queries aggregate "by (township)" so every frame has exactly the township column (no __name__):
    # Grafana's merge transformation joins rows on all non-value columns.
    d = section(
        d,
        "各乡镇 By township",
        table(
            "乡镇一览 Townships",
            f"每个乡镇一行；点击乡镇名只看该乡镇。"
            f"磁盘阈值 {pct(use.disk_almost_full)}%，证书阈值 {tls_days:g} 天（与告警规则一致）。",
            [
                Query(f"sum by (township) (township:shaobing_hosts_up:sum{{{R}}})"),
                Query(f"sum by (township) (township:shaobing_hosts:count{{{R}}})"),
                Query(f"township:shaobing_hosts:count{{{R}}} - township:shaobing_hosts_up:sum{{{R}}}"),
                Query(
                    f'sum by (township) (township:shaobing_alerts_firing:count{{{R},severity="critical"}})'
                    f" or {ZERO_BY_TOWNSHIP}"
                ),
                Query(f"sum by (township) (township:shaobing_hosts_os_eol:count{{{R}}})"),
                Query(f"sum by (township) (township:shaobing_hosts_weak_password:count{{{R}}})"),
                Query(f"sum by (township) (township:shaobing_hosts_security_updates_pending:count{{{R}}})"),
                Query(f"sum by (township) (township:shaobing_filesystems_almost_full:count{{{R}}})"),
                Query(f"sum by (township) (township:shaobing_tls_certs_expiring:count{{{R}}})"),
            ],
            columns=[
                Column("在线"),
                Column("总数"),
                Column("离线", thresholds=BAD_IF_ANY),
                Column("严重告警", thresholds=BAD_IF_ANY),
                Column("系统停更", thresholds=BAD_IF_ANY),
                Column("弱口令主机", thresholds=BAD_IF_ANY),
                Column("待装安全更新主机", thresholds=WARN_IF_ANY),
                Column(f"磁盘超{pct(use.disk_almost_full)}%", thresholds=WARN_IF_ANY),
                Column(f"证书<{tls_days:g}天", thresholds=WARN_IF_ANY),
            ],
            labels={"township": "乡镇"},
            sort_by="严重告警",
            height=9,
            links={"乡镇": [link_to_fleet_township()]},
        ),
        timeseries(
            "各乡镇离线主机 Hosts down by township",
            "每个乡镇抓取失败的主机数随时间变化。",
            [
                Query(
                    f"township:shaobing_hosts:count{{{R}}} - township:shaobing_hosts_up:sum{{{R}}}",
                    legend="{{township}}",
                )
            ],
            thresholds=BAD_IF_ANY,
            min_value=0,
        ),
        timeseries(
            "各乡镇严重告警 Critical alerts by township",
            "每个乡镇正在触发的严重告警条数随时间变化。",
            [
                Query(
                    f'sum by (township) (township:shaobing_alerts_firing:count{{{R},severity="critical"}})'
                    f" or {ZERO_BY_TOWNSHIP}",
                    legend="{{township}}",
                )
            ],
            min_value=0,
        ),
    )

    d = section(
        d,
        "主机 Hosts",
        table(
            "主机一览 Hosts",
            "每台主机一行；点击主机地址进入主机详情。颜色阈值与告警规则一致："
            f"CPU {pct(use.cpu_warn)}%，内存 {pct(use.memory_warn)}%/{pct(use.memory_crit)}%，"
            f"磁盘 {pct(use.disk_warn)}%/{pct(use.disk_crit)}%，系统停更前 {eol_warn_days:g} 天。",
            [
                Query(HOST_UP),
                Query(
                    f"1 - avg by (township, instance) "
                    f'(rate(node_cpu_seconds_total{{{FLEET},mode="idle"}}[$__rate_interval]))'
                ),
                Query(
                    f"1 - max by (township, instance) (node_memory_MemAvailable_bytes{{{FLEET}}})"
                    f" / max by (township, instance) (node_memory_MemTotal_bytes{{{FLEET}}})"
                ),
                Query(
                    f"max by (township, instance) (1 - node_filesystem_avail_bytes{{{FLEET},{FS}}}"
                    f" / node_filesystem_size_bytes{{{FLEET},{FS}}})"
                ),
                Query(f"max by (township, instance) (shaobing_security_updates_pending{{{FLEET}}})"),
                Query(
                    f'sum by (township, instance) (shaobing_password_accounts{{{FLEET},reason=~"empty|dictionary"}})'
                ),
                Query(
                    f'count by (township, instance) (ALERTS{{alertstate="firing",severity="critical",'
                    f'township=~"$township",instance=~"$instance"}}) or {ZERO_BY_HOST}'
                ),
                Query(
                    f'min by (township, instance) (shaobing_eol_timestamp_seconds{{{FLEET},kind="os"}} > 0)'
                    " / 86400 - time() / 86400"
                ),
            ],
            columns=[
                Column("在线", thresholds=GOOD_IF_ONE),
                Column("CPU", unit="percentunit", decimals=1, thresholds=use.cpu_steps()),
                Column("内存", unit="percentunit", decimals=1, thresholds=use.memory_steps()),
                Column("最满磁盘", unit="percentunit", decimals=1, thresholds=use.disk_steps()),
                Column("待装安全更新", thresholds=WARN_IF_ANY),
                Column("弱口令账户", thresholds=BAD_IF_ANY),
                Column("严重告警", thresholds=BAD_IF_ANY),
                Column("系统停更剩余", unit="d", decimals=0, thresholds=worse_below(eol_warn_days, 0)),
            ],
            labels=HOST_LABELS,
            sort_by="严重告警",
            height=14,
            links=HOST_LINKS,
        ),
    )
    return d
