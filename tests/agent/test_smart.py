"""SMART disk health from captured `smartctl --json` outputs of real SATA, SAS and NVMe disks (healthy and
failing) served by a stand-in smartctl on PATH, and the real smartctl on this (virtual) machine."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from agent.catalog import MetricSet
from agent.collector import AgentContext, NotApplicable
from agent.collectors.smart import SmartCollector, SmartOptions, device_label

FIXTURES = Path(__file__).parent / "fixtures" / "smart"
HEALTHY = {"/dev/sdb": "WDC_WD20EFRX-68EUZN0_17.json", "/dev/nvme0": "SAMSUNG_MZVL21T0HCLR-00B00_23.json"}
FAILING = {"/dev/sda": "ST3500418AS_12.json", "/dev/sdb": "SEAGATE_ST373453LC_26.json",
           "/dev/nvme0": "nvme-null-SAMSUNG_MZWLL3T2HAJQ-00005-nvme0.json"}


def fake_smartctl(tmp: Path, disks: dict[str, str], slow: tuple[str, ...] = ()) -> Path:
    """A smartctl that answers --scan-open with `disks` and a disk's query with its capture."""
    tmp.mkdir(parents=True, exist_ok=True)
    script = tmp / "smartctl"
    script.write_text(textwrap.dedent(f"""\
        #!/usr/bin/python3
        import json, sys, time
        disks = {json.dumps({k: str(FIXTURES / v) for k, v in disks.items()})}
        slow = {list(slow)!r}
        if "--scan-open" in sys.argv:
            names = sorted(set(disks) | set(slow))
            print(json.dumps({{"devices": [{{"name": n, "type": "auto"}} for n in names]}}))
            sys.exit(0)
        dev = next(a for a in sys.argv[1:] if a.startswith("/dev/"))
        if dev in slow:
            time.sleep(60)
        print(open(disks[dev]).read())
        """))
    script.chmod(0o755)
    return script


def collect(smartctl: Path | str, tmp: Path, **kw: object) -> tuple[MetricSet, SmartCollector]:
    kw.setdefault("snapshot_dir", "")  # this machine's own snapshot, if it has one, is not the test's
    col = SmartCollector(SmartOptions(smartctl=str(smartctl), **kw), AgentContext(state_dir=tmp))  # type: ignore[arg-type]
    out = MetricSet(col.metrics)
    col.collect(out)
    return out, col


def test_device_labels_as_smartctl_exporter() -> None:
    assert device_label("/dev/sda", "sat") == "sda"
    assert device_label("/dev/bus/0", "megaraid,1") == "bus_0_megaraid_1"
    assert device_label("/dev/disk/by-id/ata-X", "sat") == "ata-X"


def test_failing_disks_from_real_captures(tmp_path: Path) -> None:
    out, col = collect(fake_smartctl(tmp_path / "bin", FAILING), tmp_path)
    assert out.get("smartctl_devices") == 3 and out.get("shaobing_smart_devices_unchecked") == 0
    # every ATA attribute of the capture, value by value
    ata = json.loads((FIXTURES / FAILING["/dev/sda"]).read_text())
    for attr in ata["ata_smart_attributes"]["table"]:
        got = {s.labels: s.value for s in out.samples("smartctl_device_attribute")
               if dict(s.labels)["device"] == "sda" and dict(s.labels)["attribute_id"] == str(attr["id"])}
        by_kind = {dict(k)["attribute_value_type"]: v for k, v in got.items()}
        assert by_kind == {"value": attr["value"], "worst": attr["worst"], "thresh": attr["thresh"],
                           "raw": attr["raw"]["value"]}, attr["name"]
    realloc = next(s for s in out.samples("smartctl_device_attribute")
                   if dict(s.labels)["attribute_id"] == "5" and dict(s.labels)["attribute_value_type"] == "raw")
    assert realloc.value == 304 and dict(realloc.labels)["attribute_flags_short"] == "PO--CK"
    assert "prefailure" in dict(realloc.labels)["attribute_flags_long"]
    assert out.get("smartctl_device_smart_status", {"device": "sda"}) == 1  # PASSED despite 304 reallocations
    assert out.get("smartctl_scsi_grown_defect_list", {"device": "sdb"}) == 260
    assert out.get("smartctl_device_temperature", {"device": "sdb", "temperature_type": "drive_trip"}) == 68
    assert out.get("smartctl_device_smart_status", {"device": "nvme0"}) == 0
    assert out.get("smartctl_device_critical_warning", {"device": "nvme0"}) == 16
    assert out.get("smartctl_device_smartctl_exit_status", {"device": "nvme0"}) == 8
    info = next(s for s in out.samples("smartctl_device") if dict(s.labels)["device"] == "nvme0")
    assert dict(info.labels)["model_name"] == "SAMSUNG MZWLL3T2HAJQ-00005"
    report = col.report()
    assert report is not None
    titles = [f.title for f in report.findings]
    assert len(titles) == 3, titles
    assert any("sda" in t and "Reallocated_Sector_Ct = 304" in t for t in titles)
    assert any("nvme0" in t and "FAILED" in t for t in titles)
    assert next(f for f in report.findings if "nvme0" in f.title).severity == "critical"


def test_healthy_disks_give_no_finding(tmp_path: Path) -> None:
    out, col = collect(fake_smartctl(tmp_path / "bin", HEALTHY), tmp_path)
    assert out.get("smartctl_device_smart_status", {"device": "sdb"}) == 1
    assert out.get("smartctl_device_media_errors", {"device": "nvme0"}) == 0
    assert out.get("smartctl_device_power_on_seconds", {"device": "sdb"}) is not None
    report = col.report()
    assert report is None or report.findings == []


def test_a_hung_smartctl_is_unknown_not_healthy(tmp_path: Path) -> None:
    out, col = collect(fake_smartctl(tmp_path / "bin", HEALTHY, slow=("/dev/sdz",)), tmp_path, device_timeout=1.0)
    assert out.get("shaobing_smart_devices_unchecked") == 1
    assert not [s for s in out.samples("smartctl_device_smart_status") if dict(s.labels)["device"] == "sdz"]
    assert any("/dev/sdz" in n and "could not check" in n for n in col.notes)


@pytest.mark.skipif(shutil.which("smartctl") is None, reason="needs smartmontools")
def test_the_real_smartctl_on_a_virtual_disk(tmp_path: Path) -> None:
    """This machine's disk is virtio: smartctl cannot read it. No SMART series, one unchecked disk, the reason."""
    disks = [str(p) for p in (Path("/dev/vda"), Path("/dev/sda"), Path("/dev/nvme0n1")) if p.exists()]
    if not disks:
        pytest.skip("no disk device node")
    try:
        out, col = collect("smartctl", tmp_path, devices=disks[:1])
    except NotApplicable:
        pytest.fail("a named disk is never 'not applicable'")
    if out.get("shaobing_smart_devices_unchecked") == 0:
        pytest.skip("this machine's disk answers SMART")
    assert out.samples("smartctl_device_smart_status") == []
    assert col.notes and disks[0] in col.notes[0]
    import subprocess

    scan = json.loads(subprocess.run(["smartctl", "--scan-open", "--json=c"], capture_output=True, text=True,
                                     timeout=60).stdout)
    if not scan.get("devices"):
        with pytest.raises(NotApplicable, match="found no disks"):
            collect("smartctl", tmp_path)  # --scan-open lists nothing on a VM


def _series(out: MetricSet) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(spec.name, s.labels): s.value for spec, samples in out.families() for s in samples}


def test_the_root_helpers_snapshot_gives_the_agent_what_smartctl_would(tmp_path: Path) -> None:
    """Under the hardened unit the agent cannot open disks: shaobing-smart.service (root) writes a snapshot with
    `shaobing smart-snapshot`, and the collector — here without any smartctl — reads the same series from it."""
    import os
    import subprocess
    import time

    import yaml

    from tests.support.agent import SHAOBING

    smartctl = fake_smartctl(tmp_path / "bin", FAILING)
    direct, _ = collect(smartctl, tmp_path)
    config = tmp_path / "agent.yml"
    config.write_text(yaml.safe_dump({"collectors": {"smart": {"smartctl": str(smartctl)}}}))
    snap = tmp_path / "snapshot"
    run = subprocess.run([SHAOBING, "smart-snapshot", "--config", str(config), "--output", str(snap)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "3 disks, 0 unreadable" in run.stdout
    assert oct(os.stat(snap / "index.json").st_mode & 0o777) == "0o640"
    from_snapshot, col = collect(tmp_path / "no-smartctl-here", tmp_path, snapshot_dir=str(snap))
    assert _series(from_snapshot) == _series(direct)
    assert any("snapshot" in n for n in col.notes)

    # A stale snapshot (the timer stopped) is not passed off as current: the agent reads the disks itself.
    old = time.time() - 3 * 3600
    index = json.loads((snap / "index.json").read_text())
    index["time"] = old
    (snap / "index.json").write_text(json.dumps(index))
    with pytest.raises(NotApplicable, match="not found"):
        collect(tmp_path / "no-smartctl-here", tmp_path, snapshot_dir=str(snap))
    out, col = collect(smartctl, tmp_path, snapshot_dir=str(snap))
    assert _series(out) == _series(direct)
    assert any("stale" in n for n in col.notes)

    # A disk the helper could not read stays unknown in the agent, never healthy.
    index["time"] = time.time()
    index["devices"][0] = {"argv": index["devices"][0]["argv"], "error": "Permission denied"}
    (snap / "index.json").write_text(json.dumps(index))
    out, col = collect(tmp_path / "no-smartctl-here", tmp_path, snapshot_dir=str(snap))
    assert out.get("shaobing_smart_devices_unchecked") == 1 and out.get("smartctl_devices") == 3
    assert any("Permission denied" in n for n in col.notes)


def test_the_smart_helper_unit_keeps_only_the_disk_capabilities() -> None:
    unit = (Path(__file__).parents[2] / "deploy/systemd/shaobing-smart.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["CapabilityBoundingSet"] == "CAP_SYS_RAWIO CAP_SYS_ADMIN"
    assert settings["Group"] == "shaobing" and settings["StateDirectoryMode"] == "0750"
    assert settings["PrivateNetwork"] == "yes" and settings["ProtectSystem"] == "strict"
    assert "smart-snapshot" in settings["ExecStart"]
    agent = (Path(__file__).parents[2] / "agent/collectors/smart.py").read_text()
    assert '"/var/lib/shaobing-smart"' in agent  # where the unit's StateDirectory= is
