"""主机详情 (host detail): the essentials of "Node Exporter Full" plus Shaobing's own findings for one host.

Everything is filtered by ``job="shaobing",instance="$instance"``; the fleet dashboard links here with
``var-instance`` set. This module has the frame and the health rows (load, memory, disks, network, services,
probes); the currency and security rows follow from ``dashboards/host_security.py``.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b

from dashboards.frame import frame, section
from dashboards.host_security import with_security_rows
from dashboards.levels import Usage, pct
from dashboards.panels import (
    BAD_IF_ANY,
    GOOD_IF_ONE,
    WARN_IF_ANY,
    Column,
    Query,
    stat,
    table,
    timeseries,
    worse_above,
    worse_below,
)
from dashboards.thresholds import Thresholds
from dashboards.variables import HOST

__all__ = ["UID", "build"]

UID = "shaobing-host"

FS = f'{HOST},fstype!="",mountpoint!=""'
NET = f'{HOST},device!="lo"'
CPUS = f"count(count by (cpu) (node_cpu_seconds_total{{{HOST}}}))"


def build(t: Thresholds) -> dash_b.Dashboard:
    use = Usage.read(t)
    load_warn = t.number("cpu.load1_per_core_warning")
    skew_warn = t.number("clock.skew_warning_seconds")
    skew_crit = t.number("clock.skew_critical_seconds")
    tls_warn = t.number("probes.tls_expiry_warning_days")
    tls_crit = t.number("probes.tls_expiry_critical_days")
    reboot_days = t.number("currency.reboot_required_days")
    tls_steps = worse_below(tls_warn, tls_crit)

    d = frame(
        UID,
        "主机详情 Host detail",
        "单台主机：CPU、内存、磁盘、网络、负载、服务与探测、证书、版本与停更、安全审计。",
        single_instance=True,
        time_from="now-3h",
    )

    d = section(
        d,
        "概览 Overview",
        stat(
            "在线 Up",
            "本机数据是否在送达（1 = 是）：Prometheus 最近一次抓取成功，或推送模式下最近一次推送在告警阈值之内。",
            [Query(f"max(instance:shaobing_host_up:max{{{HOST}}})")],
            thresholds=GOOD_IF_ONE,
            width=2,
        ),
        stat(
            "运行时长 Uptime",
            "自上次开机以来的时间。",
            [Query(f"node_time_seconds{{{HOST}}} - node_boot_time_seconds{{{HOST}}}")],
            unit="dtdurations",
            width=3,
        ),
        stat(
            "CPU 核数 Cores",
            "逻辑 CPU 个数。",
            [Query(CPUS)],
            width=2,
        ),
        stat(
            "CPU 使用率 CPU busy",
            f"非空闲 CPU 时间占比；告警阈值 {pct(use.cpu_warn)}%。",
            [Query(f'1 - avg(rate(node_cpu_seconds_total{{{HOST},mode="idle"}}[$__rate_interval]))')],
            unit="percentunit",
            decimals=1,
            thresholds=use.cpu_steps(),
            width=3,
            graph=True,
        ),
        stat(
            "内存使用率 Memory used",
            f"1 - 可用内存/总内存；告警阈值 {pct(use.memory_warn)}% / {pct(use.memory_crit)}%。",
            [Query(f"1 - node_memory_MemAvailable_bytes{{{HOST}}} / node_memory_MemTotal_bytes{{{HOST}}}")],
            unit="percentunit",
            decimals=1,
            thresholds=use.memory_steps(),
            width=3,
            graph=True,
        ),
        stat(
            "最满磁盘 Fullest disk",
            f"可写文件系统中已用空间最大的比例；告警阈值 {pct(use.disk_warn)}% / {pct(use.disk_crit)}%。",
            [Query(f"max(1 - node_filesystem_avail_bytes{{{FS}}} / node_filesystem_size_bytes{{{FS}}})")],
            unit="percentunit",
            decimals=1,
            thresholds=use.disk_steps(),
            width=3,
        ),
        stat(
            "1 分钟负载/核 Load1 per core",
            f"1 分钟平均负载除以核数；告警阈值 {load_warn:g}。",
            [Query(f"node_load1{{{HOST}}} / scalar({CPUS})")],
            decimals=2,
            thresholds=worse_above(load_warn),
            width=3,
        ),
        stat(
            "待重启 Reboot pending",
            f"系统更新后需要重启（1 = 是）；超过 {reboot_days:g} 天告警。",
            [Query(f"node_reboot_required{{{HOST}}}")],
            thresholds=WARN_IF_ANY,
            width=2,
            no_value="-",
        ),
        stat(
            "时钟偏差 Clock skew",
            f"主机时钟与 Prometheus 抓取时刻之差；告警阈值 {skew_warn:g} s / {skew_crit:g} s。",
            [Query(f"abs(node_time_seconds{{{HOST}}} - timestamp(node_time_seconds{{{HOST}}}))")],
            unit="s",
            decimals=1,
            thresholds=worse_above(skew_warn, skew_crit),
            width=3,
        ),
    )

    d = section(
        d,
        "CPU 与负载 CPU and load",
        timeseries(
            "CPU 按模式 CPU by mode",
            "各模式 CPU 时间占全部 CPU 的比例（堆叠，不含 idle）。",
            [
                Query(
                    f'sum by (mode) (rate(node_cpu_seconds_total{{{HOST},mode!="idle"}}[$__rate_interval]))'
                    f" / scalar({CPUS})",
                    legend="{{mode}}",
                )
            ],
            unit="percentunit",
            stacked=True,
            min_value=0,
            max_value=1,
        ),
        timeseries(
            "系统负载 Load average",
            f"1/5/15 分钟平均负载与 CPU 核数；告警阈值为核数 × {load_warn:g}。",
            [
                Query(f"node_load1{{{HOST}}}", legend="1m"),
                Query(f"node_load5{{{HOST}}}", legend="5m"),
                Query(f"node_load15{{{HOST}}}", legend="15m"),
                Query(CPUS, legend="CPU 核数"),
            ],
            min_value=0,
        ),
    )

    d = section(
        d,
        "内存 Memory",
        timeseries(
            "内存 Memory",
            "总内存、已用（总量 - 可用）、缓存与缓冲。",
            [
                Query(f"node_memory_MemTotal_bytes{{{HOST}}}", legend="总量 total"),
                Query(
                    f"node_memory_MemTotal_bytes{{{HOST}}} - node_memory_MemAvailable_bytes{{{HOST}}}",
                    legend="已用 used",
                ),
                Query(f"node_memory_Cached_bytes{{{HOST}}}", legend="缓存 cached"),
                Query(f"node_memory_Buffers_bytes{{{HOST}}}", legend="缓冲 buffers"),
                Query(f"node_memory_MemFree_bytes{{{HOST}}}", legend="空闲 free"),
            ],
            unit="bytes",
            min_value=0,
        ),
        timeseries(
            "交换分区 Swap",
            "交换分区总量与已用量；持续使用交换说明内存不足。",
            [
                Query(f"node_memory_SwapTotal_bytes{{{HOST}}}", legend="总量 total"),
                Query(
                    f"node_memory_SwapTotal_bytes{{{HOST}}} - node_memory_SwapFree_bytes{{{HOST}}}", legend="已用 used"
                ),
            ],
            unit="bytes",
            min_value=0,
        ),
    )

    d = section(
        d,
        "磁盘 Disks",
        table(
            "文件系统 Filesystems",
            f"每个挂载点的容量与使用率；阈值 {pct(use.disk_almost_full)}%（总览统计）、"
            f"{pct(use.disk_warn)}% / {pct(use.disk_crit)}%（告警）。",
            [
                Query(f"max by (mountpoint, device, fstype) (node_filesystem_size_bytes{{{FS}}})"),
                Query(f"max by (mountpoint, device, fstype) (node_filesystem_avail_bytes{{{FS}}})"),
                Query(
                    f"max by (mountpoint, device, fstype) "
                    f"(1 - node_filesystem_avail_bytes{{{FS}}} / node_filesystem_size_bytes{{{FS}}})"
                ),
                Query(
                    f"max by (mountpoint, device, fstype) "
                    f"(1 - node_filesystem_files_free{{{FS}}} / node_filesystem_files{{{FS}}})"
                ),
                Query(f"max by (mountpoint, device, fstype) (node_filesystem_readonly{{{FS}}})"),
                Query(f"max by (mountpoint, device, fstype) (node_filesystem_device_error{{{FS}}})"),
            ],
            columns=[
                Column("容量", unit="bytes"),
                Column("可用", unit="bytes"),
                Column(
                    "空间使用率",
                    unit="percentunit",
                    decimals=1,
                    thresholds=use.disk_steps(),
                ),
                Column("inode 使用率", unit="percentunit", decimals=1),
                Column("只读", thresholds=WARN_IF_ANY),
                Column("读取出错", thresholds=BAD_IF_ANY),
            ],
            labels={"mountpoint": "挂载点", "device": "设备", "fstype": "类型"},
            sort_by="空间使用率",
            width=12,
            height=8,
        ),
        timeseries(
            "空间使用率 Space used",
            "各挂载点已用空间比例；虚线为告警阈值。",
            [
                Query(
                    f"1 - node_filesystem_avail_bytes{{{FS}}} / node_filesystem_size_bytes{{{FS}}}",
                    legend="{{mountpoint}}",
                )
            ],
            unit="percentunit",
            min_value=0,
            max_value=1,
            thresholds=worse_above(use.disk_warn, use.disk_crit),
        ),
        timeseries(
            "磁盘吞吐 Disk throughput",
            "每个块设备每秒读（正）写（负）字节数。",
            [
                Query(f"rate(node_disk_read_bytes_total{{{HOST}}}[$__rate_interval])", legend="{{device}} 读 read"),
                Query(
                    f"-rate(node_disk_written_bytes_total{{{HOST}}}[$__rate_interval])", legend="{{device}} 写 write"
                ),
            ],
            unit="Bps",
        ),
        timeseries(
            "磁盘繁忙度 Disk busy",
            "设备处理 I/O 的时间占比（io_time 的速率）；接近 100% 表示磁盘饱和。",
            [Query(f"rate(node_disk_io_time_seconds_total{{{HOST}}}[$__rate_interval])", legend="{{device}}")],
            unit="percentunit",
            min_value=0,
            max_value=1,
        ),
    )

    d = section(
        d,
        "网络 Network",
        timeseries(
            "网络流量 Network traffic",
            "每个网卡每秒接收（正）发送（负）比特数，不含 lo。",
            [
                Query(
                    f"rate(node_network_receive_bytes_total{{{NET}}}[$__rate_interval]) * 8", legend="{{device}} 收 rx"
                ),
                Query(
                    f"-rate(node_network_transmit_bytes_total{{{NET}}}[$__rate_interval]) * 8",
                    legend="{{device}} 发 tx",
                ),
            ],
            unit="bps",
        ),
        timeseries(
            "网络错误与丢包 Errors and drops",
            "每个网卡每秒错误包与丢弃包数；持续非零说明链路或驱动有问题。",
            [
                Query(
                    f"rate(node_network_receive_errs_total{{{NET}}}[$__rate_interval])",
                    legend="{{device}} 收错 rx errs",
                ),
                Query(
                    f"rate(node_network_transmit_errs_total{{{NET}}}[$__rate_interval])",
                    legend="{{device}} 发错 tx errs",
                ),
                Query(
                    f"rate(node_network_receive_drop_total{{{NET}}}[$__rate_interval])",
                    legend="{{device}} 收丢 rx drop",
                ),
                Query(
                    f"rate(node_network_transmit_drop_total{{{NET}}}[$__rate_interval])",
                    legend="{{device}} 发丢 tx drop",
                ),
            ],
            unit="pps",
            min_value=0,
        ),
    )

    d = section(
        d,
        "服务与探测 Services and probes",
        table(
            "服务 Services",
            "本机关键服务是否在运行、进程数与常驻内存。",
            [
                Query(f"max by (service, kind) (shaobing_service_up{{{HOST}}})"),
                Query(
                    f"max by (service, kind) (shaobing_service_processes{{{HOST}}}"
                    f" * on (instance, job, service) group_left (kind) shaobing_service_up{{{HOST}}})"
                ),
                Query(
                    f"max by (service, kind) (shaobing_service_resident_memory_bytes{{{HOST}}}"
                    f" * on (instance, job, service) group_left (kind) shaobing_service_up{{{HOST}}})"
                ),
            ],
            columns=[
                Column("运行中", thresholds=GOOD_IF_ONE),
                Column("进程数"),
                Column("常驻内存", unit="bytes"),
            ],
            labels={"service": "服务", "kind": "类型"},
            sort_by="运行中",
            sort_desc=False,
            width=12,
            height=8,
        ),
        table(
            "探测 Probes",
            "本机发起的 TCP/HTTP/TLS 探测：是否成功、耗时、HTTP 状态码、"
            f"证书剩余天数（告警 {tls_warn:g} / {tls_crit:g} 天）。",
            [
                Query(f"max by (target, kind) (shaobing_probe_success{{{HOST}}})"),
                Query(f"max by (target, kind) (shaobing_probe_duration_seconds{{{HOST}}})"),
                Query(
                    f"max by (target, kind) (shaobing_probe_http_status_code{{{HOST}}}"
                    f" * on (instance, job, target) group_left (kind) shaobing_probe_success{{{HOST}}})"
                ),
                Query(
                    f"max by (target, kind) ((shaobing_tls_cert_expiry_timestamp_seconds{{{HOST}}} - time()) / 86400"
                    f" * on (instance, job, target) group_left (kind) shaobing_probe_success{{{HOST}}})"
                ),
            ],
            columns=[
                Column("成功", thresholds=GOOD_IF_ONE),
                Column("耗时", unit="s", decimals=3),
                Column("HTTP 状态码"),
                Column("证书剩余", unit="d", decimals=1, thresholds=tls_steps),
            ],
            labels={"target": "目标", "kind": "类型"},
            sort_by="成功",
            sort_desc=False,
            width=12,
            height=8,
        ),
        stat(
            "失败的 systemd 单元 Failed units",
            "处于 failed 状态的 systemd 单元数。",
            [Query(f"shaobing_systemd_units_failed{{{HOST}}}")],
            thresholds=WARN_IF_ANY,
            width=4,
            no_value="-",
        ),
        timeseries(
            "探测耗时 Probe duration",
            "每个探测目标的耗时。",
            [Query(f"shaobing_probe_duration_seconds{{{HOST}}}", legend="{{kind}} {{target}}")],
            unit="s",
            width=10,
            min_value=0,
        ),
        timeseries(
            "证书剩余天数 TLS certificate expiry",
            f"证书到期前的天数；虚线为告警阈值 {tls_warn:g} / {tls_crit:g} 天。",
            [Query(f"(shaobing_tls_cert_expiry_timestamp_seconds{{{HOST}}} - time()) / 86400", legend="{{target}}")],
            unit="d",
            width=10,
            thresholds=tls_steps,
        ),
    )
    return with_security_rows(d, t)
