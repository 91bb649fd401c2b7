"""Side by side with the real node_exporter (Debian's prometheus-node-exporter) on this host: the same
families, types, label names and series, and the same values where they do not move between two reads."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.catalog import MetricSet, render
from agent.collector import AgentContext
from agent.collectors.health import DISK_DEVICES_EXCLUDE, VMSTAT_FIELDS, HealthCollector, HealthOptions
from agent.platform.mounts import MOUNT_POINTS_EXCLUDE

pytestmark = pytest.mark.integration

BINARY = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
# Known, deliberate differences (see agent/collectors/health.py): vmstat is untyped there, gauge here.
TYPE_EXCEPTIONS = {f"node_vmstat_{f}" for f in VMSTAT_FIELDS}
LABEL_SUBSET = {"node_os_info"}  # we carry 7 of node_exporter's 12 os-release labels
STABLE_VALUES = ("node_boot_time_seconds", "node_memory_MemTotal_bytes", "node_memory_SwapTotal_bytes", "node_load15",
                 "node_timex_tick_seconds", "node_timex_loop_time_constant", "node_timex_tai_offset_seconds")

Families = dict[str, tuple[str, list[dict[str, str]], list[float]]]


def parse(text: str) -> Families:
    out: Families = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split()
            types[name] = typ
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", line)
        assert m, line
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        fam = out.setdefault(m.group(1), (types.get(m.group(1), "untyped"), [], []))
        fam[1].append(labels)
        fam[2].append(float(m.group(3)))
    return out


@pytest.fixture(scope="module")
def node_exporter() -> Iterator[str]:
    if BINARY is None:
        pytest.skip("prometheus-node-exporter is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    collectors = ["cpu", "meminfo", "loadavg", "filesystem", "diskstats", "netdev", "stat", "time", "timex"]
    collectors += ["uname", "os", "vmstat"]
    proc = subprocess.Popen(
        [
            BINARY,
            f"--web.listen-address=127.0.0.1:{port}",
            "--collector.disable-defaults",
            *(f"--collector.{c}" for c in collectors),
            # Debian patches these defaults; pass upstream's so both sides follow the same rules.
            f"--collector.filesystem.mount-points-exclude={MOUNT_POINTS_EXCLUDE}",
            f"--collector.diskstats.device-exclude={DISK_DEVICES_EXCLUDE}",
            "--collector.netdev.device-exclude=^$",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    resp.read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.skip("node_exporter did not start")
                time.sleep(0.05)
        yield url
    finally:
        proc.kill()
        proc.wait(10)


def scrape(url: str) -> Families:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return parse(resp.read().decode())


def compare(ours: Families, theirs: Families) -> list[str]:
    problems = []
    for name, (typ, label_sets, _) in ours.items():
        if name not in theirs:
            problems.append(f"{name}: node_exporter has no such family here")
            continue
        their_type, their_labels, _ = theirs[name]
        if name not in TYPE_EXCEPTIONS and typ != their_type:
            problems.append(f"{name}: type {typ} != {their_type}")
        our_names, their_names = set(label_sets[0]), set(their_labels[0])
        if name in LABEL_SUBSET:
            if not our_names <= their_names:
                problems.append(f"{name}: labels {sorted(our_names - their_names)} unknown to node_exporter")
            continue
        if our_names != their_names:
            problems.append(f"{name}: labels {sorted(our_names)} != {sorted(their_names)}")
            continue
        ours_series = {tuple(sorted(ls.items())) for ls in label_sets}
        theirs_series = {tuple(sorted(ls.items())) for ls in their_labels}
        if ours_series != theirs_series:
            problems.append(
                f"{name}: only ours {ours_series - theirs_series}, only theirs {theirs_series - ours_series}"
            )
    for name in STABLE_VALUES:
        if name in ours and ours[name][2] != pytest.approx(theirs[name][2], abs=0.1):
            problems.append(f"{name}: {ours[name][2]} != {theirs[name][2]}")
    for name in ("node_filesystem_size_bytes", "node_filesystem_files"):
        mine = {tuple(sorted(ls.items())): v for ls, v in zip(ours[name][1], ours[name][2])}
        other = {tuple(sorted(ls.items())): v for ls, v in zip(theirs[name][1], theirs[name][2])}
        if mine != other:
            problems.append(f"{name}: values differ")
    return problems


def test_same_families_labels_and_series_as_node_exporter(node_exporter: str, tmp_path: Path) -> None:
    c = HealthCollector(HealthOptions(), AgentContext(state_dir=tmp_path))
    # Other tests running in parallel may add a network device or a mount between the two reads: a mismatch
    # has to persist over three attempts to count.
    for _ in range(3):
        out: MetricSet = c.new_metric_set()
        c.collect(out)
        problems = compare(parse(render(out.families()).decode()), scrape(node_exporter))
        if not problems:
            return
        time.sleep(0.2)
    pytest.fail("\n".join(problems))
