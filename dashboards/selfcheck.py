"""运维自检 (self-check): is the monitoring itself healthy — collectors, scrapes, audits, the relay, alerts."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b

from dashboards.frame import frame, section
from dashboards.panels import (
    BAD_IF_ANY,
    GOOD_IF_ONE,
    GREEN,
    HOST_LABELS,
    HOST_LINKS,
    RED,
    WARN_IF_ANY,
    Column,
    Query,
    stat,
    steps,
    table,
    timeseries,
    worse_above,
)
from dashboards.thresholds import Thresholds
from dashboards.variables import FLEET, RELAY_JOB

__all__ = ["UID", "build"]

UID = "shaobing-self"

RELAY = f'job="{RELAY_JOB}"'
# The outcomes ShaobingRelayDeliveryFailures counts as failed (alert_rules/src/relay.yml).
FAILED_OUTCOMES = "permanent_failure|dead_letter"
FAILING = (
    f"(shaobing_collector_success{{{FLEET}}} == 0) unless on (instance, job, collector) "
    f"(shaobing_collector_applicable{{{FLEET}}} == 0)"
)


def build(t: Thresholds) -> dash_b.Dashboard:
    rss_warn = t.number("agent.rss_warning_bytes")
    pw_stale = t.number("security.password_audit_stale_days")
    audit_stale = t.number("security.security_audit_stale_days")
    backlog_warn = t.number("relay.backlog_warning_seconds")
    backlog_crit = t.number("relay.backlog_critical_seconds")
    failures_ratio = t.number("relay.failures_critical_ratio")
    failures_window = t.duration("relay.failures_window")
    failed = f'{RELAY},outcome=~"{FAILED_OUTCOMES}"'
    backlog_steps = worse_above(backlog_warn, backlog_crit)

    d = frame(
        UID,
        "运维自检 Monitoring self-check",
        "采集器是否成功、耗时，抓取耗时，审计是否按时完成，告警转发（relay）的投递与积压。",
    )

    d = section(
        d,
        "代理 Agents",
        stat(
            "失败的采集器 Failing collectors",
            "本轮运行失败的采集器（主机 × 采集器）数；不适用于本机的不计入。",
            [Query(f"count({FAILING}) or vector(0)")],
            thresholds=BAD_IF_ANY,
        ),
        stat(
            "不适用的采集器 Not applicable",
            "在本机不适用（如非 systemd 系统上的单元检查）的采集器数，不是故障。",
            [Query(f"count(shaobing_collector_applicable{{{FLEET}}} == 0) or vector(0)")],
        ),
        stat(
            "最慢抓取 Slowest scrape",
            "Prometheus 抓取代理 /metrics 的最长耗时；代理从缓存返回，应远小于 1 秒。",
            [Query(f"max(scrape_duration_seconds{{{FLEET}}})")],
            unit="s",
            decimals=3,
            thresholds=worse_above(0.5),
        ),
        stat(
            "代理最大内存 Max agent RSS",
            f"代理进程常驻内存的最大值；告警阈值 {rss_warn / 1048576:g} MiB。",
            [Query(f"max(process_resident_memory_bytes{{{FLEET}}})")],
            unit="bytes",
            thresholds=worse_above(rss_warn),
        ),
        stat(
            "代理版本数 Agent versions",
            "全域运行中的代理版本个数；升级期间会大于 1。",
            [Query(f"count(count by (version) (shaobing_build_info{{{FLEET}}}))")],
        ),
        stat(
            "正在触发的告警 Firing alerts",
            "Prometheus 中所有正在触发的告警条数（不限乡镇）。",
            [Query('count(ALERTS{alertstate="firing"}) or vector(0)')],
            thresholds=WARN_IF_ANY,
        ),
        table(
            "采集器状态 Collectors",
            "每台主机每个采集器：是否成功、是否适用、耗时、距上次成功的时间。",
            [
                Query(f"max by (township, instance, collector) (shaobing_collector_success{{{FLEET}}})"),
                Query(f"max by (township, instance, collector) (shaobing_collector_applicable{{{FLEET}}})"),
                Query(f"max by (township, instance, collector) (shaobing_collector_duration_seconds{{{FLEET}}})"),
                Query(
                    f"max by (township, instance, collector) "
                    f"(time() - shaobing_collector_last_success_timestamp_seconds{{{FLEET}}})"
                ),
            ],
            columns=[
                Column("成功", thresholds=GOOD_IF_ONE),
                Column("适用"),
                Column("耗时", unit="s", decimals=3),
                Column("距上次成功", unit="s", decimals=0),
            ],
            labels={**HOST_LABELS, "collector": "采集器"},
            sort_by="成功",
            sort_desc=False,
            width=14,
            height=10,
            links=HOST_LINKS,
        ),
        timeseries(
            "采集耗时 Collector duration",
            "每个采集器最近一次运行耗时（各主机中的最大值）。",
            [Query(f"max by (collector) (shaobing_collector_duration_seconds{{{FLEET}}})", legend="{{collector}}")],
            unit="s",
            width=10,
            height=10,
            min_value=0,
        ),
        timeseries(
            "抓取耗时 Scrape duration",
            "Prometheus 抓取每台主机代理的耗时（scrape_duration_seconds）。",
            [Query(f"scrape_duration_seconds{{{FLEET}}}", legend="{{instance}}")],
            unit="s",
            min_value=0,
        ),
        timeseries(
            "代理资源 Agent resources",
            f"代理进程常驻内存（左）；告警阈值 {rss_warn / 1048576:g} MiB。",
            [Query(f"process_resident_memory_bytes{{{FLEET}}}", legend="{{instance}}")],
            unit="bytes",
            min_value=0,
            thresholds=worse_above(rss_warn),
        ),
        timeseries(
            "代理 CPU Agent CPU",
            "代理进程占用的 CPU 核数（CPU 秒的速率）。",
            [Query(f"rate(process_cpu_seconds_total{{{FLEET}}}[$__rate_interval])", legend="{{instance}}")],
            unit="percentunit",
            min_value=0,
        ),
        table(
            "审计时效 Audit staleness",
            f"每项审计距上次开始与上次完整完成的时间；口令审计超过 {pw_stale:g} 天、其他超过 {audit_stale:g} 天告警。",
            [
                Query(
                    f"max by (township, instance, audit) "
                    f"((time() - shaobing_audit_last_run_timestamp_seconds{{{FLEET}}}) / 86400)"
                ),
                Query(
                    f"max by (township, instance, audit) "
                    f"((time() - shaobing_audit_last_complete_timestamp_seconds{{{FLEET}}}) / 86400)"
                ),
                # Only the password audit has a CPU budget: put its flag on the audit="passwords" row.
                Query(
                    "max by (township, instance, audit) (label_replace("
                    f'shaobing_password_audit_budget_exhausted{{{FLEET}}}, "audit", "passwords", "", ""))'
                ),
            ],
            columns=[
                Column("距上次运行", unit="d", decimals=1),
                Column("距上次完成", unit="d", decimals=1, thresholds=worse_above(min(pw_stale, audit_stale))),
                Column("口令审计预算用尽", thresholds=WARN_IF_ANY),
            ],
            labels={**HOST_LABELS, "audit": "审计"},
            sort_by="距上次完成",
            width=12,
            links=HOST_LINKS,
        ),
    )

    d = section(
        d,
        "告警 Alerts",
        timeseries(
            "正在触发的告警 Firing alerts by severity",
            "Prometheus 中正在触发的告警条数，按级别（critical 严重、warning 警告、info 提示）。",
            [Query('count by (severity) (ALERTS{alertstate="firing"})', legend="{{severity}}")],
            min_value=0,
        ),
        table(
            "告警清单 Firing alerts",
            "正在触发的告警：名称、级别、乡镇与主机；点击主机进入主机详情。",
            [
                Query(
                    "count by (alertname, severity, township, instance) "
                    '(ALERTS{alertstate="firing",township=~"$township"})'
                )
            ],
            columns=[Column("条数")],
            labels={"alertname": "告警", "severity": "级别", "township": "乡镇", "instance": "主机"},
            sort_by="级别",
            width=12,
            height=8,
            links=HOST_LINKS,
        ),
    )

    d = section(
        d,
        "告警转发 Relay",
        stat(
            "转发服务在线 Relay up",
            "Prometheus 能否抓取告警转发服务（1 = 能）。",
            [Query(f"up{{{RELAY}}}")],
            thresholds=GOOD_IF_ONE,
            no_value="未部署",
            width=6,
        ),
        stat(
            "最久待发 Oldest pending",
            f"尚未送达的最早一条消息已等待的时间；告警阈值 {backlog_warn:g} s / {backlog_crit:g} s。",
            [Query(f"max(shaobing_relay_oldest_pending_age_seconds{{{RELAY}}})")],
            unit="s",
            thresholds=backlog_steps,
            width=6,
        ),
        stat(
            "死信 Dead letters",
            "重试后仍无法送达、等待人工处理的消息数。",
            [Query(f"sum(shaobing_relay_dead_letters{{{RELAY}}})")],
            thresholds=BAD_IF_ANY,
            width=6,
        ),
        stat(
            f"近 {failures_window} 失败率 Failure ratio",
            f"近 {failures_window} 内永久失败（permanent_failure、dead_letter）的投递占比；"
            f"告警阈值 {failures_ratio * 100:g}%。",
            [
                Query(
                    f"sum(increase(shaobing_relay_deliveries_total{{{failed}}}[{failures_window}]))"
                    # "> 0": no deliveries in the window reads "-" instead of NaN (0/0).
                    f" / (sum(increase(shaobing_relay_deliveries_total{{{RELAY}}}[{failures_window}])) > 0)"
                )
            ],
            unit="percentunit",
            thresholds=steps(GREEN, (failures_ratio, RED)),
            no_value="-",
            width=6,
        ),
        timeseries(
            "投递 Deliveries",
            "每个渠道每分钟的投递次数，按结果（success 成功、retry 重试、failed 失败等）。",
            [
                Query(
                    "sum by (channel, outcome) "
                    f"(rate(shaobing_relay_deliveries_total{{{RELAY}}}[$__rate_interval])) * 60",
                    legend="{{channel}} {{outcome}}",
                )
            ],
            unit="short",
            min_value=0,
        ),
        timeseries(
            "待发队列 Queue depth",
            "每个渠道尚未送达的消息数。",
            [Query(f"sum by (channel) (shaobing_relay_queue_depth{{{RELAY}}})", legend="{{channel}}")],
            unit="short",
            min_value=0,
            width=6,
        ),
        timeseries(
            "最久等待 Oldest pending age",
            f"每个渠道最早一条待发消息的等待时间；虚线为告警阈值 {backlog_warn:g} / {backlog_crit:g} s。",
            [Query(f"max by (channel) (shaobing_relay_oldest_pending_age_seconds{{{RELAY}}})", legend="{{channel}}")],
            unit="s",
            min_value=0,
            width=6,
            thresholds=backlog_steps,
        ),
    )

    d = section(
        d,
        "值班与短信猫 On-call",
        stat(
            "未确认的严重告警 Unacknowledged",
            "严重告警组中还没有人通过确认链接或短信回复“1”确认的（含已通知到最后一级仍无人确认的）。",
            [Query(f'sum(shaobing_relay_incidents{{{RELAY},state=~"open|exhausted"}})')],
            thresholds=BAD_IF_ANY,
            no_value="未启用",
            width=6,
        ),
        timeseries(
            "升级通知 Escalations",
            "每小时升级到下一级的次数，按路由和级别；exhausted 表示各级都已通知仍无人确认。",
            [
                Query(
                    f"sum by (route, level) (increase(shaobing_relay_escalations_total{{{RELAY}}}[1h]))",
                    legend="{{route}} {{level}}",
                )
            ],
            unit="short",
            min_value=0,
            width=6,
        ),
        stat(
            "短信猫 Modem ready",
            "短信猫通道是否可以发短信：已连接、SIM 卡就绪、已注册到网络（1 = 可以）。",
            [
                Query(f"shaobing_relay_modem_up{{{RELAY}}}", legend="{{channel}} 连接"),
                Query(f"shaobing_relay_modem_sim_ready{{{RELAY}}}", legend="{{channel}} SIM"),
                Query(f"shaobing_relay_modem_registered{{{RELAY}}}", legend="{{channel}} 网络"),
            ],
            thresholds=GOOD_IF_ONE,
            no_value="未配置",
            width=6,
        ),
        timeseries(
            "短信猫信号 Modem signal",
            "短信猫的信号强度（dBm）；低于 −105 dBm 持续 15 分钟会告警。",
            [Query(f"shaobing_relay_modem_signal_dbm{{{RELAY}}}", legend="{{channel}}")],
            unit="dBm",
            width=6,
        ),
    )
    return d
