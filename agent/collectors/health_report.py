"""The host-health part of ``shaobing scan``: what in one health sample needs a person's attention."""

from __future__ import annotations

from agent.catalog import MetricSet
from agent.report import Finding, Section

__all__ = ["HEALTH_TITLE", "health_section"]

HEALTH_TITLE = "主机健康 (Host health)"


def health_section(out: MetricSet) -> Section:
    """``shaobing scan``: what in one health sample needs a person (full disks, low memory, clock)."""
    section = Section(HEALTH_TITLE)
    for sample in out.samples("node_filesystem_size_bytes"):
        labels = dict(sample.labels)
        mp = labels["mountpoint"]
        avail = out.get("node_filesystem_avail_bytes", labels)
        if sample.value > 0 and avail is not None and out.get("node_filesystem_readonly", labels) == 0:
            pct = 100.0 * avail / sample.value
            if pct < 10:
                section.findings.append(
                    Finding(
                        "critical" if pct < 5 else "warning",
                        f"文件系统 {mp} 剩余空间 {pct:.1f}% (filesystem almost full)",
                        f"设备 {labels['device']}，可用 {avail / 2**30:.1f} GiB / 共 {sample.value / 2**30:.1f} GiB",
                        "清理日志、备份或临时文件，或扩容 (du -xh --max-depth=1 " + mp + " | sort -h)",
                    )
                )
        files, free = out.get("node_filesystem_files", labels), out.get("node_filesystem_files_free", labels)
        if files and free is not None and free / files < 0.1:
            section.findings.append(
                Finding("warning", f"文件系统 {mp} inode 将耗尽 (inodes almost exhausted)", fix="查找并清理大量小文件")
            )
    for sample in out.samples("node_filesystem_device_error"):
        if sample.value:
            mp = dict(sample.labels)["mountpoint"]
            section.findings.append(
                Finding(
                    "warning",
                    f"文件系统 {mp} 无法读取 (statfs failed or hung)",
                    "常见原因: 网络存储 (NFS/CIFS) 失联",
                    f"检查挂载 {mp} 的存储服务器与网络",
                )
            )
    total, available = out.get("node_memory_MemTotal_bytes"), out.get("node_memory_MemAvailable_bytes")
    if total and available is not None and available / total < 0.1:
        section.findings.append(
            Finding(
                "warning",
                f"可用内存仅 {100 * available / total:.0f}% (low available memory)",
                fix="找出占用内存最多的进程 (ps aux --sort=-rss | head)",
            )
        )
    if out.get("node_timex_sync_status") == 0:
        section.findings.append(
            Finding(
                "info",
                "系统时钟未与时间服务器同步 (clock not synchronised)",
                "时间不准会让日志、证书校验和告警时间错乱",
                "启用 chrony 或 systemd-timesyncd",
            )
        )
    section.notes.append(f"检查了 {len(out.samples('node_filesystem_readonly'))} 个文件系统")
    return section
