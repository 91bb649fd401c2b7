"""Reboot collector: /run/reboot-required, a newer kernel, needs-restarting (captured output), and "since"."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent.collector import AgentContext
from agent.collectors.metadata_refresh import MetadataRefreshCollector, MetadataRefreshOptions
from agent.collectors.reboot import RebootCollector, RebootOptions, newest_kernel
from agent.process import CommandError

FIXTURES = Path(__file__).parent / "fixtures" / "versions"


def make(tmp_path: Path, root: Path, now: float, **kwargs: object) -> RebootCollector:
    context = AgentContext(state_dir=tmp_path / "state", clock=lambda: now)
    return RebootCollector(RebootOptions(), context, root=root, **kwargs)  # type: ignore[arg-type]


def test_reboot_required_file_and_since(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    flag = root / "run" / "reboot-required"
    flag.write_text("*** System restart required ***\n")
    (root / "run" / "reboot-required.pkgs").write_text("linux-image-6.1.0-21-amd64\nlibc6\n")
    os.utime(flag, (1_700_000_000, 1_700_000_000))
    c = make(tmp_path, root, 1_700_050_000.0, running_kernel="6.1.0-18-amd64")
    assert c.report() is None  # nothing to say before a run
    out = c.new_metric_set()
    c.collect(out)
    assert out.get("node_reboot_required") == 1
    assert out.get("shaobing_reboot_required_since_timestamp_seconds") == 1_700_000_000
    state = tmp_path / "state" / "reboot_required_since.json"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    report = c.report()
    assert report is not None and "libc6" in report.findings[0].detail

    flag.unlink()
    out = c.new_metric_set()
    c.collect(out)
    assert out.get("node_reboot_required") == 0
    assert out.get("shaobing_reboot_required_since_timestamp_seconds") is None
    assert not state.exists()


def test_newer_kernel_installed(tmp_path: Path) -> None:
    assert newest_kernel(["vmlinuz-3.10.0-1160.el7.x86_64", "vmlinuz-3.10.0-1160.119.1.el7.x86_64",
                          "vmlinuz-0-rescue-0123456789abcdef"]) == "3.10.0-1160.119.1.el7.x86_64"
    root = tmp_path / "root"
    (root / "boot").mkdir(parents=True)
    for release in ("6.1.0-18-amd64", "6.1.0-21-amd64"):
        (root / "boot" / f"vmlinuz-{release}").write_bytes(b"")
    os.utime(root / "boot" / "vmlinuz-6.1.0-21-amd64", (1_700_100_000, 1_700_100_000))
    old = make(tmp_path, root, 1_700_200_000.0, running_kernel="6.1.0-18-amd64")
    out = old.new_metric_set()
    old.collect(out)
    assert out.get("node_reboot_required") == 1
    assert out.get("shaobing_reboot_required_since_timestamp_seconds") == 1_700_100_000

    current = make(tmp_path, root, 1_700_200_000.0, running_kernel="6.1.0-21-amd64")
    out = current.new_metric_set()
    current.collect(out)
    assert out.get("node_reboot_required") == 0
    # a kernel that is not among those installed (a container): no evidence either way
    container = make(tmp_path, root, 1_700_200_000.0, running_kernel="6.18.44-custom")
    out = container.new_metric_set()
    container.collect(out)
    assert out.get("node_reboot_required") == 0


def test_needs_restarting_captured_output(tmp_path: Path) -> None:
    fake = tmp_path / "needs-restarting"
    fake.write_text(f"#!/bin/sh\ngrep -v '^#' {FIXTURES / 'needs-restarting-yes.txt'}\nexit 1\n")
    fake.chmod(0o755)
    c = make(tmp_path, tmp_path / "empty-root", 1_700_000_000.0, needs_restarting=str(fake),
             running_kernel="5.14.0-427.el9.x86_64")
    out = c.new_metric_set()
    c.collect(out)
    assert out.get("node_reboot_required") == 1
    assert out.get("shaobing_reboot_required_since_timestamp_seconds") == 1_700_000_000.0

    fake.write_text("#!/bin/sh\necho 'No core libraries or services have been updated since boot-up.'\n"
                    "echo 'Reboot should not be necessary.'\nexit 0\n")
    out = c.new_metric_set()
    c.collect(out)
    assert out.get("node_reboot_required") == 0


def test_metadata_refresh_is_off_by_default_and_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert MetadataRefreshCollector.default_enabled is False
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text("#!/bin/sh\nsleep 60\n")
    (bin_dir / "apt-get").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")  # a hanging apt-get first on PATH
    c = MetadataRefreshCollector(MetadataRefreshOptions(manager="apt", command_timeout=1.0),
                                 AgentContext(state_dir=tmp_path))
    with pytest.raises(CommandError, match="did not finish within 1s"):
        c.collect(c.new_metric_set())
