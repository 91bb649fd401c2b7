"""Personal data left where anyone can read it: resident ID, mobile and bank card numbers in the folders this
host serves (nginx, Apache, Tomcat), shares (Samba) or offers by FTP (vsftpd), plus configured folders::

    shaobing_pii_files{location="web",kind="id_card"} 2
    shaobing_pii_records{location="web",kind="id_card"} 1830
    shaobing_pii_dumps{location="web"} 1
    shaobing_pii_locations{location="ftp"} 1
    shaobing_pii_scan_unread_files{reason="pending"} 0

Counts only, by location kind and data kind: no path, no name, no number leaves in a metric. The root-only
``shaobing scan`` names the files, how they are exposed, their record counts and masked samples.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Optional

from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector, CollectorOptions, NotApplicable
from agent.pii.detectors import KINDS, Found, scan_text
from agent.pii.locations import DEFAULT_CONFIGS, discover
from agent.pii.readers import read_text
from agent.pii.scan import Limits, PiiState, ScanResult, scan_locations
from agent.report import Finding, Section

__all__ = ["PiiOptions", "PiiCollector"]

LOCATION_KINDS = ("web", "ftp", "share", "configured")
_KIND_TEXT = {"id_card": "身份证号", "mobile": "手机号", "bank_card": "银行卡号"}
_WHERE_TEXT = {"web": "网站目录", "ftp": "FTP 目录", "share": "共享目录", "configured": "指定目录"}
REPORT_FILES = 20


@dataclass
class PiiOptions(CollectorOptions):
    # Extra folders to scan, beside those the web, FTP and Samba configurations serve.
    paths: list[str] = field(default_factory=list)
    # Server configuration files to read (globs), by server: nginx, apache, tomcat, vsftpd, samba.
    configs: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_CONFIGS.items()})
    # Validated records of one kind that make a file a finding (one number on a contact page is not a leak).
    min_records: int = field(default=5, metadata={"min": 1})
    max_file_bytes: int = field(default=20 << 20, metadata={"min": 1024, "max": 1 << 30})
    max_files: int = field(default=50_000, metadata={"min": 1, "max": 10_000_000})
    cpu_budget: float = field(default=30.0, metadata={"duration": True, "min": 0.1})

    def problems(self) -> list[tuple[str, str]]:
        unknown = sorted(set(self.configs) - set(DEFAULT_CONFIGS))
        return [(f"configs.{k}", f"unknown server (known: {', '.join(DEFAULT_CONFIGS)})") for k in unknown]


class PiiCollector(Collector):
    name = "pii"
    title = "个人信息泄露 (Personal data in served and shared folders)"
    options_class = PiiOptions
    default_interval = 86400.0
    default_timeout = 600.0
    default_jitter = 1800.0
    metrics = (
        MetricSpec("shaobing_pii_files", "gauge",
                   "Files in served or shared folders holding at least min_records validated personal numbers of "
                   "a kind, by location kind (web, ftp, share, configured) and data kind (id_card, mobile, "
                   "bank_card).", ("location", "kind")),
        MetricSpec("shaobing_pii_records", "gauge",
                   "Validated personal numbers in those files, by location kind and data kind.", ("location", "kind")),
        MetricSpec("shaobing_pii_dumps", "gauge",
                   "Database dumps and backups (.sql, .bak, .dump, ...) in served or shared folders.", ("location",)),
        MetricSpec("shaobing_pii_locations", "gauge", "Folders scanned, by location kind.", ("location",)),
        MetricSpec("shaobing_pii_scan_read_files", "gauge", "Files read in the last scan (changed or new)."),
        MetricSpec("shaobing_pii_scan_cached_files", "gauge", "Files not read again in the last scan (unchanged)."),
        MetricSpec("shaobing_pii_scan_unread_files", "gauge",
                   "Files the last scan could not judge, by reason (too_large, format, pending, error): their "
                   "content is unknown, not clean.", ("reason",)),
        MetricSpec("shaobing_pii_scan_bytes_read", "gauge", "Bytes read by the last scan.", (), "bytes"),
        MetricSpec("shaobing_pii_scan_budget_exhausted", "gauge",
                   "1 when the last scan stopped at its CPU budget or file cap (it resumes next run)."),
    )

    def __init__(self, options: PiiOptions, context: AgentContext) -> None:
        super().__init__(options, context)
        self.opts = options
        self.last: Optional[ScanResult] = None

    def _scan(self) -> ScanResult:
        locations = discover(self.opts.configs, self.opts.paths)
        if not locations:
            raise NotApplicable("no served, shared or configured folder on this host")
        limits = Limits(self.opts.min_records, self.opts.max_file_bytes, self.opts.max_files, self.opts.cpu_budget)
        state = PiiState(self.context.state_dir)
        box: list[ScanResult] = []
        errors: list[BaseException] = []

        def work() -> None:  # a thread of its own: its priority is lowered, the scheduler's worker's is not
            try:
                box.append(scan_locations(locations, state, limits))
            except BaseException as exc:  # noqa: BLE001 - reported by the caller
                errors.append(exc)

        thread = threading.Thread(target=work, name="pii-scan", daemon=True)
        thread.start()
        thread.join()
        if errors:
            raise RuntimeError(f"personal-data scan failed: {type(errors[0]).__name__}")
        self.last = box[0]
        return box[0]

    def collect(self, out: MetricSet) -> None:
        result = self._scan()
        for where in LOCATION_KINDS:
            if where not in result.locations:
                continue  # no such folder on this host: nothing was checked, so no value (not 0, "fine")
            for kind in KINDS:
                out.add("shaobing_pii_files", result.files.get((where, kind), 0), {"location": where, "kind": kind})
                out.add("shaobing_pii_records", result.records.get((where, kind), 0),
                        {"location": where, "kind": kind})
            out.add("shaobing_pii_dumps", result.dumps.get(where, 0), {"location": where})
            out.add("shaobing_pii_locations", result.locations.get(where, 0), {"location": where})
        out.add("shaobing_pii_scan_read_files", result.read)
        out.add("shaobing_pii_scan_cached_files", result.cached)
        for reason, n in sorted(result.unread.items()):
            out.add("shaobing_pii_scan_unread_files", n, {"reason": reason})
        out.add("shaobing_pii_scan_bytes_read", result.bytes_read)
        out.add("shaobing_pii_scan_budget_exhausted", 1 if result.budget_exhausted else 0)

    def report(self) -> Optional[Section]:
        result = self.last
        if result is None:
            return None
        section = Section(self.title)
        for hit in result.hits[:REPORT_FILES]:
            samples = hit.samples
            if hit.counts and not any(samples.values()) and any(hit.counts.values()):
                samples = _masked_samples(hit.path, self.opts.max_file_bytes)  # cached: read again, masked
            where = f"{_WHERE_TEXT[hit.location.kind]} {hit.location.path} ({hit.location.how})"
            counted = [f"{_KIND_TEXT[k]} {n} 条" for k, n in hit.counts.items() if n >= self.opts.min_records]
            shown = [f"{_KIND_TEXT[k]} 例: {', '.join(v)}" for k, v in samples.items() if v and
                     hit.counts.get(k, 0) >= self.opts.min_records]
            if counted:
                section.findings.append(Finding(
                    "critical" if hit.location.kind != "configured" else "warning",
                    f"{hit.path} 含 {', '.join(counted)}",
                    f"文件位于{where}, 可被他人读取或下载. {'; '.join(shown)} (已打码 masked).",
                    "从网站/FTP/共享目录中删除或移走; 需要公示的名单只保留姓名和打码后的证件号 "
                    "(如 110105********1234); 共享目录限制访问账户. Remove it from the served path, publish "
                    "masked lists only, restrict the share.",
                ))
            if hit.dump:
                section.findings.append(Finding(
                    "critical" if hit.location.kind in ("web", "ftp", "share") else "warning",
                    f"{hit.path}: 数据库备份或导出文件 (database dump or backup)",
                    f"文件位于{where}; 备份文件通常含全部数据, 放在可访问的目录中等于公开.",
                    "移到网站/FTP/共享目录之外并限制权限 (chmod 600), 不需要的删除. Move it out of the served path.",
                ))
        if len(result.hits) > REPORT_FILES:
            section.notes.append(f"另有 {len(result.hits) - REPORT_FILES} 个文件未列出 (more files not listed)")
        section.notes.append(
            f"扫描了 {sum(result.locations.values())} 个目录; 本次读取 {result.read} 个文件, "
            f"{result.cached} 个未变化未重读 (read {result.read}, unchanged {result.cached})."
        )
        unread = {k: v for k, v in result.unread.items() if v}
        if unread:
            section.notes.append(
                "未能判断的文件 (not judged, content unknown): "
                + ", ".join(f"{k} {v}" for k, v in sorted(unread.items()))
                + (" — CPU 预算或文件数上限已到, 下次继续" if result.budget_exhausted else "")
            )
        return section


def _masked_samples(path: str, max_bytes: int) -> dict[str, list[str]]:
    from pathlib import Path

    found = Found()
    try:
        text, _ = read_text(Path(path), max_bytes)
    except OSError:
        return found.samples
    if text is not None:
        scan_text(text, found)
    return found.samples
