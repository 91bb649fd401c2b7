"""The textfile collector beside node_exporter's on the same directory: the same families, help, types,
series and values from the good files, the same files skipped (syntax error, client-side timestamps), the same
mtime and scrape_error series — and the agent's own metric names are never shadowed by a file."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from agent.catalog import MetricSet, render
from agent.collector import AgentContext, NotApplicable
from agent.collectors.node.textfile import TextfileCollector, TextfileOptions, TextFormatError, parse_text_format
from agent.scheduler import Scheduler
from tests.support.prometheus import free_port

BINARY = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
INTERNAL = ("node_exporter_build_info", "node_scrape_", "go_", "process_", "promhttp_")

FILES = {
    # smartmon.sh's shape (prometheus-community/node-exporter-textfile-collector-scripts)
    "smartmon.prom": '# HELP smartmon_device_smart_healthy SMART overall-health self-assessment test result\n'
                     '# TYPE smartmon_device_smart_healthy gauge\n'
                     'smartmon_device_smart_healthy{disk="/dev/sda",type="sat"} 1\n'
                     'smartmon_device_smart_healthy{disk="/dev/sdb",type="sat"} 0\n'
                     'smartmon_reallocated_sector_ct_raw_value{disk="/dev/sdb",type="sat",smart_id="5"} 128\n',
    # apt.sh: apt_upgrades_pending and node_reboot_required are the agent's own (updates, reboot collectors)
    "apt.prom": 'apt_upgrades_pending{origin="Debian:bookworm/stable",arch="amd64"} 3\nnode_reboot_required 0\n',
    "latency.prom": '# HELP job_duration_seconds How long the nightly backup took.\n'
                    '# TYPE job_duration_seconds histogram\n'
                    'job_duration_seconds_bucket{le="60"} 2\njob_duration_seconds_bucket{le="+Inf"} 5\n'
                    'job_duration_seconds_sum 912.5\njob_duration_seconds_count 5\n'
                    'backup_target_info{path="C:\\\\backup \\"nightly\\"",host="nas-1"} 1\n',
    "stamped.prom": "my_stamped_metric 1 1700000000000\n",
    "broken.prom": "this is not { valid\n",
    "notes.txt": "ignored 1\n",
}


@pytest.fixture
def textdir(tmp_path: Path) -> Path:
    d = tmp_path / "textfile"
    d.mkdir()
    for name, text in FILES.items():
        (d / name).write_text(text)
        os.utime(d / name, (1796032800, 1796032800))
    return d


def parse(text: str) -> dict[str, tuple[str, str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]]:
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for fam in text_string_to_metric_families(text):
        if fam.name.startswith(INTERNAL):
            continue
        out[fam.name] = (fam.type, fam.documentation,
                         {(s.name, tuple(sorted(s.labels.items()))): s.value for s in fam.samples})
    return out


def ours(textdir: Path, tmp: Path) -> str:
    col = TextfileCollector(TextfileOptions(directory=str(textdir)), AgentContext(state_dir=tmp))
    out = MetricSet(col.metrics)
    col.collect(out)
    return (render(out.families()) + out.extra).decode()


@pytest.mark.integration
@pytest.mark.skipif(BINARY is None, reason="prometheus-node-exporter is not installed")
def test_textfile_matches_node_exporter(textdir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "sys").mkdir()
    port = free_port()
    proc = subprocess.Popen([BINARY, f"--web.listen-address=127.0.0.1:{port}", f"--path.procfs={tmp_path / 'proc'}",
                             f"--path.sysfs={tmp_path / 'sys'}", "--collector.disable-defaults",
                             "--collector.textfile", f"--collector.textfile.directory={textdir}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                theirs = parse(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
    with caplog.at_level(logging.WARNING):
        mine = parse(ours(textdir, tmp_path / "state"))
    # node_exporter serves apt.prom's two series; the agent has its own and never shadows them.
    for own in ("apt_upgrades_pending", "node_reboot_required"):
        assert own in theirs and own not in mine
        assert any(own in r.message and "agent's own" in r.message for r in caplog.records)
        del theirs[own]
    assert mine == theirs
    assert mine["node_textfile_scrape_error"][2] == {("node_textfile_scrape_error", ()): 1.0}
    assert {dict(k[1])["file"] for k in mine["node_textfile_mtime_seconds"][2]} == {
        str(textdir / n) for n in ("apt.prom", "latency.prom", "smartmon.prom")}
    skipped = " ".join(r.message for r in caplog.records)
    assert "broken.prom" in skipped and "line 1" in skipped and "stamped.prom" in skipped


def test_parse_errors_name_the_line() -> None:
    with pytest.raises(TextFormatError, match=r"line 2: .*timestamps"):
        parse_text_format("a 1\nb 2 1700000000\n")
    with pytest.raises(TextFormatError, match=r"line 1: duplicate label name"):
        parse_text_format('a{x="1",x="2"} 1\n')
    with pytest.raises(TextFormatError, match=r"line 2: duplicate sample"):
        parse_text_format('a{x="1"} 1\na{x="1"} 2\n')
    with pytest.raises(TextFormatError, match=r"line 1: unknown metric type"):
        parse_text_format("# TYPE a bogus\n")
    fams = parse_text_format('# TYPE a counter\na{x="q\\"uote"} +Inf\n# a comment\n')
    assert fams["a"].samples == {("a", (("x", 'q"uote'),)): float("inf")}


def test_no_directory_is_not_applicable_and_files_reach_the_page(textdir: Path, tmp_path: Path) -> None:
    col = TextfileCollector(TextfileOptions(directory=str(tmp_path / "nope")), AgentContext(state_dir=tmp_path))
    with pytest.raises(NotApplicable, match="does not exist"):
        col.collect(MetricSet(col.metrics))
    from agent.exporter import ExpositionCache

    cache = ExpositionCache()
    good = TextfileCollector(TextfileOptions(directory=str(textdir)), AgentContext(state_dir=tmp_path))
    scheduler = Scheduler([good], cache)
    scheduler.run_all_once()
    scheduler.stop()
    page = cache.page()[0].decode()
    assert 'smartmon_device_smart_healthy{disk="/dev/sdb",type="sat"} 0' in page
    assert "node_textfile_scrape_error 1" in page
