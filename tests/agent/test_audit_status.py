"""Audit run times recorded by the audits and exported by one collector."""

from __future__ import annotations

import threading
from pathlib import Path

from agent.audit.runs import read_runs, record_run
from agent.collector import AgentContext, CollectorOptions
from agent.collectors.audit_status import AuditStatusCollector


def test_run_and_complete_times(tmp_path: Path) -> None:
    state = tmp_path / "state"
    col = AuditStatusCollector(CollectorOptions(), AgentContext(state_dir=state))
    out = col.new_metric_set()
    col.collect(out)
    assert out.names() == set()
    record_run(state, "passwords", 100.0, complete=True)
    record_run(state, "passwords", 200.0, complete=False)  # stopped at its budget
    record_run(state, "ssh", 150.0, complete=True)
    out = col.new_metric_set()
    col.collect(out)
    assert out.get("shaobing_audit_last_run_timestamp_seconds", {"audit": "passwords"}) == 200
    assert out.get("shaobing_audit_last_complete_timestamp_seconds", {"audit": "passwords"}) == 100
    assert out.get("shaobing_audit_last_complete_timestamp_seconds", {"audit": "ssh"}) == 150
    assert out.get("shaobing_audit_last_run_timestamp_seconds", {"audit": "exposure"}) is None
    assert (state / "audit_runs.json").stat().st_mode & 0o777 == 0o600


def test_concurrent_recorders_lose_nothing(tmp_path: Path) -> None:
    audits = ("passwords", "ssh", "services", "exposure")
    threads = [
        threading.Thread(target=lambda a=a: [record_run(tmp_path, a, float(i), True) for i in range(30)])  # type: ignore[misc]
        for a in audits
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {a: v["run"] for a, v in read_runs(tmp_path).items()} == dict.fromkeys(audits, 29.0)


def test_status_waits_for_audits_running_in_this_process(tmp_path: Path) -> None:
    """`shaobing agent once` runs all collectors at once: the status must include this run's audits."""
    from agent.collectors.ssh import SshCollector, SshOptions

    ctx = AgentContext(state_dir=tmp_path / "state")
    (tmp_path / "sshd_config").write_text("PermitRootLogin no\n")
    ssh = SshCollector(SshOptions(config_file=str(tmp_path / "sshd_config"), sshd="none"), ctx)
    status = AuditStatusCollector(CollectorOptions(timeout=20), ctx)
    out = status.new_metric_set()
    started = threading.Event()

    def run_status() -> None:
        started.set()
        status.collect(out)

    t = threading.Thread(target=run_status)
    t.start()
    started.wait()
    ssh.collect(ssh.new_metric_set())  # starts after the status collector is already waiting
    t.join(timeout=30)
    assert out.get("shaobing_audit_last_complete_timestamp_seconds", {"audit": "ssh"}) is not None
