"""The catalogue is the contract: the agent emits exactly what it declares, and the docs match it."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.catalog import all_metrics, markdown
from tests.support.agent import SHAOBING
from tests.support.prometheus import PROMTOOL_BIN

ROOT = Path(__file__).resolve().parents[2]

# Families that exist only on hosts with something this test machine lacks; each says why.
NOT_ON_THIS_MACHINE = {
    # From udev's database, which a container has none of: ATA disks, filesystems and device mapper
    # (tests/agent/test_node_families.py compares them with node_exporter on its own captured udev records).
    "node_disk_ata_rotation_rate_rpm", "node_disk_ata_write_cache", "node_disk_ata_write_cache_enabled",
    "node_disk_device_mapper_info", "node_disk_filesystem_info",
    # Only exported when a mount's statfs times out or fails, which a healthy test machine never shows.
    "node_filesystem_device_error",
    # Per-account series need a weak account in this machine's /etc/shadow and the operator's opt-in;
    # tests/agent/test_audit* cover them on a fixture shadow file.
    "shaobing_password_weak_account",
    # Only while a reboot is pending (tests/agent/test_updates_reboot.py covers it with fixtures).
    "shaobing_reboot_required_since_timestamp_seconds",
    # No systemd runs on the test machine (the services tests cover systemctl with captured output).
    "shaobing_systemd_units_failed",
    # Only while security updates wait, or when software outside the package manager is installed: a clean
    # CI machine may have neither (tests/agent/test_updates* and test_versions* cover both with real apt and
    # binaries placed in a /usr/local-like tree).
    "shaobing_security_updates_pending_since_timestamp_seconds",
    "shaobing_software_outdated",
    # A Debian machine has no yum/dnf (the updates tests parse captured dnf/yum output).
    "yum_upgrades_pending",
    # Needs an account with a password hash; a clean CI container's root is locked (test_audit_passwords covers it).
    "shaobing_password_audit_coverage_ratio",
    # Only for local services that run (a stock config of a stopped service is context, not a finding); a clean
    # CI machine runs none (test_audit_services covers real Redis, PostgreSQL, vsftpd and a Tomcat stand-in).
    "shaobing_service_weak_credentials",
    # Only for *.prom files in the textfile directory, which a clean machine has none of (test_node_textfile).
    "node_textfile_mtime_seconds",
    # /proc/meminfo fields of other kernels and architectures (32-bit highmem, CMA, arm64 shadow call stack,
    # confidential VMs, memtest=): the node family tests compare them with node_exporter on fixture trees.
    *(f"node_memory_{f}_bytes" for f in ("CmaFree", "CmaTotal", "DirectMap4M", "EarlyMemtestBad",
                                          "HardwareCorrupted", "HighFree", "HighTotal", "LowFree", "LowTotal",
                                          "MmapCopy", "Quicklists", "ShadowCallStack", "Unaccepted")),
}


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One `shaobing agent once` over every collector, with a config that gives each something to do."""
    tmp = tmp_path_factory.mktemp("once")
    # A risky port (Docker's unauthenticated API, 2375) listening on all interfaces, for the exposure collector.
    risky = socket.socket()
    risky.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    risky.bind(("0.0.0.0", 2375))
    risky.listen(1)
    cfg = tmp / "agent.yml"
    cfg.write_text(
        f"state_dir: {tmp / 'state'}\n"
        "collectors:\n"
        "  services:\n"
        "    processes: [{name: pytest, pattern: pytest}]\n"
        "    ports: [{name: nothing-here, port: 1}]\n"
    )
    try:
        res = subprocess.run([SHAOBING, "agent", "once", "--config", str(cfg)], capture_output=True, text=True,
                             timeout=600)
    finally:
        risky.close()
    assert res.stdout, res.stderr
    return res.stdout


def test_docs_metrics_md_is_current() -> None:
    assert (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8") == markdown(), (
        "docs/metrics.md is stale: run `python -m agent.catalog > docs/metrics.md`"
    )


def test_emits_only_declared_metrics_with_declared_labels(exposition: str) -> None:
    declared = {spec.name: spec for spec in all_metrics()}
    for family in text_string_to_metric_families(exposition):
        # The parser strips _total from counters; map back to the declared name.
        name = family.name + "_total" if family.type == "counter" else family.name
        assert name in declared, f"{name} is emitted but not in the catalogue"
        spec = declared[name]
        assert family.type == spec.type, name
        for sample in family.samples:
            assert set(sample.labels) == set(spec.labels), f"{name}: {sample.labels}"


def test_emits_everything_declared(exposition: str) -> None:
    emitted = {m.group(1) for m in re.finditer(r"^# TYPE (\S+) ", exposition, re.M)}
    declared = {spec.name for spec in all_metrics()}
    # Collectors this machine cannot exercise in a plain `once` run declare families we cannot see here.
    from agent.collectors import registry

    absent_collectors = {cls.name for cls in registry()} - set(
        re.findall(r'shaobing_collector_applicable\{collector="([^"]+)"\} 1', exposition)
    )
    # Push mode's own metrics exist only when `push:` is configured (tests/deploy/test_push.py exports them).
    absent_collectors.add("push")
    expected = {s.name for s in all_metrics() if s.collector not in absent_collectors} - NOT_ON_THIS_MACHINE
    missing = expected - emitted
    assert not missing, f"declared but never emitted on this machine: {sorted(missing)}"
    assert emitted <= declared


def test_risky_port_found(exposition: str) -> None:
    assert re.search(r'^shaobing_exposed_port\{[^}]*port="2375"[^}]*\} 1$', exposition, re.M), exposition[-2000:]


def test_promtool_finds_nothing_beyond_node_exporters_own(exposition: str) -> None:
    """`promtool check metrics` may only complain about node_exporter's own names we keep: the camelCase
    meminfo and netstat names, and the entropy families' unit "bits"."""
    res = subprocess.run([PROMTOOL_BIN, "check", "metrics"], input=exposition, capture_output=True, text=True,
                         timeout=60)
    problems = [line for line in (res.stdout + res.stderr).splitlines() if line.strip()]
    allowed = re.compile(r"^(node_memory_\w+ .*(camelCase|non-base)|node_netstat_\w+ .*camelCase|"
                         r"node_entropy_\w+_bits use base unit)")
    unexpected = [p for p in problems if not allowed.match(p)]
    assert not unexpected, "\n".join(unexpected)


def test_a_metric_set_renders_what_the_reference_parser_reads_back() -> None:
    """MetricSet.render() (each collector run's output) against prometheus_client's parser of the text
    format: special floats, integers at the edge of exact, escaped label values, sorted samples."""
    from agent.catalog import MetricSet, MetricSpec, render

    specs = [MetricSpec("x_value", "gauge", 'Help with \\ and\nnewline.', ("k", "v")),
             MetricSpec("x_plain", "gauge", "No labels."), MetricSpec("x_events_total", "counter", "C.")]
    out = MetricSet(specs)
    values = {"nan": float("nan"), "pinf": float("inf"), "ninf": float("-inf"), "negzero": -0.0,
              "big": 1e15, "bigger": 1e300, "frac": 0.1, "exact": float(2 ** 53 - 1), "neg": -3.0}
    for key, value in values.items():
        out.add("x_value", value, {"k": key, "v": 'a\\b"c\nd 中文'})
    out.add("x_plain", 7)
    out.add("x_events_total", 2.5)
    text = out.render()
    assert text == render(out.families())
    assert b"x_value{k=\"nan\",v=\"a\\\\b\\\"c\\nd \xe4\xb8\xad\xe6\x96\x87\"} NaN\n" in text
    assert b"} +Inf\n" in text and b"} -Inf\n" in text and b"x_plain 7\n" in text
    assert b"} 9007199254740991.0\n" in text and b"} 1000000000000000.0\n" in text and b"} 1e+300\n" in text
    assert b'k="negzero",' in text and b"} 0\n" in text and b"} -3\n" in text
    parsed = {f.name: f for f in text_string_to_metric_families(text.decode())}
    got = {s.labels["k"]: s.value for s in parsed["x_value"].samples}
    assert set(got) == set(values)
    for key, value in values.items():
        assert (got[key] != got[key]) if value != value else got[key] == value, key
    assert {s.labels["v"] for s in parsed["x_value"].samples} == {'a\\b"c\nd 中文'}
    assert parsed["x_value"].documentation == "Help with \\ and\nnewline."
    assert [s.labels["k"] for s in parsed["x_value"].samples] == sorted(values)
    assert parsed["x_events"].samples[0].value == 2.5


def test_a_sample_with_other_label_names_is_refused_and_leaves_no_empty_family() -> None:
    from agent.catalog import MetricSet, MetricSpec

    out = MetricSet([MetricSpec("x_value", "gauge", "V.", ("a", "b"))])
    for labels in ({"a": "1"}, {"a": "1", "c": "2"}, {"a": "1", "b": "2", "c": "3"}, None):
        with pytest.raises(ValueError, match="x_value: labels"):
            out.add("x_value", 1, labels)
    with pytest.raises(KeyError, match="not declared"):
        out.add("x_other", 1)
    assert out.render() == b"" and out.names() == set()
    out.add("x_value", 1, {"b": 2, "a": "x"})  # type: ignore[dict-item]
    assert out.render().endswith(b'x_value{a="x",b="2"} 1\n')
