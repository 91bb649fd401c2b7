"""主机详情 (host detail): the essentials of "Node Exporter Full" plus Shaobing's own findings for one host.

Everything is filtered by ``job="shaobing",instance="$instance"``; the fleet dashboard links here with
``var-instance`` set.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b

from dashboards.frame import frame
from dashboards.panels import (
    BLUE,
    GREEN,
    ORANGE,
    RED,
    Column,
    Query,
    row,
    stat,
    steps,
    table,
    timeseries,
)
from dashboards.thresholds import Thresholds
from dashboards.variables import HOST, RISKY_PASSWORD

__all__ = ["UID", "build"]

UID = "shaobing-host"

FS = f'{HOST},fstype!="",mountpoint!=""'
NET = f'{HOST},device!="lo"'
CPUS = f"count(count by (cpu) (node_cpu_seconds_total{{{HOST}}}))"
YELLOW = "yellow"


def _pct(ratio: float) -> str:
    return f"{ratio * 100:g}"


def build(t: Thresholds) -> dash_b.Dashboard:
    fs_ratio = t.number("records.filesystem_usage_ratio")
    fs_warn = round(1 - t.percent_to_ratio("filesystem.space_almost_full_warning_avail_percent"), 6)
    fs_crit = round(1 - t.percent_to_ratio("filesystem.space_almost_full_critical_avail_percent"), 6)
    cpu_warn = t.number("cpu.utilisation_warning_ratio")
    load_warn = t.number("cpu.load1_per_core_warning")
    mem_warn = round(1 - t.percent_to_ratio("memory.available_warning_percent"), 6)
    mem_crit = round(1 - t.percent_to_ratio("memory.available_critical_percent"), 6)
    skew_warn = t.number("clock.skew_warning_seconds")
    skew_crit = t.number("clock.skew_critical_seconds")
    tls_warn = t.number("probes.tls_expiry_warning_days")
    tls_crit = t.number("probes.tls_expiry_critical_days")
    eol_warn = t.number("currency.eol_warning_days")
    upd_warn = t.number("currency.security_updates_warning_days")
    upd_crit = t.number("currency.security_updates_critical_days")
    reboot_days = t.number("currency.reboot_required_days")
    pw_stale = t.number("security.password_audit_stale_days")
    audit_stale = t.number("security.security_audit_stale_days")

    bad_if_any = steps(GREEN, (1, RED))
    warn_if_any = steps(GREEN, (1, ORANGE))
    d = frame(
        UID,
        "主机详情 Host detail",
        "单台主机：CPU、内存、磁盘、网络、负载、服务与探测、证书、版本与停更、安全审计。",
        single_instance=True,
        time_from="now-3h",
    )

    d = d.with_row(row("概览 Overview"))
    d = d.with_panel(
        stat(
            "在线 Up",
            "Prometheus 最近一次抓取本机代理是否成功（1 = 成功）。",
            [Query(f"up{{{HOST}}}")],
            thresholds=steps(RED, (1, GREEN)),
            width=2,
        )
    )
    d = d.with_panel(
        stat(
            "运行时长 Uptime",
            "自上次开机以来的时间。",
            [Query(f"node_time_seconds{{{HOST}}} - node_boot_time_seconds{{{HOST}}}")],
            unit="dtdurations",
            width=3,
        )
    )
    d = d.with_panel(
        stat(
            "CPU 核数 Cores",
            "逻辑 CPU 个数。",
            [Query(CPUS)],
            width=2,
        )
    )
    d = d.with_panel(
        stat(
            "CPU 使用率 CPU busy",
            f"非空闲 CPU 时间占比；告警阈值 {_pct(cpu_warn)}%。",
            [Query(f'1 - avg(rate(node_cpu_seconds_total{{{HOST},mode="idle"}}[$__rate_interval]))')],
            unit="percentunit",
            decimals=1,
            thresholds=steps(GREEN, (cpu_warn, ORANGE)),
            width=3,
            graph=True,
        )
    )
    d = d.with_panel(
        stat(
            "内存使用率 Memory used",
            f"1 - 可用内存/总内存；告警阈值 {_pct(mem_warn)}% / {_pct(mem_crit)}%。",
            [Query(f"1 - node_memory_MemAvailable_bytes{{{HOST}}} / node_memory_MemTotal_bytes{{{HOST}}}")],
            unit="percentunit",
            decimals=1,
            thresholds=steps(GREEN, (mem_warn, ORANGE), (mem_crit, RED)),
            width=3,
            graph=True,
        )
    )
    d = d.with_panel(
        stat(
            "最满磁盘 Fullest disk",
            f"可写文件系统中已用空间最大的比例；告警阈值 {_pct(fs_warn)}% / {_pct(fs_crit)}%。",
            [Query(f"max(1 - node_filesystem_avail_bytes{{{FS}}} / node_filesystem_size_bytes{{{FS}}})")],
            unit="percentunit",
            decimals=1,
            thresholds=steps(GREEN, (fs_ratio, YELLOW), (fs_warn, ORANGE), (fs_crit, RED)),
            width=3,
        )
    )
    d = d.with_panel(
        stat(
            "1 分钟负载/核 Load1 per core",
            f"1 分钟平均负载除以核数；告警阈值 {load_warn:g}。",
            [Query(f"node_load1{{{HOST}}} / scalar({CPUS})")],
            decimals=2,
            thresholds=steps(GREEN, (load_warn, ORANGE)),
            width=3,
        )
    )
    d = d.with_panel(
        stat(
            "待重启 Reboot pending",
            f"系统更新后需要重启（1 = 是）；超过 {reboot_days:g} 天告警。",
            [Query(f"node_reboot_required{{{HOST}}}")],
            thresholds=warn_if_any,
            width=2,
            no_value="-",
        )
    )
    d = d.with_panel(
        stat(
            "时钟偏差 Clock skew",
            f"主机时钟与 Prometheus 抓取时刻之差；告警阈值 {skew_warn:g} s / {skew_crit:g} s。",
            [Query(f"abs(node_time_seconds{{{HOST}}} - timestamp(node_time_seconds{{{HOST}}}))")],
            unit="s",
            decimals=1,
            thresholds=steps(GREEN, (skew_warn, ORANGE), (skew_crit, RED)),
            width=3,
        )
    )

    d = d.with_row(row("CPU 与负载 CPU and load"))
    d = d.with_panel(
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
        )
    )
    d = d.with_panel(
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
        )
    )

    d = d.with_row(row("内存 Memory"))
    d = d.with_panel(
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
        )
    )
    d = d.with_panel(
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
        )
    )

    d = d.with_row(row("磁盘 Disks"))
    d = d.with_panel(
        table(
            "文件系统 Filesystems",
            f"每个挂载点的容量与使用率；阈值 {_pct(fs_ratio)}%（总览统计）、"
            f"{_pct(fs_warn)}% / {_pct(fs_crit)}%（告警）。",
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
                    thresholds=steps(GREEN, (fs_ratio, YELLOW), (fs_warn, ORANGE), (fs_crit, RED)),
                ),
                Column("inode 使用率", unit="percentunit", decimals=1),
                Column("只读", thresholds=warn_if_any),
                Column("读取出错", thresholds=bad_if_any),
            ],
            labels={"mountpoint": "挂载点", "device": "设备", "fstype": "类型"},
            sort_by="空间使用率",
            width=12,
            height=8,
        )
    )
    d = d.with_panel(
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
            thresholds=steps(GREEN, (fs_warn, ORANGE), (fs_crit, RED)),
        )
    )
    d = d.with_panel(
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
        )
    )
    d = d.with_panel(
        timeseries(
            "磁盘繁忙度 Disk busy",
            "设备处理 I/O 的时间占比（io_time 的速率）；接近 100% 表示磁盘饱和。",
            [Query(f"rate(node_disk_io_time_seconds_total{{{HOST}}}[$__rate_interval])", legend="{{device}}")],
            unit="percentunit",
            min_value=0,
            max_value=1,
        )
    )

    d = d.with_row(row("网络 Network"))
    d = d.with_panel(
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
        )
    )
    d = d.with_panel(
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
        )
    )

    d = d.with_row(row("服务与探测 Services and probes"))
    d = d.with_panel(
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
                Column("运行中", thresholds=steps(RED, (1, GREEN))),
                Column("进程数"),
                Column("常驻内存", unit="bytes"),
            ],
            labels={"service": "服务", "kind": "类型"},
            sort_by="运行中",
            sort_desc=False,
            width=12,
            height=8,
        )
    )
    d = d.with_panel(
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
                Column("成功", thresholds=steps(RED, (1, GREEN))),
                Column("耗时", unit="s", decimals=3),
                Column("HTTP 状态码"),
                Column("证书剩余", unit="d", decimals=1, thresholds=steps(RED, (tls_crit, ORANGE), (tls_warn, GREEN))),
            ],
            labels={"target": "目标", "kind": "类型"},
            sort_by="成功",
            sort_desc=False,
            width=12,
            height=8,
        )
    )
    d = d.with_panel(
        stat(
            "失败的 systemd 单元 Failed units",
            "处于 failed 状态的 systemd 单元数。",
            [Query(f"shaobing_systemd_units_failed{{{HOST}}}")],
            thresholds=warn_if_any,
            width=4,
            no_value="-",
        )
    )
    d = d.with_panel(
        timeseries(
            "探测耗时 Probe duration",
            "每个探测目标的耗时。",
            [Query(f"shaobing_probe_duration_seconds{{{HOST}}}", legend="{{kind}} {{target}}")],
            unit="s",
            width=10,
            min_value=0,
        )
    )
    d = d.with_panel(
        timeseries(
            "证书剩余天数 TLS certificate expiry",
            f"证书到期前的天数；虚线为告警阈值 {tls_warn:g} / {tls_crit:g} 天。",
            [Query(f"(shaobing_tls_cert_expiry_timestamp_seconds{{{HOST}}} - time()) / 86400", legend="{{target}}")],
            unit="d",
            width=10,
            thresholds=steps(RED, (tls_crit, ORANGE), (tls_warn, GREEN)),
        )
    )

    d = d.with_row(row("版本与停更 Versions and end of life"))
    d = d.with_panel(
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
        )
    )
    d = d.with_panel(
        stat(
            "待装安全更新 Security updates",
            "包管理器报告的待安装安全更新数；不支持安全通告的系统显示为空（未知，不是 0）。",
            [
                Query(
                    f"shaobing_security_updates_pending{{{HOST}}}"
                    f" and shaobing_security_updates_supported{{{HOST}}} == 1"
                )
            ],
            thresholds=warn_if_any,
            width=4,
            no_value="未知",
        )
    )
    d = d.with_panel(
        stat(
            "安全更新积压 Update age",
            f"最早一个待装安全更新已等待的天数；告警阈值 {upd_warn:g} / {upd_crit:g} 天。",
            [
                Query(
                    f"(time() - shaobing_security_updates_pending_since_timestamp_seconds{{{HOST}}}) / 86400"
                    f" and shaobing_security_updates_pending{{{HOST}}} > 0"
                )
            ],
            unit="d",
            decimals=1,
            thresholds=steps(GREEN, (upd_warn, ORANGE), (upd_crit, RED)),
            width=4,
            no_value="-",
        )
    )
    d = d.with_panel(
        stat(
            "可升级软件包 Upgradable",
            "apt/yum 报告的全部可升级软件包数（含非安全更新）。",
            [Query(f"sum(apt_upgrades_pending{{{HOST}}}) or sum(yum_upgrades_pending{{{HOST}}})")],
            width=4,
            no_value="-",
        )
    )
    d = d.with_panel(
        table(
            "生命周期 End of life",
            f"操作系统、运行时与服务端软件距停止支持（EOL）的天数；少于 {eol_warn:g} 天告警，负数为已停更。",
            [
                Query(f"max by (product, cycle, kind) ((shaobing_eol_timestamp_seconds{{{HOST}}} - time()) / 86400)"),
                Query(f"max by (product, cycle, kind) (shaobing_eol_unknown{{{HOST}}})"),
            ],
            columns=[
                Column("剩余天数", unit="d", decimals=0, thresholds=steps(RED, (0, ORANGE), (eol_warn, GREEN))),
                Column("无数据", thresholds=steps(GREEN, (1, BLUE))),
            ],
            labels={"product": "产品", "cycle": "版本线", "kind": "类别"},
            sort_by="剩余天数",
            sort_desc=False,
            width=12,
            height=8,
        )
    )
    d = d.with_panel(
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
            columns=[Column("info"), Column("落后", thresholds=warn_if_any)],
            labels={"software": "软件", "version": "版本", "source": "来源"},
            sort_by="落后",
            width=12,
            height=8,
        )
    )

    d = d.with_row(row("安全审计 Security audit"))
    d = d.with_panel(
        table(
            "口令问题账户 Password findings",
            "有问题的账户数，按原因：empty 空口令、dictionary 字典弱口令、legacy_hash/unsupported_hash 旧哈希算法、"
            "uid0_extra 额外 UID 0、nopasswd_sudo 免密 sudo。",
            [Query(f"sum by (reason) (shaobing_password_accounts{{{HOST},{RISKY_PASSWORD}}})")],
            columns=[Column("账户数", thresholds=warn_if_any)],
            labels={"reason": "原因"},
            sort_by="账户数",
            width=8,
            height=8,
        )
    )
    d = d.with_panel(
        table(
            "SSH 风险配置 Risky sshd settings",
            "sshd -T 的有效配置中存在风险的设置（1 = 存在）。",
            [Query(f"max by (setting) (shaobing_ssh_risky_setting{{{HOST}}})")],
            columns=[Column("存在", thresholds=warn_if_any)],
            labels={"setting": "设置"},
            sort_by="存在",
            width=5,
            height=8,
        )
    )
    d = d.with_panel(
        table(
            "服务弱口令 Weak service credentials",
            "本机服务（Redis、PostgreSQL、FTP 等）接受弱口令或免认证（1 = 是）。",
            [Query(f"max by (service, port) (shaobing_service_weak_credentials{{{HOST}}})")],
            columns=[Column("弱口令", thresholds=bad_if_any)],
            labels={"service": "服务", "port": "端口"},
            sort_by="弱口令",
            width=5,
            height=8,
        )
    )
    d = d.with_panel(
        stat(
            "防火墙 Firewall",
            "主机防火墙是否启用（1 = 是）。",
            [Query(f"shaobing_host_firewall_active{{{HOST}}}")],
            thresholds=steps(ORANGE, (1, GREEN)),
            width=6,
            no_value="-",
        )
    )
    d = d.with_panel(
        table(
            "风险端口 Exposed ports",
            "监听在所有地址上的风险端口及其进程（1 = 暴露）。",
            [Query(f"max by (port, service, bind, process) (shaobing_exposed_port{{{HOST}}})")],
            columns=[Column("暴露", thresholds=warn_if_any)],
            labels={"port": "端口", "service": "服务", "bind": "监听地址", "process": "进程"},
            sort_by="暴露",
            width=12,
            height=6,
        )
    )
    d = d.with_panel(
        table(
            "审计距今 Audit age",
            f"每项审计距最近一次完整运行的天数；口令审计超过 {pw_stale:g} 天、其他审计超过 {audit_stale:g} 天告警。",
            [Query(f"max by (audit) ((time() - shaobing_audit_last_complete_timestamp_seconds{{{HOST}}}) / 86400)")],
            columns=[
                Column("天数", unit="d", decimals=1, thresholds=steps(GREEN, (min(pw_stale, audit_stale), ORANGE)))
            ],
            labels={"audit": "审计"},
            width=12,
            height=6,
        )
    )
    return d
