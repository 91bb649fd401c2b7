"""Compiled dependencies a CPU without wheels lacks (agent/optional.py, agent/passhash.py): a missing psutil makes
the collectors that need it "not applicable" with the reason; a missing bcrypt module is replaced by libcrypt's
bcrypt, whose hashes the bcrypt module accepts and the other way round."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bcrypt as real_bcrypt
import pytest

from agent import passhash
from agent.collector import AgentContext, NotApplicable
from agent.optional import MissingDependency, _Missing, available, psutil


def test_a_missing_module_says_which_and_what_to_install() -> None:
    missing = _Missing("psutil", "ModuleNotFoundError: No module named 'psutil'")
    assert not available(missing) and available(psutil)
    with pytest.raises(MissingDependency) as err:
        missing.Process()
    assert isinstance(err.value, NotApplicable)
    assert "psutil" in str(err.value) and "python3-psutil" in str(err.value)


def test_libcrypt_bcrypt_and_the_bcrypt_module_accept_each_others_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    by_module = passhash.hashpw(b"Township-Scrape-2026", rounds=4)
    monkeypatch.setattr(passhash, "bcrypt", _Missing("bcrypt", "test"))
    assert passhash.backend() == "libcrypt"
    by_libcrypt = passhash.hashpw(b"Township-Scrape-2026", rounds=4)
    assert by_libcrypt.startswith(b"$2b$04$") and by_libcrypt != by_module
    assert passhash.checkpw(b"Township-Scrape-2026", by_module)
    assert not passhash.checkpw(b"Township-Scrape-2025", by_module)
    # htpasswd writes $2y$: the same algorithm.
    assert passhash.checkpw(b"Township-Scrape-2026", b"$2y$" + by_module[4:])
    with pytest.raises(ValueError):
        passhash.checkpw(b"x", b"$6$salt$notbcrypt")
    monkeypatch.undo()
    assert real_bcrypt.checkpw(b"Township-Scrape-2026", by_libcrypt)
    assert not real_bcrypt.checkpw(b"Township-Scrape-2025", by_libcrypt)


def test_passhash_reads_stdin_and_never_the_command_line() -> None:
    out = subprocess.run([sys.executable, "-m", "agent.passhash"], input=b"s3cret-on-stdin\n", capture_output=True,
                         timeout=30, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    assert real_bcrypt.checkpw(b"s3cret-on-stdin", out.stdout.strip())
    empty = subprocess.run([sys.executable, "-m", "agent.passhash"], input=b"", capture_output=True, timeout=30,
                           cwd=Path(__file__).resolve().parents[2])
    assert empty.returncode == 2 and b"empty" in empty.stderr


def test_collectors_that_need_psutil_are_not_applicable_without_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.collectors import by_name

    real = by_name()["self"]
    with_psutil = real(real.options_class(), AgentContext(state_dir=tmp_path)).new_metric_set()
    real(real.options_class(), AgentContext(state_dir=tmp_path)).collect(with_psutil)
    for module in ("agent.collectors.self_metrics", "agent.audit.exposure", "agent.collectors.service_credentials",
                   "agent.audit.logins"):
        monkeypatch.setattr(f"{module}.psutil", _Missing("psutil", "test"))
    ctx = AgentContext(state_dir=tmp_path)
    for name in ("exposure", "service_credentials"):
        cls = by_name()[name]
        col = cls(cls.options_class(), ctx)
        with pytest.raises(MissingDependency, match="python3-psutil"):
            col.collect(col.new_metric_set())
    # The agent's own process metrics come from /proc/self instead, with the values psutil gives.
    col = real(real.options_class(), ctx)
    out = col.new_metric_set()
    col.collect(out)
    for metric, tolerance in (("process_resident_memory_bytes", 0.2), ("process_virtual_memory_bytes", 0.2),
                              ("process_start_time_seconds", 0.0)):
        got, want = out.get(metric), with_psutil.get(metric)
        assert got is not None and want is not None and abs(got - want) <= tolerance * want + 1.0, (metric, got, want)
    # Read later, so no less (within a clock tick: psutil adds user and system as floats).
    assert (out.get("process_cpu_seconds_total") or 0) >= (with_psutil.get("process_cpu_seconds_total") or 0) - 0.011
    assert (out.get("process_open_fds") or 0) > 2
