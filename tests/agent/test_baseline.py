"""The 等保 2.0 self-check on package-default trees (tests/agent/fixtures/baseline), before and after the
hardening an administrator would do — mostly the very fix each failing check prints."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml

from agent.baseline.clauses import FAMILIES
from agent.baseline.engine import ALL_CHECKS, BaselineResult, checks_for, render_json, render_report, run_baseline
from agent.baseline.host import HostView
from agent.catalog import MetricSet, MetricSpec
from agent.collector import AgentContext, Collector
from agent.collectors.baseline import BaselineCollector, BaselineOptions
from agent.collectors.exposure import ExposureCollector
from agent.collectors.passwords import PasswordsCollector
from agent.collectors.pii import PiiCollector
from agent.collectors.updates import UpdatesCollector
from agent.collectors.versions import VersionsCollector
from agent.exporter import ExpositionCache
from agent.scheduler import Scheduler
from tests.support.agent import SHAOBING

FIXTURES = Path(__file__).parent / "fixtures" / "baseline"
DAY = 86400
HASH = "$y$j9T$fixturesalt$notarealhashnotarealhashnotarealhash0"  # a usable-looking field, no real password


def make_host(tmp_path: Path, kind: str, *, processes: tuple[str, ...] = ("sshd", "rsyslogd", "systemd-journald"),
              days_since_change: int = 10) -> Path:
    root = tmp_path / kind
    shutil.copytree(FIXTURES / kind, root)
    today = int(time.time() // DAY)
    with open(root / "etc/passwd", "a") as fh:
        fh.write("zhangsan:x:1000:1000:Zhang San:/home/zhangsan:/bin/bash\n")
    with open(root / "etc/group", "a") as fh:
        fh.write("zhangsan:x:1000:\n")
    lines = []
    for line in (root / "etc/passwd").read_text().splitlines():
        name = line.split(":")[0]
        pw = HASH if name in ("root", "zhangsan") else ("*" if kind == "debian12" else "!!")
        lines.append(f"{name}:{pw}:{today - days_since_change}:0:99999:7:::")
    (root / "etc/shadow").write_text("\n".join(lines) + "\n")
    os.chmod(root / "etc/shadow", 0o640)
    (root / "etc/sudoers").write_text("root ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n")
    os.chmod(root / "etc/sudoers", 0o440)
    set_processes(root, *processes)
    log = root / "var/log"
    log.mkdir(parents=True)
    auth = "auth.log" if kind == "debian12" else "secure"
    (log / auth).write_text("")
    os.chmod(log / auth, 0o640)
    return root


def set_processes(root: Path, *names: str) -> None:
    proc = root / "proc"
    shutil.rmtree(proc, ignore_errors=True)
    for pid, name in enumerate(names, 100):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "comm").write_text(name + "\n")


def evaluate(root: Path, level: int = 3, peers: Optional[dict[str, MetricSet]] = None,
             now: Optional[float] = None) -> dict[str, Any]:
    given = peers or {}
    host = HostView(root, root / "proc", peers=given.get, clock=(lambda: now) if now else time.time)
    result = run_baseline(host, level, hostname="fixture")
    return {o.spec.id: o.result for c in result.clauses for o in c.checks}


def statuses(results: dict[str, Any]) -> dict[str, str]:
    return {k: r.status for k, r in results.items()}


def write(root: Path, rel: str, text: str, mode: Optional[int] = None) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mode is not None:
        os.chmod(path, mode)


def replace(root: Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text()
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new))


# -- stock trees -------------------------------------------------------------------------------------

def test_stock_debian_12_fails_what_its_packages_leave_open(tmp_path: Path) -> None:
    root = make_host(tmp_path, "debian12")
    r = evaluate(root)
    s = statuses(r)
    # Stock Debian: no pwquality, aging 99999, no faillock, no TMOUT, no auditd, 4 weeks of logs, nothing forwarded.
    for check in ("password_complexity", "password_expiry", "login_lockout", "session_timeout", "auditd_running",
                  "audit_rules", "log_retention", "remote_log_forwarding", "management_restricted",
                  "security_labels", "anti_malware"):
        assert s[check] == "fail", (check, r[check])
    for check in ("unique_ids", "no_empty_password", "default_accounts", "root_remote_login", "no_shared_root",
                  "sudo_least_privilege", "key_file_modes", "syslog_running", "unneeded_services",
                  "remote_admin_encrypted", "audit_log_protected"):
        assert s[check] == "pass", (check, r[check])
    # What the agent's other collectors find is not there: needs a person, never "fine".
    for check in ("no_weak_password", "high_risk_ports", "security_updates", "os_supported", "personal_data_exposed",
                  "multi_factor", "admin_separation", "minimal_install", "intrusion_detection"):
        assert s[check] == "manual", (check, r[check])
    assert "/etc/pam.d/common-password" in r["password_complexity"].evidence[0]
    assert any("/etc/logrotate.d/rsyslog" in e and "28 天" in e for e in r["log_retention"].evidence)
    assert "/etc/login.defs:" in r["password_expiry"].evidence[0]
    assert "PermitRootLogin prohibit-password" in r["root_remote_login"].evidence[0]  # OpenSSH's default


def test_stock_rhel_9_has_pwquality_but_no_class_rule_and_protects_auditd(tmp_path: Path) -> None:
    root = make_host(tmp_path, "rhel9", processes=("sshd", "rsyslogd", "auditd"))
    r = evaluate(root)
    s = statuses(r)
    assert s["password_complexity"] == "fail"
    assert any("pam_pwquality.so" in e for e in r["password_complexity"].evidence)
    assert any("minlen=8" in e for e in r["password_complexity"].evidence)  # pwquality's default passes length
    assert any("只要求 0 类字符" in e for e in r["password_complexity"].evidence)
    assert s["login_lockout"] == "fail"  # authselect minimal without with-faillock
    assert any("/etc/pam.d/sshd" in e for e in r["login_lockout"].evidence)
    assert s["auditd_running"] == "pass"
    assert s["audit_rules"] == "fail"  # 10-base-config.rules watches nothing
    # Upstream's unit (as RHEL ships it) refuses a manual stop; Debian's does not.
    assert s["audit_process_protected"] == "pass"
    assert any("RefuseManualStop=yes" in e for e in r["audit_process_protected"].evidence)
    assert s["log_retention"] == "fail"
    assert any("/var/log/secure" in e and "28 天" in e for e in r["log_retention"].evidence)
    assert s["default_accounts"] == "pass"  # "!!" is locked
    set_processes(root, "sshd", "rsyslogd")
    assert statuses(evaluate(root))["audit_process_protected"] == "fail"

    deb = make_host(tmp_path, "debian12", processes=("sshd", "rsyslogd", "auditd"))
    assert statuses(evaluate(deb))["audit_process_protected"] == "fail"


# -- hardening turns each failure into a pass ---------------------------------------------------------

def harden_debian(root: Path) -> None:
    replace(root, "etc/pam.d/common-password", "password\t[success=1 default=ignore]\tpam_unix.so obscure yescrypt",
            "password\trequisite\t\t\tpam_pwquality.so retry=3\n"
            "password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok try_first_pass yescrypt")
    replace(root, "etc/security/pwquality.conf", "# minlen = 8", "minlen = 10")
    replace(root, "etc/security/pwquality.conf", "# minclass = 0", "minclass = 3")
    replace(root, "etc/login.defs", "PASS_MAX_DAYS\t99999", "PASS_MAX_DAYS\t90")
    shadow = (root / "etc/shadow").read_text().replace(":0:99999:7:::", ":0:90:7:::")
    (root / "etc/shadow").write_text(shadow)
    replace(root, "etc/pam.d/common-auth", "auth\t[success=1 default=ignore]\tpam_unix.so nullok",
            "auth\trequired\tpam_faillock.so preauth\n"
            "auth\t[success=1 default=ignore]\tpam_unix.so nullok\n"
            "auth\t[default=die]\tpam_faillock.so authfail")
    replace(root, "etc/security/faillock.conf", "# deny = 3", "deny = 5")
    write(root, "etc/profile.d/tmout.sh", "readonly TMOUT=600; export TMOUT\n")
    shutil.copy(root / "usr/share/doc/auditd/examples/rules/30-stig.rules", root / "etc/audit/rules.d/30-stig.rules")
    shutil.copy(root / "usr/share/doc/auditd/examples/rules/99-finalize.rules",
                root / "etc/audit/rules.d/99-finalize.rules")
    replace(root, "etc/audit/rules.d/99-finalize.rules", "#-e 2", "-e 2")
    replace(root, "etc/logrotate.d/rsyslog", "rotate 4", "rotate 26")
    write(root, "etc/rsyslog.d/90-remote.conf", "*.* @@10.20.0.5:514\n")
    write(root, "etc/ssh/sshd_config.d/10-township.conf", "PermitRootLogin no\nAllowUsers zhangsan@10.20.0.0/24\n")
    set_processes(root, "sshd", "rsyslogd", "auditd", "clamd", "freshclam")
    write(root, "var/lib/clamav/daily.cld", "")
    write(root, "sys/module/apparmor/parameters/enabled", "Y\n")
    write(root, "sys/kernel/security/apparmor/profiles", "/usr/sbin/sshd (enforce)\nnvidia_modprobe (complain)\n")


def test_the_printed_fixes_make_a_stock_debian_pass(tmp_path: Path) -> None:
    root = make_host(tmp_path, "debian12")
    harden_debian(root)
    r = evaluate(root)
    s = statuses(r)
    for check in ("password_complexity", "password_expiry", "login_lockout", "session_timeout", "auditd_running",
                  "audit_rules", "log_retention", "remote_log_forwarding", "management_restricted",
                  "audit_process_protected", "security_labels", "anti_malware", "root_remote_login"):
        assert s[check] == "pass", (check, r[check])
    assert any("minlen=10" in e and "pwquality.conf" in e for e in r["password_complexity"].evidence)
    assert any("182 天" in e for e in r["log_retention"].evidence)  # 26 weekly rotations
    assert any("-e 2" in e for e in r["audit_process_protected"].evidence)
    assert any("10-township.conf" in e and "PermitRootLogin no" in e for e in r["root_remote_login"].evidence)


def test_centos7_pam_tally2_and_lockout_thresholds(tmp_path: Path) -> None:
    root = make_host(tmp_path, "rhel9")
    line = "auth        required                                     pam_env.so"
    for extra, expected in (("pam_tally2.so deny=5 unlock_time=300 onerr=fail", "pass"),
                            ("pam_tally2.so deny=10 unlock_time=300", "fail"),   # too many tries
                            ("pam_tally2.so onerr=fail", "fail"),                 # locks nobody without deny=
                            ("pam_tally2.so deny=3 unlock_time=60", "fail"),      # unlocks too soon
                            ("pam_tally2.so deny=3 unlock_time=0", "pass"),       # until the admin unlocks
                            ("pam_faillock.so preauth silent", "pass")):          # faillock.conf defaults: 3/600 s
        for name in ("system-auth", "password-auth"):
            text = (FIXTURES / "rhel9/etc/pam.d" / name).read_text()
            assert line in text
            (root / "etc/pam.d" / name).write_text(text.replace(line, f"{line}\nauth required {extra}"))
        result = evaluate(root)["login_lockout"]
        assert result.status == expected, (extra, result)


def test_session_timeout_forms(tmp_path: Path) -> None:
    root = make_host(tmp_path, "debian12")
    for text, expected in (("export TMOUT=900\n", "fail"), ("TMOUT=600\nreadonly TMOUT\nexport TMOUT\n", "pass"),
                           ("declare -rx TMOUT=300\n", "pass"), ("TMOUT=0\n", "fail")):
        write(root, "etc/profile.d/tmout.sh", text)
        assert evaluate(root)["session_timeout"].status == expected, text
    (root / "etc/profile.d/tmout.sh").unlink()
    write(root, "etc/ssh/sshd_config.d/20-alive.conf", "ClientAliveInterval 300\nClientAliveCountMax 0\n")
    assert evaluate(root)["session_timeout"].status == "fail"  # keep-alives do not end an idle session
    write(root, "etc/ssh/sshd_config.d/20-alive.conf", "ChannelTimeout session=10m\n")
    assert evaluate(root)["session_timeout"].status == "pass"


def test_accounts_shared_root_empty_passwords_and_idle_people(tmp_path: Path) -> None:
    root = make_host(tmp_path, "debian12", days_since_change=400)
    now = time.time()
    with open(root / "etc/passwd", "a") as fh:
        fh.write("toor:x:0:0::/root:/bin/bash\nlisi:x:1001:1001::/home/lisi:/bin/bash\n"
                 "wangwu:x:1001:1002::/home/wangwu:/bin/bash\n")
    with open(root / "etc/shadow", "a") as fh:
        fh.write(f"toor:{HASH}:19000:0:99999:7:::\nlisi::19000:0:99999:7:::\nwangwu:!:19000:0:99999:7:::\n")
    # struct lastlog records, 292 bytes, at uid * 292: zhangsan logged in 200 days ago, lisi yesterday.
    rec = struct.Struct("=i32s256s")
    with open(root / "var/log/lastlog", "wb") as fh:
        fh.seek(1000 * rec.size)
        fh.write(rec.pack(int(now - 200 * DAY), b"pts/0", b"10.20.0.9"))
        fh.write(rec.pack(int(now - DAY), b"pts/1", b"10.20.0.9"))
    r = evaluate(root, now=now)
    assert r["no_shared_root"].status == "fail" and "toor" in r["no_shared_root"].evidence[0]
    assert r["unique_ids"].status == "fail"
    assert any("UID 0: root" in e and "toor" in e for e in r["unique_ids"].evidence)
    assert r["no_empty_password"].status == "fail"
    assert [e for e in r["no_empty_password"].evidence if "lisi" in e]
    assert r["inactive_accounts"].status == "fail"
    stale = " ".join(r["inactive_accounts"].evidence)
    assert "zhangsan" in stale and "200 天前" in stale and "lisi" not in stale.split(":", 1)[1]
    # No secret in any evidence.
    assert HASH not in json.dumps({k: v.evidence for k, v in r.items()}, ensure_ascii=False)
    (root / "var/log/lastlog").unlink()
    assert evaluate(root)["inactive_accounts"].status == "manual"  # no record: unknown, not "nobody idle"


def test_services_plain_remote_login_and_management_restrictions(tmp_path: Path) -> None:
    root = make_host(tmp_path, "rhel9")
    for unit in ("telnet.socket", "cups.service"):
        link = root / "etc/systemd/system/multi-user.target.wants" / unit
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(f"/usr/lib/systemd/system/{unit}")
    write(root, "etc/vsftpd/vsftpd.conf", "anonymous_enable=NO\nlocal_enable=YES\n")
    r = evaluate(root)
    assert r["unneeded_services"].status == "fail"
    assert any("telnet.socket" in e for e in r["unneeded_services"].evidence)
    assert any("cups" in e for e in r["unneeded_services"].evidence)
    assert r["remote_admin_encrypted"].status == "fail"
    assert any("vsftpd.conf:2" in e for e in r["remote_admin_encrypted"].evidence)
    assert r["management_restricted"].status == "fail"
    write(root, "etc/firewalld/zones/public.xml",
          '<?xml version="1.0" encoding="utf-8"?>\n<zone>\n  <rule family="ipv4">\n'
          '    <source address="10.20.0.0/24"/>\n    <service name="ssh"/>\n    <accept/>\n  </rule>\n</zone>\n')
    assert evaluate(root)["management_restricted"].status == "pass"
    (root / "etc/firewalld/zones/public.xml").unlink()
    write(root, "etc/hosts.allow", "sshd: 10.20.0.\n")
    write(root, "etc/hosts.deny", "ALL: ALL\n")
    assert evaluate(root)["management_restricted"].status == "pass"


def test_journald_only_host_and_the_journal_age(tmp_path: Path) -> None:
    root = make_host(tmp_path, "debian12", processes=("sshd", "systemd-journald"))
    for rel in ("etc/rsyslog.conf", "etc/logrotate.d/rsyslog"):
        (root / rel).unlink()
    r = evaluate(root)
    assert r["syslog_running"].status == "fail"  # volatile: /var/log/journal does not exist
    journal = root / "var/log/journal/0123456789abcdef"
    journal.mkdir(parents=True)
    old = journal / "system@0001.journal"
    old.write_bytes(b"")
    os.utime(old, (time.time() - 30 * DAY,) * 2)
    r = evaluate(root)
    assert r["syslog_running"].status == "pass"
    assert r["log_retention"].status == "fail" and any("30 天前" in e for e in r["log_retention"].evidence)
    os.utime(old, (time.time() - 200 * DAY,) * 2)
    assert evaluate(root)["log_retention"].status == "pass"


# -- peers: what the other collectors found ----------------------------------------------------------

def peer(cls: type[Collector], samples: list[tuple[str, float, dict[str, str]]]) -> MetricSet:
    out = MetricSet(cls.metrics)
    for name, value, labels in samples:
        out.add(name, value, labels)
    return out


def test_evidence_from_the_other_collectors(tmp_path: Path) -> None:
    root = make_host(tmp_path, "debian12")
    now = time.time()
    peers = {
        "passwords": peer(PasswordsCollector, [("shaobing_password_accounts", 1, {"reason": "dictionary",
                                                                                  "class": "human"}),
                                               ("shaobing_password_audit_coverage_ratio", 1, {"class": "human"})]),
        "exposure": peer(ExposureCollector, [("shaobing_exposed_port", 1, {"port": "6379", "service": "redis",
                                                                         "bind": "0.0.0.0", "process": "redis-server"}),
                                             ("shaobing_host_firewall_active", 0, {})]),
        "updates": peer(UpdatesCollector, [("shaobing_security_updates_supported", 1, {}),
                                           ("shaobing_security_updates_pending", 3, {})]),
        "versions": peer(VersionsCollector, [("shaobing_eol_timestamp_seconds", now - 10 * DAY,
                                              {"product": "centos", "cycle": "7", "kind": "os"})]),
        "pii": peer(PiiCollector, [("shaobing_pii_locations", 2, {"location": "web"}),
                                   ("shaobing_pii_files", 1, {"location": "web", "kind": "id_card"})]),
    }
    r = evaluate(root, peers=peers, now=now)
    for check in ("no_weak_password", "high_risk_ports", "security_updates", "os_supported", "personal_data_exposed"):
        assert r[check].status == "fail", (check, r[check])
    assert "6379" in r["high_risk_ports"].evidence[0]
    assert "3 个安全更新" in r["security_updates"].evidence[0]
    assert "centos 7" in r["os_supported"].evidence[0]
    peers["updates"] = peer(UpdatesCollector, [("shaobing_security_updates_supported", 0, {})])
    peers["pii"] = peer(PiiCollector, [])
    r = evaluate(root, peers=peers, now=now)
    assert r["security_updates"].status == "manual"  # CentOS 7: no advisory data is unknown, not 0
    assert r["personal_data_exposed"].status == "not_applicable"


# -- the collector, its metrics and the report --------------------------------------------------------

def test_metrics_are_absent_for_manual_and_not_applicable_checks(tmp_path: Path) -> None:
    root = make_host(tmp_path, "debian12")
    collector = BaselineCollector(BaselineOptions(root=str(root), level=2), AgentContext(tmp_path))
    out = collector.new_metric_set()
    collector.collect(out)
    assert collector.last is not None
    decided = {o.spec.id: o.result.status for c in collector.last.clauses for o in c.checks}
    series = {s.label("check"): s.value for s in out.samples("shaobing_baseline_check_passed")}
    assert set(series) == {k for k, v in decided.items() if v in ("pass", "fail")}
    assert all(series[k] == (1.0 if decided[k] == "pass" else 0.0) for k in series)
    assert "multi_factor" not in decided  # level 3 only
    assert {s.label("clause") for s in out.samples("shaobing_baseline_check_passed")} <= {
        f.numbers[2] for f in FAMILIES}
    counts = {s.label("status"): s.value for s in out.samples("shaobing_baseline_checks")}
    assert sum(counts.values()) == len(checks_for(2)) and counts["manual"] > 0
    ratio = out.get("shaobing_baseline_pass_ratio", {"standard": "gbt22239-2019", "level": "2"})
    assert ratio == pytest.approx(counts["pass"] / (counts["pass"] + counts["fail"]))


def test_clause_verdicts_and_report_text(tmp_path: Path) -> None:
    root = make_host(tmp_path, "debian12")
    harden_debian(root)
    host = HostView(root, root / "proc")
    result: BaselineResult = run_baseline(host, 3, hostname="cgz-web01")
    verdicts = {c.number: c.verdict for c in result.clauses}
    assert verdicts["8.1.4.5"] == "符合"       # ClamAV with fresh signatures
    assert verdicts["8.1.4.11"] == "待确认"    # the personal-data scan has not run
    assert verdicts["8.1.4.1"] == "符合"       # all decided pass; MFA and weak passwords wait for a person
    text = render_report(result)
    assert "GB/T 22239-2019 第三级" in text and "cgz-web01" in text
    assert "8.1.4.3 安全审计" in text and "得分" in text
    doc = json.loads(render_json(result))
    assert doc["level"] == 3 and {c["clause"] for c in doc["clauses"]} == {f.numbers[3] for f in FAMILIES}
    assert sum(len(c["checks"]) for c in doc["clauses"]) == len(checks_for(3))


def test_every_check_has_a_clause_item_in_the_catalogue() -> None:
    families = {f.key: f for f in FAMILIES}
    for spec in ALL_CHECKS:
        fam = families[spec.clause]
        for level in spec.levels:
            assert fam.items[spec.item].get(level), (spec.id, level)
    assert len({s.id for s in ALL_CHECKS}) == len(ALL_CHECKS)


def test_a_broken_check_is_manual_not_a_crash(tmp_path: Path) -> None:
    root = make_host(tmp_path, "debian12")
    (root / "etc/login.defs").unlink()
    (root / "etc/login.defs").mkdir()  # unreadable as a file
    r = evaluate(root)
    assert r["password_expiry"].status in ("fail", "manual")
    assert r["unique_ids"].status == "pass"


# -- the scheduler waits for the collectors a baseline reads -----------------------------------------

class Slow(Collector):
    name = "slow"
    metrics = (MetricSpec("test_slow", "gauge", "A test value."),)

    def collect(self, out: MetricSet) -> None:
        time.sleep(0.6)
        out.add("test_slow", 7)


class Reader(Collector):
    name = "reader"
    metrics = ()
    waits_for = ("slow", "not_configured")
    seen: list[Optional[float]] = []

    def collect(self, out: MetricSet) -> None:
        found = self.context.peers("slow")
        type(self).seen.append(found.get("test_slow") if found else None)


def test_a_reader_runs_after_the_collectors_it_reads(tmp_path: Path) -> None:
    context = AgentContext(tmp_path)
    slow, reader = Slow(Slow.options_class(), context), Reader(Reader.options_class(), context)
    by_name: dict[str, Collector] = {"slow": slow, "reader": reader}
    def lookup(n: str) -> Optional[MetricSet]:
        return by_name[n].last_metrics if n in by_name else None
    context.peers = lookup
    Reader.seen = []
    Scheduler([reader, slow], ExpositionCache()).run_all_once()
    assert Reader.seen == [7.0]
    Reader.seen = []
    scheduler = Scheduler([reader, slow], ExpositionCache())
    scheduler.start()
    try:
        deadline = time.time() + 10
        while not Reader.seen and time.time() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.stop()
    assert Reader.seen == [7.0]  # its first run waited for slow's first run


# -- the command -------------------------------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="the scan reads /etc/shadow: run as root")
def test_scan_baseline_command(tmp_path: Path) -> None:
    root = make_host(tmp_path, "rhel9")
    config = tmp_path / "agent.yml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"), "collectors": {
        "baseline": {"root": str(root)}, "pii": {"enabled": False}, "passwords": {"enabled": False}}}))
    run = subprocess.run([SHAOBING, "scan", "--config", str(config), "--baseline", "gbt22239-2"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr  # stock RHEL 9 fails checks
    assert "GB/T 22239-2019 第二级" in run.stdout
    assert "7.1.4.1 身份鉴别" in run.stdout and "7.1.4.10 个人信息保护" in run.stdout
    assert "8.1.4" not in run.stdout
    assert "处理: " in run.stdout and "证据: /etc/pam.d/" in run.stdout
    run = subprocess.run([SHAOBING, "scan", "--config", str(config), "--baseline", "gbt22239-3", "--format", "json"],
                         capture_output=True, text=True, timeout=300)
    doc = json.loads(run.stdout)
    assert doc["level"] == 3 and doc["counts"]["fail"] > 0
    checks = {c["id"]: c["status"] for cl in doc["clauses"] for c in cl["checks"]}
    assert checks["personal_data_exposed"] == "manual"  # disabled here: unknown
    assert checks["os_supported"] in ("pass", "fail")   # the versions collector ran before it
    run = subprocess.run([SHAOBING, "scan", "--baseline", "iso27001"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "iso27001" in run.stderr


def test_sudo_includes_are_read_under_the_checked_root(tmp_path: Path) -> None:
    root = make_host(tmp_path, "debian12")
    write(root, "etc/sudoers", "root ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n", 0o440)
    assert evaluate(root)["sudo_least_privilege"].status == "pass"
    write(root, "etc/sudoers.d/ops", "zhangsan ALL=(ALL) NOPASSWD: ALL\n", 0o440)
    result = evaluate(root)["sudo_least_privilege"]
    assert result.status == "fail"
    assert any(e.startswith("zhangsan: 免密 sudo (/etc/sudoers.d/ops:1)") for e in result.evidence), result.evidence


def test_the_documentation_lists_every_check_and_threshold() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "baseline.md").read_text()
    for spec in ALL_CHECKS:
        assert f"`{spec.id}`" in doc, spec.id
    from dataclasses import fields

    for f in fields(BaselineOptions):
        if f.name not in ("enabled", "interval", "timeout", "jitter", "root"):
            assert f"`{f.name}`" in doc, f.name


def test_the_first_run_waits_at_most_peer_wait(tmp_path: Path) -> None:
    from dataclasses import dataclass

    from agent.collector import CollectorOptions

    @dataclass
    class WaitOptions(CollectorOptions):
        peer_wait: float = 0.3

    class VerySlow(Slow):
        name = "slow"

        def collect(self, out: MetricSet) -> None:
            time.sleep(3)
            out.add("test_slow", 7)

    context = AgentContext(tmp_path)
    slow, reader = VerySlow(VerySlow.options_class(), context), Reader(WaitOptions(), context)
    context.peers = lambda n: slow.last_metrics if n == "slow" else None
    Reader.seen = []
    scheduler = Scheduler([reader, slow], ExpositionCache())
    started = time.monotonic()
    scheduler.start()
    try:
        while not Reader.seen and time.monotonic() - started < 10:
            time.sleep(0.02)
    finally:
        scheduler.stop()
    assert Reader.seen == [None]  # it went without the slow peer's result ...
    assert time.monotonic() - started < 2.5  # ... after peer_wait, not after the peer


def test_no_sshd_means_no_network_management_to_restrict(tmp_path: Path) -> None:
    root = make_host(tmp_path, "debian12")
    assert evaluate(root)["management_restricted"].status == "fail"
    shutil.rmtree(root / "etc/ssh")
    r = evaluate(root)
    assert r["management_restricted"].status == "not_applicable"
    assert r["root_remote_login"].status == "not_applicable"
